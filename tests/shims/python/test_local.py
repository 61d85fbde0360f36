"""Local worker (Python): a real subprocess speaking the framed protocol on fds 3 (in) and 4 (out)."""

import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import pytest

from conftest import build_package, config


def interpreters():
    found = [sys.executable]
    for name in ("python3.11", "python3.13"):
        p = shutil.which(name)
        if p:
            real = subprocess.run([p, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
            if real.returncode == 0 and real.stdout.strip() not in found:
                found.append(real.stdout.strip())
    return found


class Worker:
    def __init__(self, root, python, argv=None, tmp=None):
        # The protocol pipes must be fds 3 and 4 in the worker. Park our ends at fds >= 10 and let
        # a tiny exec wrapper move them into place (dup2) before exec'ing the worker (as the local runtime does with dup2).
        r, self._to_worker = os.pipe()
        self._from_worker, w = os.pipe()
        hi_r = fcntl.fcntl(r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(r)
        os.close(w)
        self.out_path = tmp / ("stdout-%d.log" % id(self))
        self.err_path = tmp / ("stderr-%d.log" % id(self))
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        env = dict(os.environ)
        env.pop("NIMBUS_PACKAGE_ROOT", None)
        cmd = argv or [python, "-m", "_nimbus.local_worker"]
        move = ("import os, sys; os.dup2(%d, 3); os.dup2(%d, 4); os.close(%d); os.close(%d); "
                "os.execvp(sys.argv[1], sys.argv[1:])" % (hi_r, hi_w, hi_r, hi_w))
        self.proc = subprocess.Popen([sys.executable, "-c", move] + cmd, cwd=str(root), env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     pass_fds=(hi_r, hi_w))
        os.close(hi_r)
        os.close(hi_w)

    def send(self, obj):
        data = json.dumps(obj).encode()
        os.write(self._to_worker, struct.pack(">I", len(data)) + data)

    def send_raw(self, data):
        os.write(self._to_worker, data)

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = os.read(self._from_worker, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def recv(self):
        hdr = self._read_exact(4)
        if hdr is None:
            return None
        (n,) = struct.unpack(">I", hdr)
        return json.loads(self._read_exact(n).decode())

    def invoke(self, id_, event, deadline_in=5000, request_id=None):
        self.send({"id": id_, "event": event, "deadline_ms": int(time.time() * 1000) + deadline_in,
                   "request_id": request_id or "req-%s" % id_})
        return self.recv()

    def close(self, timeout=10):
        try:
            os.close(self._to_worker)
        except OSError:
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self._from_worker)
            self._out.close()
            self._err.close()
        return rc

    def stdout(self):
        return self.out_path.read_bytes()

    def stderr(self):
        return self.err_path.read_bytes()


@pytest.fixture(params=interpreters(), ids=lambda p: os.path.basename(p))
def python(request):
    return request.param


@pytest.fixture
def worker(tmp_path, python):
    made = []

    def start(handler="handlers/probe.py", argv=None):
        root = build_package(tmp_path / ("pkg%d" % len(made)), "local", config("local", handler))
        w = Worker(root, python, argv=argv, tmp=tmp_path)
        made.append(w)
        return w
    yield start
    for w in made:
        if w.proc.poll() is None:
            w.close()


HTTP = {"type": "http", "method": "POST", "path": "/orders", "route": "/orders", "path_params": {}, "query": {},
        "headers": {"content-type": "application/json"}, "body": '{"a":1}', "is_base64": False,
        "source_ip": "127.0.0.1"}


def test_ready_invoke_and_eof(worker):
    w = worker()
    ready = w.recv()
    assert ready["ready"] is True and ready["load_ms"] >= 0 and ready["pid"] == w.proc.pid
    deadline = int(time.time() * 1000) + 4000
    w.send({"id": 1, "event": HTTP, "deadline_ms": deadline, "request_id": "req-abc"})
    r = w.recv()
    assert r["id"] == 1 and r["ok"] is True and r["duration_ms"] >= 0
    res = r["result"]
    assert res["status"] == 200 and res["is_base64"] is False
    assert res["headers"] == {"x-handler": "probe", "content-type": "application/json"}
    body = json.loads(res["body"])
    assert body["event"] == HTTP
    assert body["context"] == {"function_name": "probe", "request_id": "req-abc", "service": "shop", "stage": "dev",
                               "provider": "local", "deadline_ms": deadline, "remaining_ok": True,
                               "resources": ["orders"]}
    # several invocations, one at a time, ids echoed
    q = {"type": "queue", "source": "payments", "messages": [
        {"id": "m1", "body": "ok", "attributes": {}, "receive_count": 1},
        {"id": "m2", "body": "please fail", "attributes": {"a": "b"}, "receive_count": 2}]}
    r = w.invoke("two", q)
    assert r.pop("output") == [len(w.stdout()), len(w.stderr())]  # stdout and stderr are files here
    assert r == {"id": "two", "ok": True, "result": {"failed": ["m2"]}, "duration_ms": pytest.approx(0, abs=10_000)}
    q["messages"][1]["body"] = "fine"
    assert w.invoke(3, q)["result"] == {"failed": []}
    assert w.invoke(4, {"type": "schedule", "name": "nightly", "time": "2026-11-25T03:00:00Z"})["result"] is None
    bin_res = w.invoke(5, dict(HTTP, path="/x/bytes"))["result"]
    assert bin_res == {"status": 200, "headers": {"content-type": "application/octet-stream"},
                       "body": "AAH/Ymlu", "is_base64": True}
    assert w.invoke(6, dict(HTTP, path="/x/none"))["result"] == {"status": 204, "headers": {}, "body": None,
                                                                  "is_base64": False}
    assert w.close() == 0  # EOF on fd 3 -> exit 0


def test_handler_exception_keeps_worker_alive(worker):
    w = worker()
    assert w.recv()["ready"] is True
    r = w.invoke(1, dict(HTTP, path="/x/error"))
    assert r["id"] == 1 and r["ok"] is False
    assert r["error"]["type"] == "RuntimeError" and r["error"]["message"] == "boom from handler"
    assert "boom from handler" in r["error"]["stack"] and "probe.py" in r["error"]["stack"]
    # The user's frames only: the first is the handler's file:line, no shim frame.
    lines = r["error"]["stack"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith("  File ") and "probe.py" in lines[1] and ", line " in lines[1], lines
    assert "_nimbus" not in r["error"]["stack"]
    assert lines[-1] == "RuntimeError: boom from handler"
    r = w.invoke(2, {"type": "queue", "source": "payments", "messages": [
        {"id": "m1", "body": "boom", "attributes": {}, "receive_count": 1}]})
    assert r["ok"] is False and r["error"]["message"] == "batch boom"
    assert w.invoke(3, HTTP)["ok"] is True
    assert w.close() == 0


def test_protocol_errors(worker):
    w = worker()
    assert w.recv()["ready"] is True
    w.send({"id": 7, "event": {"nope": 1}})
    r = w.recv()
    assert r["id"] == 7 and r["ok"] is False and r["error"]["type"] == "ProtocolError"
    w.send_raw(struct.pack(">I", 5) + b"{bad}")
    r = w.recv()
    assert r["id"] is None and r["error"]["type"] == "ProtocolError" and "not UTF-8 JSON" in r["error"]["message"]
    r = w.invoke(8, {"type": "queue", "source": "payments", "messages": [{"id": "m1", "body": "x"}]})
    assert r["ok"] is True  # still serving
    assert w.close() == 0


def test_frames_in_one_write_and_split_across_writes(worker):
    # The worker reads whatever the pipe holds: several frames at once, or a frame in pieces.
    w = worker()
    assert w.recv()["ready"] is True
    frames = []
    for i in (1, 2, 3):
        data = json.dumps({"id": i, "event": HTTP, "deadline_ms": int(time.time() * 1000) + 4000,
                           "request_id": "req-%d" % i}).encode()
        frames.append(struct.pack(">I", len(data)) + data)
    w.send_raw(b"".join(frames))
    assert [w.recv()["id"] for _ in frames] == [1, 2, 3]
    big = dict(HTTP, body="x" * 200_000)  # more than one read of the pipe
    data = json.dumps({"id": 4, "event": big, "deadline_ms": int(time.time() * 1000) + 4000,
                       "request_id": "req-4"}).encode()
    frame = struct.pack(">I", len(data)) + data
    w.send_raw(frame[:2])
    time.sleep(0.05)
    w.send_raw(frame[2:])
    r = w.recv()
    assert r["id"] == 4 and r["ok"] is True
    assert w.close() == 0


def test_timeout_ms_counts_from_the_start_of_the_invocation(worker):
    # Two frames at once: the second, sent ahead, starts after the first, and its deadline is
    # its own start + timeout_ms.
    w = worker()
    assert w.recv()["ready"] is True
    frames = b""
    for i in (1, 2):
        data = json.dumps({"id": i, "event": HTTP, "timeout_ms": 3000, "request_id": "req-%d" % i}).encode()
        frames += struct.pack(">I", len(data)) + data
    before = int(time.time() * 1000)
    w.send_raw(frames)
    replies = [w.recv(), w.recv()]
    after = int(time.time() * 1000)
    assert [r["id"] for r in replies] == [1, 2]
    for r in replies:
        deadline = json.loads(r["result"]["body"])["context"]["deadline_ms"]
        assert before + 3000 <= deadline <= after + 3000
    assert w.close() == 0


def test_topic_partial_failure(worker):
    w = worker("handlers/probe.py")
    assert w.recv()["ready"] is True
    r = w.invoke(1, {"type": "topic", "source": "t", "messages": [{"id": "x", "body": "fail", "attributes": {}},
                                                                  {"id": "y", "body": "ok", "attributes": {}}]})
    assert r == {"id": 1, "ok": True, "result": {"failed": ["x"]}, "duration_ms": r["duration_ms"],
                 "output": r["output"]}
    assert w.close() == 0


def test_load_error(worker):
    w = worker("handlers/broken.py")
    r = w.recv()
    assert r["ready"] is False and r["error"]["type"] == "HandlerLoadError"
    assert "broken on purpose" in r["error"]["message"] and "broken.py" in r["error"]["stack"]
    assert w.recv() is None  # the worker exits after reporting
    assert w.close() == 1


def test_stdout_does_not_corrupt_protocol(worker):
    w = worker("handlers/printer.py")
    ready = w.recv()
    assert ready["ready"] is True and ready["output"] == [len(w.stdout()), len(w.stderr())]
    for i in range(3):
        r = w.invoke(i, HTTP)
        assert r["ok"] is True and r["result"]["body"] == "printed"
        # Where this invocation's output ends: all of it is flushed, nothing more is there.
        assert r["output"] == [len(w.stdout()), len(w.stderr())] and r["output"][0] > ready["output"][0]
    assert w.close() == 0
    out = w.stdout()
    assert out.count(b"log line from the handler\n") == 3 and b'{"id":"x1"}' in out
    assert w.stderr().count(b"to stderr") == 3


def test_coroutine_handler(worker):
    w = worker("handlers/async_probe.py")
    assert w.recv()["ready"] is True
    r = w.invoke(1, HTTP)
    assert json.loads(r["result"]["body"]) == {"module": "async", "type": "http", "function_name": "probe"}
    assert w.close() == 0


def test_run_as_a_file(worker, python):
    w = worker(argv=[python, "_nimbus/local_worker.py"])
    assert w.recv()["ready"] is True
    assert w.invoke(1, HTTP)["ok"] is True
    assert w.close() == 0
