#!/usr/bin/env python3
"""Benchmark `nimbus deploy -p aws` against moto: the example shop and a generated service.

For each app, in one run on this machine:
  - first deploy into an empty account (moto reset before each run), N runs;
  - unchanged redeploy, N runs;
medians of N (default 5), with the AWS API requests each made (reads and writes), counted by a
recording proxy between nimbus and moto (not by nimbus). The baseline, measured in the same
run, is `nimbus validate -p aws` on the same manifest (compiling it, no cloud call).

Needs moto_server from the project's venv (scripts/test installs it into .tools/venv) or PATH.
Usage: bench/aws.py [--runs 5] [--functions 100] [--json]
"""

import argparse
import http.client
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from build import generate  # noqa: E402  (the same generated functions as bench/build.py)

READS = ("Get", "List", "Describe", "Head", "Query", "Scan", "Filter")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name):
    venv = os.path.join(ROOT, ".tools", "venv", "bin", name)
    return venv if os.path.exists(venv) else shutil.which(name)


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.reads = 0
        self.writes = 0

    def add(self, write):
        with self.lock:
            if write:
                self.writes += 1
            else:
                self.reads += 1

    def take(self):
        with self.lock:
            counts = (self.reads, self.writes)
            self.reads = self.writes = 0
            return counts


def operation_is_write(method, headers, body):
    target = headers.get("x-amz-target")
    if target:
        return not target.rsplit(".", 1)[-1].startswith(READS)
    for kv in body.decode("latin-1").split("&"):
        if kv.startswith("Action="):
            return not kv[len("Action="):].startswith(READS)
    return method not in ("GET", "HEAD")


def start_proxy(upstream_port, counter):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            counter.add(operation_is_write(self.command, headers, body))
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
            conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def timed(cmd, cwd, env):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()[-3000:]}")
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--functions", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    moto = tool("moto_server")
    if not moto:
        sys.exit("moto_server not found: run scripts/test once (it installs .tools/venv), or pip install 'moto[server]'")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nimbus"], cwd=ROOT, check=True)
    nimbus = os.path.join(ROOT, "target", "release", "nimbus")

    port = free_port()
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    counter = Counter()
    proxy = start_proxy(port, counter)
    results = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1",
                   NIMBUS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
        env.pop("NIMBUS_PROVIDER", None)
        env.pop("NIMBUS_STAGE", None)

        def reset():
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST"))

        with tempfile.TemporaryDirectory() as tmp:
            shop = os.path.join(tmp, "shop")
            shutil.copytree(os.path.join(ROOT, "examples", "shop"), shop,
                            ignore=shutil.ignore_patterns(".nimbus", "tests", "__pycache__", "node_modules"))
            generated = os.path.join(tmp, f"gen{args.functions}")
            generate(generated, args.functions)
            for name, app in (("shop", shop), (f"{args.functions} generated functions", generated)):
                # Build once so every timed deploy finds its packages cached (as a CI cache would).
                timed([nimbus, "build", "-p", "aws"], app, env)
                base = statistics.median(timed([nimbus, "validate", "-p", "aws"], app, env)[0] for _ in range(args.runs))
                first, again, first_calls, again_calls = [], [], None, None
                for _ in range(args.runs):
                    reset()
                    counter.take()
                    t, out = timed([nimbus, "deploy", "-p", "aws", "--output", "json"], app, env)
                    first.append(t)
                    first_calls = counter.take()
                    resources = json.loads(out)["report"]["summary"]["create"]
                    t, _ = timed([nimbus, "deploy", "-p", "aws", "--output", "json"], app, env)
                    again.append(t)
                    again_calls = counter.take()
                for case, times, calls in (("first deploy", first, first_calls), ("unchanged redeploy", again, again_calls)):
                    median = statistics.median(times)
                    results.append({
                        "app": name, "case": case, "resources": resources,
                        "median_ms": round(median * 1000, 1),
                        "x_baseline": round(median / base, 1),
                        "requests": {"reads": calls[0], "writes": calls[1]},
                        "baseline_validate_ms": round(base * 1000, 2),
                    })
    finally:
        proxy.shutdown()
        server.terminate()
        server.wait()

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"nimbus deploy -p aws against moto, medians of {args.runs} (baseline: nimbus validate -p aws, same run)")
    print(f"{'app':<26} {'case':<20} {'resources':>9} {'median':>10} {'x base':>8} {'reads':>7} {'writes':>7}")
    for r in results:
        print(f"{r['app']:<26} {r['case']:<20} {r['resources']:>9} {r['median_ms']:>8.1f}ms {r['x_baseline']:>8} "
              f"{r['requests']['reads']:>7} {r['requests']['writes']:>7}")
    for name in dict.fromkeys(r["app"] for r in results):
        b = next(r for r in results if r["app"] == name)["baseline_validate_ms"]
        print(f"baseline validate, {name}: {b} ms")


if __name__ == "__main__":
    main()
