#!/usr/bin/env python3
"""Benchmark `nimbus build` for 10, 100 and 1000 generated functions (no third-party deps).

Each function lives in its own directory with a handler and a helper module. For every size the
script times a cold build (no `.nimbus/`) and a warm build (nothing changed) with the release
binary, N runs each (default 7), and prints medians with files/s and MB/s (unzipped bytes per
second), plus the baseline `nimbus --version` from the same run.

Usage: bench/build.py [--runs N] [--provider aws] [--sizes 10,100,1000] [--json]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANDLER = '''"""Generated handler {i}."""
import json

from helpers_{i} import greet


def handler(event, context):
    name = (event.get("query") or {{}}).get("name", "world")
    return {{"status": 200, "headers": {{"content-type": "application/json"}}, "body": json.dumps({{"message": greet(name)}})}}
'''
HELPER = '''def greet(name):
    return "hello, " + name + " from function {i}"
'''


def generate(directory, n):
    lines = ["version: 1", f"service: build{n}", "defaults: { runtime: python3.12, memory: 256, timeout: 10s }", "functions:"]
    for i in range(n):
        d = os.path.join(directory, f"fn{i}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "handler.py"), "w") as f:
            f.write(HANDLER.format(i=i))
        with open(os.path.join(d, f"helpers_{i}.py"), "w") as f:
            f.write(HELPER.format(i=i))
        lines += [f"  fn-{i}:", f"    handler: fn{i}/handler.py:handler", "    triggers:",
                  f"      - http: {{ method: GET, path: /fn/{i} }}"]
    with open(os.path.join(directory, "nimbus.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def run(cmd, cwd=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()}")
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--provider", default="aws")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nimbus"], cwd=ROOT, check=True)
    nimbus = os.path.join(ROOT, "target", "release", "nimbus")
    baseline = statistics.median(run([nimbus, "--version"])[0] for _ in range(args.runs))
    results = [{"case": "baseline: nimbus --version", "median_ms": round(baseline * 1000, 2)}]
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            d = os.path.join(tmp, f"app{n}")
            generate(d, n)
            cmd = [nimbus, "build", "-p", args.provider, "--output", "json"]
            cold, warm = [], []
            for _ in range(args.runs):
                shutil.rmtree(os.path.join(d, ".nimbus"), ignore_errors=True)
                elapsed, out = run(cmd, cwd=d)
                cold.append(elapsed)
                report = json.loads(out)
                assert len(report["built"]) == n, report["built"][:3]
                elapsed, out = run(cmd, cwd=d)
                warm.append(elapsed)
                assert len(json.loads(out)["cached"]) == n
            arts = report["build"]["functions"].values()
            files = sum(a["files"] for a in arts)
            unzipped = sum(a["unzipped_size"] for a in arts)
            zipped = sum(a["size"] for a in arts)
            for label, samples in (("cold", cold), ("warm", warm)):
                m = statistics.median(samples)
                results.append({
                    "case": f"build {n} functions, {label}",
                    "median_ms": round(m * 1000, 1),
                    "files_per_s": round(files / m) if label == "cold" else None,
                    "mb_per_s": round(unzipped / m / 1e6, 1) if label == "cold" else None,
                    "files": files, "unzipped_mb": round(unzipped / 1e6, 2), "zipped_mb": round(zipped / 1e6, 2),
                })
    for r in results:
        r["x_baseline"] = round(r["median_ms"] / results[0]["median_ms"], 1)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':32} {'median':>10} {'files/s':>9} {'MB/s':>7} {'files':>7} {'x base':>8}   ({args.runs} runs, provider {args.provider})")
    for r in results:
        fps = r.get("files_per_s") or ""
        mbs = r.get("mb_per_s") or ""
        print(f"{r['case']:32} {r['median_ms']:>8.1f}ms {fps:>9} {mbs:>7} {r.get('files', ''):>7} {r['x_baseline']:>8}")


if __name__ == "__main__":
    main()
