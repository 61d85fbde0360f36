#!/usr/bin/env python3
"""Benchmark `nimbus validate` on the shop example and on generated manifests.

Builds the release binary, generates manifests with 10, 100 and 1000 functions (each with an
HTTP route, a queue or topic trigger and a grant, and its own handler file), then times each
command N times (default 15) and prints medians. The baseline, measured in the same run, is
`nimbus --version`: the cost of starting the binary at all. Figures are reported as medians and
as ratios against that baseline, because machines are shared and noisy.

Usage: bench/validate.py [--runs N] [--json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(directory: str, n: int) -> str:
    """A manifest with n functions, n/10 queues and n/10 topics, and their handler files."""
    os.makedirs(os.path.join(directory, "fns"), exist_ok=True)
    groups = max(1, n // 10)
    lines = ["version: 1", f"service: gen{n}", "defaults: { runtime: python3.12, memory: 256, timeout: 10s }",
             "vars: { level: info }", "resources:"]
    for g in range(groups):
        lines.append(f"  queue-{g}: {{ type: queue, visibility_timeout: 60s, dead_letter: {{ max_receives: 5 }} }}")
        lines.append(f"  topic-{g}: {{ type: topic }}")
        lines.append(f"  table-{g}: {{ type: table, key: {{ id: string }} }}")
    lines.append("functions:")
    for i in range(n):
        g = i % groups
        path = os.path.join(directory, "fns", f"f{i}.py")
        with open(path, "w") as f:
            f.write("def handler(event, context):\n    return {'status': 200, 'body': 'ok'}\n")
        lines += [
            f"  fn-{i}:",
            f"    handler: fns/f{i}.py:handler",
            "    env: { LEVEL: \"{{ vars.level }}\", STAGE: \"{{ stage }}\" }",
            "    triggers:",
            f"      - http: {{ method: GET, path: \"/items/{i}/{{id}}\" }}",
        ]
        if i < groups:
            lines.append(f"      - queue: {{ name: queue-{g}, batch_size: 10 }}")
        else:
            lines.append(f"      - topic: topic-{g}")
        lines += ["    uses:", f"      - {{ resource: table-{g}, access: read_write }}"]
    manifest = os.path.join(directory, "nimbus.yaml")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    return manifest


def time_command(cmd, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr.decode()}")
    return statistics.median(samples), min(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nimbus"], cwd=ROOT, check=True)
    nimbus = os.path.join(ROOT, "target", "release", "nimbus")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("baseline: nimbus --version", [nimbus, "--version"])]
        cases.append(("validate examples/shop", [nimbus, "validate", "-f", os.path.join(ROOT, "examples/shop/nimbus.yaml"), "-p", "aws"]))
        for n in (10, 100, 1000):
            manifest = generate(os.path.join(tmp, f"gen{n}"), n)
            cases.append((f"validate {n} functions", [nimbus, "validate", "-f", manifest, "-p", "aws"]))
        for name, cmd in cases:
            median, best = time_command(cmd, args.runs)
            results.append({"case": name, "median_ms": round(median * 1000, 2), "min_ms": round(best * 1000, 2)})
    base = results[0]["median_ms"]
    for r in results:
        r["x_baseline"] = round(r["median_ms"] / base, 2)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'case':34} {'median':>10} {'min':>10} {'x baseline':>11}   ({args.runs} runs each)")
        for r in results:
            print(f"{r['case']:34} {r['median_ms']:>8.2f}ms {r['min_ms']:>8.2f}ms {r['x_baseline']:>10.2f}x")


if __name__ == "__main__":
    main()
