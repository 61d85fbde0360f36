#!/usr/bin/env python3
"""Benchmark `nimbus deploy -p gcp` of the example shop against the emulators and the double.

Starts fake-gcs-server, Google's Pub/Sub and Firestore emulators and the discovery-validated
control-plane double (crates/nimbus-gcp/tests/support/gcp_env.py), then, in one run on this
machine:
  - first deploy (after a `nimbus remove --yes`, so every object and package is made again), N runs;
  - unchanged redeploy, N runs;
medians of N (default 5), with the requests each made — reads and writes, counted by the double,
which every request of a deploy passes through (not by nimbus). The baselines, measured in the
same run: `nimbus validate -p gcp` (compiling the manifest, no cloud call) and `nimbus build -p gcp`
with its packages cached.

Long-running operations are polled every --poll-ms (NIMBUS_GCP_POLL_MS; the double finishes an
operation on its second read), so the numbers measure nimbus and the double, not Google's builds.
Runs itself in the project's venv (.tools/venv, installed as scripts/test does when missing);
needs gcloud's emulators.
Usage: bench/gcp.py [--runs 5] [--poll-ms 50] [--debug] [--json]
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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPPORT = os.path.join(ROOT, "crates", "nimbus-gcp", "tests", "support")
APIS = ("storage", "pubsub", "iam", "cloudresourcemanager", "firestore", "cloudfunctions", "run", "eventarc",
        "cloudscheduler", "apigateway", "logging")
PROJECT = "nimbus-bench-shop"


def timed(cmd, cwd, env):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()[-3000:]}")
    return elapsed, proc.stdout


def in_the_venv():
    """Re-runs this script with the project's venv python (where the emulator wrappers and
    Google's libraries are installed), installing the venv first when it is missing."""
    venv = os.path.join(ROOT, ".tools", "venv")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    python = subprocess.run(["bash", "-c", "source scripts/lib/tools.sh && ensure_venv"], cwd=ROOT,
                            check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


def main():
    in_the_venv()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll-ms", type=int, default=50)
    parser.add_argument("--debug", action="store_true", help="use the debug build (faster to build)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    profile = "debug" if args.debug else "release"
    build = ["cargo", "build", "-q", "-p", "nimbus"] + ([] if args.debug else ["--release"])
    subprocess.run(build, cwd=ROOT, check=True)
    nimbus = os.path.join(ROOT, "target", profile, "nimbus")

    sys.path.insert(0, SUPPORT)
    sys.dont_write_bytecode = True
    import gcp_env  # noqa: E402

    env_servers = gcp_env.start()
    double = env_servers.urls["double"]

    def log():
        with urllib.request.urlopen(double + "/_double/requests") as r:
            return json.load(r)

    def count(since):
        calls = [r for r in log()[since:] if PROJECT in json.dumps(r)]
        writes = sum(1 for r in calls if r["write"])
        return len(calls) - writes, writes

    results = []
    try:
        env = dict(os.environ, NO_COLOR="1", NIMBUS_GCP_ANONYMOUS="1", NIMBUS_GCP_POLL_MS=str(args.poll_ms),
                   NIMBUS_GCP_RETRY_BASE_MS="50")
        for api in APIS:
            env[f"NIMBUS_GCP_{api.upper()}_ENDPOINT"] = f"{double}/{api}"
        for var in ("NIMBUS_PROVIDER", "NIMBUS_STAGE", "GOOGLE_APPLICATION_CREDENTIALS"):
            env.pop(var, None)
        with tempfile.TemporaryDirectory() as tmp:
            shop = os.path.join(tmp, "shop")
            shutil.copytree(os.path.join(ROOT, "examples", "shop"), shop,
                            ignore=shutil.ignore_patterns(".nimbus", "tests", "__pycache__", "node_modules"))
            manifest = os.path.join(shop, "nimbus.yaml")
            with open(manifest, encoding="utf-8") as f:
                text = f.read().replace("project: my-project", f"project: {PROJECT}")
            with open(manifest, "w", encoding="utf-8") as f:
                f.write(text)
            # Build once so every timed deploy finds its packages cached (as a CI cache would).
            timed([nimbus, "build", "-p", "gcp"], shop, env)
            validate = statistics.median(timed([nimbus, "validate", "-p", "gcp"], shop, env)[0]
                                         for _ in range(args.runs))
            built = statistics.median(timed([nimbus, "build", "-p", "gcp"], shop, env)[0] for _ in range(args.runs))
            first, again, first_calls, again_calls, resources = [], [], None, None, 0
            for _ in range(args.runs):
                timed([nimbus, "remove", "-p", "gcp", "--yes"], shop, env)
                mark = len(log())
                t, out = timed([nimbus, "deploy", "-p", "gcp", "--output", "json"], shop, env)
                first.append(t)
                first_calls = count(mark)
                resources = json.loads(out)["report"]["summary"]["create"]
                mark = len(log())
                t, _ = timed([nimbus, "deploy", "-p", "gcp", "--output", "json"], shop, env)
                again.append(t)
                again_calls = count(mark)
            timed([nimbus, "remove", "-p", "gcp", "--yes"], shop, env)
            for case, times, calls in (("first deploy", first, first_calls), ("unchanged redeploy", again, again_calls)):
                median = statistics.median(times)
                results.append({
                    "app": "shop", "case": case, "resources": resources, "median_ms": round(median * 1000, 1),
                    "x_validate": round(median / validate, 1), "x_build": round(median / built, 1),
                    "requests": {"reads": calls[0], "writes": calls[1]},
                    "baseline_validate_ms": round(validate * 1000, 1), "baseline_build_ms": round(built * 1000, 1),
                    "poll_ms": args.poll_ms, "profile": profile,
                })
    finally:
        env_servers.stop()

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"nimbus deploy -p gcp ({profile}) against the emulators and the control-plane double, medians of "
          f"{args.runs}, operations polled every {args.poll_ms} ms")
    print(f"{'case':<20} {'resources':>9} {'median':>10} {'x validate':>11} {'x build':>8} {'reads':>7} {'writes':>7}")
    for r in results:
        print(f"{r['case']:<20} {r['resources']:>9} {r['median_ms']:>8.1f}ms {r['x_validate']:>11} {r['x_build']:>8} "
              f"{r['requests']['reads']:>7} {r['requests']['writes']:>7}")
    print(f"baselines (same run): validate {results[0]['baseline_validate_ms']} ms, "
          f"build (cached) {results[0]['baseline_build_ms']} ms")


if __name__ == "__main__":
    main()
