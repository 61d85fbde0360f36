"""Helpers for the Python shim tests: package layout, fixtures, servers, in-process loading."""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest


def _find_root() -> pathlib.Path:
    for d in pathlib.Path(__file__).resolve().parents:
        if (d / "providers" / "common" / "shims").is_dir():
            return d
    raise RuntimeError("cannot find the repository root from %s" % __file__)


ROOT = _find_root()
TESTS = ROOT / "tests" / "shims"
FIXTURES = pathlib.Path(os.environ.get("NIMBUS_FIXTURES") or (ROOT.parent / "shared" / "fixtures" / "events"))
TOOLS = ROOT / ".tools"
VENV_BIN = pathlib.Path(sys.executable).parent


def fixture(rel: str):
    with open(FIXTURES / rel, encoding="utf-8") as f:
        return json.load(f)


def local_event(rel: str):
    with open(TESTS / "events" / rel, encoding="utf-8") as f:
        return json.load(f)


def expected(provider: str, name: str):
    with open(TESTS / "expected" / provider / (name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def config(provider: str, handler: str = "handlers/probe.py", **overrides) -> dict:
    with open(TESTS / "configs" / (provider + ".json"), encoding="utf-8") as f:
        cfg = json.load(f)
    file, _, export = handler.partition(":")
    cfg["handler"] = {"file": file, "export": export or "handler"}
    cfg.update(overrides)
    return cfg


def build_package(dest: pathlib.Path, provider: str, cfg: dict, lang: str = "python") -> pathlib.Path:
    """Lay out a function package the way the packager does: common shim + provider shim
    overlaid at the zip root (no file may collide), the user's code at its manifest path,
    and _nimbus/function.json."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    common = ROOT / "providers" / "common" / "shims" / lang
    prov = ROOT / "providers" / provider / "shims" / lang
    shutil.copytree(common, dest, dirs_exist_ok=True)
    for src in prov.rglob("*"):
        rel = src.relative_to(prov)
        if "__pycache__" in rel.parts or src.is_dir():
            continue
        target = dest / rel
        assert not target.exists(), "shim file collision: %s" % rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    shutil.copytree(TESTS / "handlers", dest / "handlers", dirs_exist_ok=True)
    (dest / "_nimbus" / "function.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    if provider == "gcp" and lang == "node":
        (dest / "package.json").write_text('{"main":"_nimbus_gcp.js"}', encoding="utf-8")
    return dest


_PURGE = ("_nimbus", "_nimbus_aws", "handlers", "main")


def _purge_modules():
    for name in list(sys.modules):
        if name.split(".")[0] in _PURGE or name.startswith("_nimbus_user_"):
            del sys.modules[name]


@contextlib.contextmanager
def in_process(root: pathlib.Path):
    """Import a built package's shim modules in this interpreter (fresh copies)."""
    root = str(root)
    _purge_modules()
    sys.path.insert(0, root)
    try:
        yield
    finally:
        _purge_modules()
        while root in sys.path:
            sys.path.remove(root)


class Recorder:
    """Reads what the probe handler records (NIMBUS_TEST_RECORD)."""

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.clear()

    def clear(self):
        self.path.write_text("", encoding="utf-8")

    def all(self):
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def last(self):
        items = self.all()
        assert items, "the handler recorded nothing"
        return items[-1]


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    rec = Recorder(tmp_path / "record.jsonl")
    monkeypatch.setenv("NIMBUS_TEST_RECORD", str(rec.path))
    return rec


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process on 127.0.0.1:port, in its own process group, stopped by stop()."""

    def __init__(self, argv, cwd, env, port, log_path):
        self.port = port
        self.log_path = pathlib.Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                self._log.close()
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("server did not listen on 127.0.0.1:%d:\n%s" % (port, self.log()))
                time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def request(self, method, path, headers=None, body=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def header_values(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def deep_copy(x):
    return copy.deepcopy(x)


@pytest.fixture(scope="session")
def gcp_emulators():
    """Google's Firestore and Pub/Sub emulators and fake-gcs-server on free ports, for the whole
    session (crates/nimbus-gcp/tests/support/gcp_env.py starts and stops them): their URLs."""
    support = str(ROOT / "crates" / "nimbus-gcp" / "tests" / "support")
    sys.path.insert(0, support)
    try:
        import gcp_env
    finally:
        sys.path.remove(support)
    try:
        env = gcp_env.start(("storage", "pubsub", "firestore"))
    except gcp_env.Missing as e:
        # A test that needs the emulators never passes without them.
        pytest.fail(str(e))
    try:
        yield env.urls
    finally:
        env.stop()


def rest(base, method, path, body=None, timeout=30):
    """A JSON call to an emulator's REST API: ``(status, parsed body or None)``."""
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, method=method, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")
