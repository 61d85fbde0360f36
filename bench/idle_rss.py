#!/usr/bin/env python3
"""The local runtime's memory with the shop deployed, A/B between two builds of `nimbus`.

For each binary (a `nimbus` with its `nimbus-runtime` beside it, as `cargo build --release`
leaves them), interleaved A, B, A, B …: copy examples/shop to a fresh folder with a fresh
XDG_DATA_HOME, store the demo payment key, `nimbus deploy --port 0`, wait, read the runtime's
VmRSS (idle); then place N orders through the HTTP API, wait, read it again (after traffic);
`nimbus remove --yes`. Prints min/median/max per binary and the B/A ratio of the medians.

Usage: bench/idle_rss.py A/nimbus B/nimbus [--runs 3] [--orders 50] [--settle 8]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def one_run(nimbus, orders, settle):
    with tempfile.TemporaryDirectory() as tmp:
        project = os.path.join(tmp, "shop")
        shutil.copytree(os.path.join(ROOT, "examples", "shop"), project,
                        ignore=shutil.ignore_patterns(".nimbus"))
        env = dict(os.environ, XDG_DATA_HOME=os.path.join(tmp, "data"), NO_COLOR="1")
        for name in ("NIMBUS_PROVIDER", "NIMBUS_STAGE"):
            env.pop(name, None)

        def run(*args, stdin=None):
            return subprocess.run([nimbus, *args], cwd=project, env=env, input=stdin,
                                  capture_output=True, text=True, check=True).stdout

        run("secret", "set", "payment-key", stdin="pk_test_bench")
        url = run("deploy", "--port", "0").strip()
        try:
            pid = json.loads(run("info", "--output", "json"))["pid"]
            time.sleep(settle)
            idle = rss_kb(pid)
            for i in range(orders):
                body = json.dumps({"items": [{"sku": "widget", "qty": 1}],
                                   "email": f"b{i}@example.com", "amount": 5}).encode()
                req = urllib.request.Request(url + "/orders", data=body,
                                             headers={"content-type": "application/json"})
                urllib.request.urlopen(req, timeout=30).read()
            time.sleep(settle)
            busy = rss_kb(pid)
        finally:
            run("remove", "--yes")
        return idle, busy


def summary(values):
    return "%.1f / %.1f / %.1f MB" % (min(values) / 1024, statistics.median(values) / 1024,
                                      max(values) / 1024)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--orders", type=int, default=50)
    p.add_argument("--settle", type=float, default=8.0)
    args = p.parse_args()
    binaries = (args.a, args.b)
    got = (([], []), ([], []))
    for _ in range(args.runs):
        for side, nimbus in enumerate(binaries):
            idle, busy = one_run(os.path.abspath(nimbus), args.orders, args.settle)
            got[side][0].append(idle)
            got[side][1].append(busy)
    print("runtime VmRSS, min / median / max over %d runs (interleaved)" % args.runs)
    for side, (label, nimbus) in enumerate(zip("AB", binaries)):
        idle, busy = got[side]
        print(f"{label} {nimbus}\n  idle after deploy:      {summary(idle)}"
              f"\n  idle after {args.orders} orders: {summary(busy)}")
    for i, what in ((0, "idle"), (1, "after orders")):
        ratio = statistics.median(got[1][i]) / statistics.median(got[0][i])
        print(f"B/A {what}: {ratio:.2f}")


if __name__ == "__main__":
    main()
