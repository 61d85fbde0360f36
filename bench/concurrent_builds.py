#!/usr/bin/env python3
"""Run pairs of `nimbus build` on one project at the same moment and count the failures.

Two builds of the same project at once must never corrupt each other (issue #13). For each of
N rounds (default 50) the script starts two `nimbus build -p PROVIDER` processes together on a
copy of an example (`examples/hello-http` by default: small, so both finish at nearly the same
instant), waits for both, and counts the runs that fail and the rounds that leave temporary files or a `build.json` whose packages do not match the zips on disk. It prints
one JSON line: rounds, builds, failed builds, the distinct error lines, and leftovers.

Usage: bench/concurrent_builds.py [--rounds 50] [--provider aws] [--example hello-http] [--force]
       [--nimbus PATH]
(the default binary is target/debug/nimbus, built first with `cargo build -p nimbus`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def copy_example(name, dest):
    shutil.copytree(
        os.path.join(ROOT, "examples", name),
        dest,
        ignore=shutil.ignore_patterns(".nimbus", "__pycache__", ".pytest_cache"),
    )


def consistent(out_dir):
    """Whether build.json names zips whose sizes match, and no temporary file is left."""
    names = os.listdir(out_dir)
    if any(n.endswith(".tmp") or ".tmp-" in n for n in names):
        return False
    with open(os.path.join(out_dir, "build.json")) as f:
        manifest = json.load(f)
    return all(
        os.path.getsize(os.path.join(out_dir, a["file"])) == a["size"]
        for a in manifest["functions"].values()
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--provider", default="aws")
    parser.add_argument("--example", default="hello-http", help="the folder of examples/ to build")
    parser.add_argument("--force", action="store_true", help="rebuild every package every time")
    parser.add_argument("--nimbus", help="the binary to run (default: build target/debug/nimbus)")
    args = parser.parse_args()

    nimbus = args.nimbus
    if nimbus is None:
        subprocess.run(["cargo", "build", "-q", "-p", "nimbus"], cwd=ROOT, check=True)
        nimbus = os.path.join(ROOT, "target", "debug", "nimbus")
    cmd = [nimbus, "build", "-p", args.provider] + (["--force"] if args.force else [])

    failed, errors, inconsistent = 0, {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        project = os.path.join(tmp, "shop")
        copy_example(args.example, project)
        # One build first, so dependency installs are cached and the rounds race on packaging.
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
        out_dir = os.path.join(project, ".nimbus", "build", args.provider, "dev")
        for _ in range(args.rounds):
            pair = [
                subprocess.Popen(cmd, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for _ in range(2)
            ]
            for p in pair:
                _, err = p.communicate()
                if p.returncode != 0:
                    failed += 1
                    line = next((l for l in err.decode().splitlines() if "error" in l), err.decode()[:200])
                    errors[line] = errors.get(line, 0) + 1
            if not consistent(out_dir):
                inconsistent += 1
    print(json.dumps({
        "command": " ".join(cmd[1:]),
        "rounds": args.rounds,
        "builds": 2 * args.rounds,
        "failed": failed,
        "errors": errors,
        "rounds_left_inconsistent": inconsistent,
    }))
    return 1 if failed or inconsistent else 0


if __name__ == "__main__":
    sys.exit(main())
