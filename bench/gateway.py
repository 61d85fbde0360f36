#!/usr/bin/env python3
"""Benchmark the local runtime's gateway with wrk, against the machine's own ceiling.

In one run, on this machine:
  - baseline: a bare hyper server (examples/bench_hello_server.rs) returning the same body;
  - a Python and a Node "hello" function deployed with `nimbus deploy` (release build);
each under wrk at 1 and 32 connections (requests/s, p50 and p99 latency, and the rate as a share
of the baseline's in the same run: compare those across runs, the machine being shared; and the
worker processes the pool had then). Then the
cold start (first request after the pool scaled to zero) against a bare `python3 -c pass` /
`node -e 0` spawn, the worker processes left when idle, the runtime's idle RSS, and the machine's
load average before and after (other processes on these CPUs lower every figure).

Usage: bench/gateway.py [--duration 10] [--cold-runs 10] [--json]
Needs wrk (`apt-get install wrk`; installed automatically when running as root).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NIMBUS = os.path.join(ROOT, "target", "release", "nimbus")


def ensure_wrk():
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")


def wrk(url, connections, duration):
    threads = 1 if connections == 1 else 2
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % p, out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps), "p50_ms": round(pct(50), 3), "p99_ms": round(pct(99), 3),
            "non_2xx": int(errors.group(1)) if errors else 0}


def real_python():
    return subprocess.run(["python3", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True).stdout.strip()


def spawn_median(argv, runs):
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def nimbus(*args, cwd):
    return subprocess.run([NIMBUS, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def project(tmp, template, idle):
    d = os.path.join(tmp, template)
    nimbus("init", d, "--template", template, "--name", "bench-" + template, cwd=tmp)
    with open(os.path.join(d, "nimbus.yaml"), "a") as f:
        f.write("providers:\n  local: { idle_timeout: %ds }\n" % idle)
    return d


def info(d):
    return json.loads(nimbus("info", "--output", "json", cwd=d))


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ensure_wrk()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nimbus"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nimbus-local", "--example", "bench_hello_server"], cwd=ROOT, check=True)
    results = {"load": [], "cold_start": {}, "idle": {}, "load_average": {"before": load_average()}}
    base = subprocess.Popen([os.path.join(ROOT, "target", "release", "examples", "bench_hello_server"), "0"],
                            stdout=subprocess.PIPE, text=True)
    base_url = "http://127.0.0.1:%s/hello" % base.stdout.readline().strip()
    projects = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            idle = 3
            for template in ("python", "node"):
                d = project(tmp, template, idle)
                nimbus("deploy", cwd=d)
                projects.append(d)
            targets = [("baseline (bare hyper)", base_url, None)] + [
                ("%s hello via gateway" % t, info(d)["url"] + "/hello", d) for t, d in zip(("python", "node"), projects)]
            for name, url, d in targets:
                for _ in range(200):
                    get(url)  # warm up (and start the workers)
                for conns in (1, 32):
                    r = wrk(url, conns, args.duration)
                    # The worker processes the pool had grown to (none for the baseline).
                    r["workers"] = info(d)["functions"]["hello"]["instances"] if d else 0
                    r.update({"target": name, "connections": conns})
                    results["load"].append(r)
            # Cold start: wait for scale-to-zero, then time the first request.
            py = real_python()
            bare = {"python": spawn_median([py, "-c", "pass"], args.cold_runs),
                    "node": spawn_median(["node", "-e", "0"], args.cold_runs)}
            for template, d in zip(("python", "node"), projects):
                url = info(d)["url"] + "/hello"
                samples = []
                for _ in range(args.cold_runs):
                    deadline = time.time() + idle + 10
                    while info(d)["functions"]["hello"]["instances"] != 0 and time.time() < deadline:
                        time.sleep(0.2)
                    t = time.perf_counter()
                    get(url)
                    samples.append((time.perf_counter() - t) * 1000)
                results["cold_start"][template] = {"first_request_ms": round(statistics.median(samples), 1),
                                                   "bare_spawn_ms": round(bare[template], 1),
                                                   "over_bare_ms": round(statistics.median(samples) - bare[template], 1)}
            # Idle: processes left and the runtime's memory.
            for template, d in zip(("python", "node"), projects):
                i = info(d)
                deadline = time.time() + idle + 10
                while info(d)["functions"]["hello"]["instances"] != 0 and time.time() < deadline:
                    time.sleep(0.2)
                children = subprocess.run(["pgrep", "-P", str(i["pid"])], capture_output=True, text=True).stdout.split()
                results["idle"][template] = {"worker_processes": len(children), "runtime_rss_mb": round(rss_kb(i["pid"]) / 1024, 1)}
        finally:
            for d in projects:
                subprocess.run([NIMBUS, "remove", "--yes"], cwd=d, capture_output=True)
            base.terminate()
    results["load_average"]["after"] = load_average()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    # Other processes share these CPUs: the load average says how much (2 CPUs: 2.0 is full).
    print("machine load average (1 min): %s before, %s after" % (results["load_average"]["before"], results["load_average"]["after"]))
    # Each target's rate as a share of the baseline's at the same number of connections, this run.
    base = {r["connections"]: r["rps"] for r in results["load"] if r["target"].startswith("baseline")}
    print("%-26s %5s %10s %9s %9s %7s %9s %8s" % ("target", "conns", "req/s", "p50 ms", "p99 ms", "non2xx", "of base",
                                                  "workers"))
    for r in results["load"]:
        share = 100.0 * r["rps"] / base[r["connections"]] if base.get(r["connections"]) else 0.0
        print("%-26s %5d %10d %9.3f %9.3f %7d %8.1f%% %8s" % (r["target"], r["connections"], r["rps"], r["p50_ms"],
                                                              r["p99_ms"], r["non_2xx"], share, r["workers"] or "-"))
    for t, c in results["cold_start"].items():
        print("cold start %-6s first request %.1f ms, bare spawn %.1f ms (+%.1f ms)" % (t, c["first_request_ms"], c["bare_spawn_ms"], c["over_bare_ms"]))
    for t, c in results["idle"].items():
        print("idle %-6s worker processes %d, runtime RSS %.1f MB" % (t, c["worker_processes"], c["runtime_rss_mb"]))


if __name__ == "__main__":
    main()
