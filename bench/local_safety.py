#!/usr/bin/env python3
"""Measure what a hostile or careless client can hold of the local runtime, and what outlives it.

With the given `nimbus` binary (default: target/debug/nimbus), on free loopback ports:
  - slowloris: 200 connections that never finish their request head; how many the runtime still
    holds (sockets in /proc/<pid>/fd beyond its idle count) 3 s and 15 s later;
  - idle partial request: one connection sending half a head; seconds until the server closes it
    (capped at 60 s);
  - runtime death: a 30 s Python handler is running when the runtime gets `kill -9`; seconds until
    its worker process is gone (capped at 40 s).

Usage: bench/local_safety.py [--nimbus PATH] [--json]
Compare two builds by running it with each one's binary (say, main's and a branch's).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MANIFEST = """version: 1
service: safety
functions:
  hello:
    handler: app.py:hello
    triggers: [ { http: { method: GET, path: /hello } } ]
  sleepy:
    handler: app.py:sleepy
    timeout: 60s
    env: { PIDS: "%s" }
    triggers: [ { http: { method: GET, path: /sleepy } } ]
"""

HANDLER = """import os, time

def hello(event, context):
    return 'hello'

def sleepy(event, context):
    with open(os.path.join(os.environ['PIDS'], 'sleepy'), 'w') as f:
        f.write(str(os.getpid()))
    time.sleep(30)
    return 'done'
"""


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return not f.read().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return False


def sockets(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def closed(s):
    """Whether the server has closed `s` (or answered, which it does only before closing)."""
    try:
        s.recv(1024, socket.MSG_DONTWAIT)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nimbus", default=os.path.join(ROOT, "target", "debug", "nimbus"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp()
    pids = os.path.join(work, "pids")
    os.mkdir(pids)
    project = os.path.join(work, "project")
    os.mkdir(project)
    with open(os.path.join(project, "nimbus.yaml"), "w") as f:
        f.write(MANIFEST % pids)
    with open(os.path.join(project, "app.py"), "w") as f:
        f.write(HANDLER)
    env = dict(os.environ, XDG_DATA_HOME=os.path.join(work, "data"))
    for k in ("NIMBUS_PROVIDER", "NIMBUS_STAGE"):
        env.pop(k, None)

    def nimbus(*a):
        return subprocess.run([args.nimbus, *a], cwd=project, env=env, capture_output=True,
                              text=True, check=True).stdout

    url = nimbus("deploy", "--port", "0").strip()
    host, port = url[len("http://"):].split(":")
    addr = (host, int(port))
    out = {}
    try:
        pid = json.loads(nimbus("info", "--output", "json"))["pid"]
        urllib.request.urlopen(url + "/hello", timeout=30).read()
        idle = sockets(pid)
        conns = []
        for _ in range(200):
            s = socket.create_connection(addr)
            s.sendall(b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: ")
            conns.append(s)
        time.sleep(3)
        out["slowloris_held_after_3s"] = sockets(pid) - idle
        time.sleep(12)
        out["slowloris_held_after_15s"] = sockets(pid) - idle
        out["slowloris_client_side_open_after_15s"] = sum(not closed(s) for s in conns)
        for s in conns:
            s.close()
        s = socket.create_connection(addr)
        s.sendall(b"GET /hello HTTP/1.1\r\nhost: x\r\n")
        s.settimeout(60)
        started = time.monotonic()
        try:
            while s.recv(1024):
                pass
            out["idle_partial_request_closed_after_s"] = round(time.monotonic() - started, 2)
        except socket.timeout:
            out["idle_partial_request_closed_after_s"] = "still open after 60"
        s.close()

        caller = subprocess.Popen(["curl", "-s", "-m", "60", url + "/sleepy"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pidfile = os.path.join(pids, "sleepy")
        for _ in range(300):
            if os.path.exists(pidfile) and open(pidfile).read().strip():
                break
            time.sleep(0.1)
        worker = int(open(pidfile).read())
        os.kill(pid, 9)
        killed = time.monotonic()
        while alive(worker) and time.monotonic() - killed < 40:
            time.sleep(0.05)
        out["worker_alive_after_runtime_kill_s"] = (
            round(time.monotonic() - killed, 2) if not alive(worker) else "still alive after 40")
        if alive(worker):
            os.kill(worker, 9)
        caller.kill()
    finally:
        subprocess.run([args.nimbus, "remove", "--yes"], cwd=project, env=env, capture_output=True)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print("%-40s %s" % (k, v))


if __name__ == "__main__":
    sys.exit(main())
