"""Local resource clients (Python): _nimbus/local_resources.py.

Unit tests drive the clients through a fake transport that records every call and answers
with canned reply frames; the end-to-end test runs a real worker process and plays the local
runtime's side of the rpc frames (worker -> fd 4 -> here, here -> fd 3 -> worker)."""

import base64
import copy
import json
import sys
import textwrap
import time

import pytest

from conftest import build_package, config, in_process
from test_local import Worker

SPECS = {
    "orders": {"type": "table", "access": "read_write", "key": ["id", "line"], "native": {}},
    "audit": {"type": "table", "access": "read", "key": ["id"], "native": {}},
    "payments": {"type": "queue", "access": "send", "native": {}},
    "events": {"type": "topic", "access": "publish", "native": {}},
    "images": {"type": "bucket", "access": "read_write", "native": {}},
    "incoming": {"type": "queue", "access": None, "native": {}},
}


@pytest.fixture
def lr(tmp_path):
    root = build_package(tmp_path / "lr-pkg", "local", config("local", resources=copy.deepcopy(SPECS)))
    with in_process(root):
        from _nimbus import local_resources
        yield local_resources


class FakeTransport:
    """Records (resource, op, args) and answers with canned reply frames, in order."""

    def __init__(self, lr, *replies):
        self.lr = lr
        self.calls = []
        self.replies = list(replies)

    def __call__(self, resource, op, args):
        json.dumps({"rpc": 1, "resource": resource, "op": op, "args": args})  # frames must be JSON
        self.calls.append((resource, op, copy.deepcopy(args)))
        reply = self.replies.pop(0) if self.replies else {"ok": True, "result": None}
        return self.lr.result_of(reply, resource, op)


def ok(result=None):
    return {"rpc": 1, "ok": True, "result": result}


def client(lr, name, *replies):
    fake = FakeTransport(lr, *replies)
    return lr.make_client(name, SPECS[name], fake), fake


def test_table_frames(lr):
    t, fake = client(lr, "orders", ok({"id": "1", "line": 2, "total": 3}), ok(None), ok(None), ok(None),
                     ok([{"id": "1", "line": 2}]), ok([]), ok([{"id": "9", "line": 1}]))
    assert t.get({"id": "1", "line": 2}) == {"id": "1", "line": 2, "total": 3}
    assert t.get({"id": "2", "line": 1}) is None
    assert t.put({"id": "1", "line": 2, "total": 3, "tags": ["a"]}) is None
    assert t.delete({"id": "1", "line": 2}) is None
    assert t.query({"id": "1"}, limit=10) == [{"id": "1", "line": 2}]
    assert t.query({"id": "1"}) == []
    assert t.scan(limit=5) == [{"id": "9", "line": 1}]
    assert t.scan() == []  # default reply null -> []
    assert fake.calls == [
        ("orders", "get", {"key": {"id": "1", "line": 2}}),
        ("orders", "get", {"key": {"id": "2", "line": 1}}),
        ("orders", "put", {"item": {"id": "1", "line": 2, "total": 3, "tags": ["a"]}}),
        ("orders", "delete", {"key": {"id": "1", "line": 2}}),
        ("orders", "query", {"key": {"id": "1"}, "limit": 10}),
        ("orders", "query", {"key": {"id": "1"}, "limit": None}),
        ("orders", "scan", {"limit": 5}),
        ("orders", "scan", {"limit": None}),
    ]


def test_table_validation(lr):
    t, fake = client(lr, "orders")
    with pytest.raises(TypeError, match="table key must be a dict, got str"):
        t.get("1")
    with pytest.raises(TypeError, match="table key must be a dict, got list"):
        t.delete([("id", "1")])
    with pytest.raises(ValueError, match="table key must not be empty"):
        t.get({})
    with pytest.raises(ValueError, match="lacks the table's key field\\(s\\) 'line' \\(key: id, line\\)"):
        t.get({"id": "1"})
    with pytest.raises(TypeError, match="table item must be a dict, got None"):
        t.put(None)
    with pytest.raises(ValueError, match="table item lacks the table's key field\\(s\\) 'id'"):
        t.put({"line": 1, "total": 2})
    with pytest.raises(TypeError, match="field names must be strings"):
        t.put({"id": "1", "line": 1, 3: "x"})
    with pytest.raises(ValueError, match="query key lacks the table's key field\\(s\\) 'id'"):
        t.query({"line": 1})
    with pytest.raises(TypeError, match="limit must be a positive int or None, got str"):
        t.scan(limit="5")
    with pytest.raises(TypeError, match="limit must be a positive int"):
        t.query({"id": "1"}, limit=True)
    with pytest.raises(ValueError, match="limit must be a positive int or None, got 0"):
        t.scan(0)
    assert fake.calls == []  # nothing invalid reached the runtime


def test_queue_and_topic_frames(lr):
    q, qfake = client(lr, "payments", ok("m-1"), ok("m-2"), ok("m-3"))
    assert q.send("hello") == "m-1"
    assert q.send({"order": 42, "items": [1, "x"], "note": "é"}, {"kind": "card"}, delay_seconds=30) == "m-2"
    assert q.send([1, 2], attributes=None, delay_seconds=0) == "m-3"
    assert qfake.calls == [
        ("payments", "send", {"body": "hello", "attributes": {}, "delay_seconds": 0}),
        ("payments", "send", {"body": '{"order":42,"items":[1,"x"],"note":"é"}', "attributes": {"kind": "card"},
                              "delay_seconds": 30}),
        ("payments", "send", {"body": "[1,2]", "attributes": {}, "delay_seconds": 0}),
    ]
    tp, tfake = client(lr, "events", ok("p-1"), ok("p-2"))
    assert tp.publish("Hello\r\nworld!") == "p-1"
    assert tp.publish({"b": 1, "a": {"z": None, "y": True}}, {"source": "shop"}) == "p-2"
    assert tfake.calls == [
        ("events", "publish", {"body": "Hello\r\nworld!", "attributes": {}}),
        ("events", "publish", {"body": '{"b":1,"a":{"z":null,"y":true}}', "attributes": {"source": "shop"}}),
    ]


def test_queue_and_topic_validation(lr):
    q, fake = client(lr, "payments")
    with pytest.raises(TypeError, match="body must be a str, or a dict/list \\(sent as JSON\\), got bytes"):
        q.send(b"raw")
    with pytest.raises(TypeError, match="got int"):
        q.send(42)
    with pytest.raises(TypeError, match="attribute 'n' must be a str, got int"):
        q.send("x", {"n": 1})
    with pytest.raises(TypeError, match="attributes must be a dict of str -> str, got list"):
        q.send("x", ["a"])
    with pytest.raises(TypeError, match="attribute names must be non-empty strings"):
        q.send("x", {1: "a"})
    with pytest.raises(TypeError, match="delay_seconds must be an int, got float"):
        q.send("x", delay_seconds=1.5)
    with pytest.raises(ValueError, match="delay_seconds must be >= 0, got -1"):
        q.send("x", delay_seconds=-1)
    tp, tfake = client(lr, "events")
    with pytest.raises(TypeError, match="attribute 'flag' must be a str, got bool"):
        tp.publish("x", {"flag": True})
    with pytest.raises(TypeError, match="body must be a str"):
        tp.publish(None)
    assert fake.calls == [] and tfake.calls == []


def test_bucket_frames_and_base64(lr):
    data = b"\x00\x01\xff binary \x80"
    b, fake = client(lr, "images", ok(None), ok(None), ok(None),
                     ok({"data_b64": base64.b64encode(data).decode(), "content_type": "image/png"}),
                     ok(None), ok(None), ok(["uploads/a b.png", "uploads/c"]), ok([]))
    assert b.put("uploads/a b.png", data, content_type="image/png") is None
    assert b.put("notes/é.txt", "héllo") is None  # str -> UTF-8
    assert b.put("raw", bytearray(b"ab")) is None
    got = b.get("uploads/a b.png")
    assert got == data and isinstance(got, bytes)
    assert b.get("missing") is None
    assert b.delete("uploads/a b.png") is None
    assert b.list("uploads/") == ["uploads/a b.png", "uploads/c"]
    assert b.list() == []
    assert fake.calls == [
        ("images", "put", {"key": "uploads/a b.png", "data_b64": "AAH/IGJpbmFyeSCA", "content_type": "image/png"}),
        ("images", "put", {"key": "notes/é.txt", "data_b64": base64.b64encode("héllo".encode()).decode(),
                           "content_type": None}),
        ("images", "put", {"key": "raw", "data_b64": "YWI=", "content_type": None}),
        ("images", "get", {"key": "uploads/a b.png"}),
        ("images", "get", {"key": "missing"}),
        ("images", "delete", {"key": "uploads/a b.png"}),
        ("images", "list", {"prefix": "uploads/"}),
        ("images", "list", {"prefix": ""}),
    ]


def test_bucket_validation_and_bad_replies(lr):
    b, fake = client(lr, "images", ok({"content_type": None}), ok({"data_b64": "**not base64**"}))
    with pytest.raises(TypeError, match="bucket key must be a str, got int"):
        b.get(3)
    with pytest.raises(ValueError, match="bucket key must be a non-empty str"):
        b.put("", b"x")
    with pytest.raises(ValueError, match="non-empty"):
        b.delete("")
    with pytest.raises(TypeError, match="bucket data must be bytes or str, got dict"):
        b.put("k", {"a": 1})
    with pytest.raises(TypeError, match="content_type must be a str or None, got int"):
        b.put("k", b"x", 5)
    with pytest.raises(TypeError, match="prefix must be a str, got int"):
        b.list(1)
    assert fake.calls == []
    with pytest.raises(lr.ResourceError) as e:
        b.get("a")
    assert e.value.type == "ProtocolError" and "malformed bucket get reply" in str(e.value)
    with pytest.raises(lr.ResourceError, match="invalid base64"):
        b.get("b")


def test_runtime_errors_become_resource_error(lr):
    t, fake = client(lr, "orders", {"rpc": 3, "ok": False, "error": {"type": "ConditionFailed", "message": "item exists"}},
                     {"rpc": 4, "ok": False, "error": {"message": "no type"}})
    with pytest.raises(lr.ResourceError) as e:
        t.put({"id": "1", "line": 1})
    err = e.value
    assert err.type == "ConditionFailed" and err.message == "item exists"
    assert err.resource == "orders" and err.op == "put"
    assert str(err) == "orders.put: ConditionFailed: item exists"
    assert isinstance(err, lr.core.NimbusError)
    with pytest.raises(lr.ResourceError) as e:
        t.scan()
    assert e.value.type == "ResourceError" and e.value.message == "no type"
    with pytest.raises(lr.ResourceError, match="malformed reply"):
        lr.result_of({"rpc": 1}, "orders", "get")

    # a transport that raises the runtime's error (as the worker's rpc does) -> ResourceError too
    class RpcFailure(Exception):
        def __init__(self, error):
            super().__init__(error["message"])
            self.error = error

    def raising(resource, op, args):
        raise RpcFailure({"type": "Throttled", "message": "slow down"})

    q = lr.make_client("payments", SPECS["payments"], raising)
    with pytest.raises(lr.ResourceError) as e:
        q.send("x")
    assert (e.value.type, e.value.message, e.value.op) == ("Throttled", "slow down", "send")
    assert isinstance(e.value.__cause__, RpcFailure)

    def typed(resource, op, args):
        exc = RuntimeError("gone")
        exc.type = "NotFound"
        raise exc

    with pytest.raises(lr.ResourceError) as e:
        lr.make_client("events", SPECS["events"], typed).publish("x")
    assert (e.value.type, e.value.message) == ("NotFound", "gone")

    def denied(resource, op, args):  # a shim error (e.g. a core class the runtime named) passes unchanged
        raise lr.core.ResourceAccessError("the runtime says no")

    with pytest.raises(lr.core.ResourceAccessError, match="the runtime says no") as e:
        lr.make_client("events", SPECS["events"], denied).publish("x")
    assert (e.value.resource, e.value.op) == ("events", "publish")

    def broken(resource, op, args):  # anything else (e.g. the pipe is gone) passes unchanged
        raise BrokenPipeError("pipe closed")

    with pytest.raises(BrokenPipeError):
        lr.make_client("events", SPECS["events"], broken).publish("x")


def test_factory_registration_and_uses_enforcement(lr, monkeypatch):
    core = lr.core
    assert core._FACTORIES["local"] is lr.factory
    assert lr.make_client("x", {"type": "nope"}, lambda *a: None) is None
    from _nimbus import local_worker
    calls = []

    def rpc(resource, op, args):
        calls.append((resource, op, args))
        return {"id": args["key"]["id"], "line": 1} if op == "get" else None

    monkeypatch.setattr(local_worker, "rpc", rpc, raising=False)  # the transport is looked up at call time
    cfg = config("local", resources=copy.deepcopy(SPECS), function="place-order")
    res = core.Resources(cfg, "local")
    assert sorted(res) == ["audit", "events", "images", "orders", "payments"]
    with pytest.raises(core.ResourceAccessError, match="'secrets' is not granted to function 'place-order'"):
        res["secrets"]
    with pytest.raises(core.ResourceAccessError, match="'incoming' is not granted"):
        res["incoming"]  # trigger-only
    audit = res["audit"]
    with pytest.raises(core.ResourceAccessError, match="'read' access to table 'audit'.*put"):
        audit.put({"id": "1"})
    with pytest.raises(AttributeError, match="has no method 'send'"):
        audit.send("x")
    with pytest.raises(AttributeError):
        res["payments"].publish("x")
    assert calls == []  # refused before any frame
    assert res["orders"].get({"id": "7", "line": 1}) == {"id": "7", "line": 1}
    assert res["payments"].send({"a": 1}) is None
    assert calls == [("orders", "get", {"key": {"id": "7", "line": 1}}),
                     ("payments", "send", {"body": '{"a":1}', "attributes": {}, "delay_seconds": 0})]
    assert res["orders"] is res["orders"]  # created once, reused

    monkeypatch.delattr(local_worker, "rpc")
    with pytest.raises(core.ResourceUnavailableError, match="no rpc"):
        res["events"].publish("x")


# --------------------------------------------------------------------------- end to end

E2E_HANDLER = textwrap.dedent('''
    def handler(event, context):
        orders = context.resources["orders"]
        if event["path"] == "/fail":
            orders.get({"id": "boom"})
        orders.put({"id": "42", "total": 12, "tags": ["a", "b"]})
        item = orders.get({"id": "42"})
        missing = orders.get({"id": "nope"})
        images = context.resources["images"]
        images.put("in/a.bin", b"\\x00\\xffdata", content_type="application/octet-stream")
        data = images.get("in/a.bin")
        try:
            context.resources["secrets"]
            denied = None
        except Exception as e:
            denied = type(e).__name__
        try:
            orders.get({"id": "boom"})
            caught = None
        except Exception as e:
            caught = [type(e).__name__, getattr(e, "type", None), getattr(e, "message", None)]
        return {"item": item, "missing": missing, "data": list(data), "denied": denied, "caught": caught}
''')


class FakeRuntime:
    """The runtime's side of the rpc frames, backed by dicts."""

    def __init__(self):
        self.tables, self.buckets, self.frames = {}, {}, []

    def answer(self, frame):
        self.frames.append(frame)
        n, res, op, args = frame["rpc"], frame["resource"], frame["op"], frame["args"]
        if res == "orders":
            if op == "get" and args["key"] == {"id": "boom"}:
                return {"rpc": n, "ok": False, "error": {"type": "Exploded", "message": "boom from the runtime"}}
            table = self.tables.setdefault(res, {})
            if op == "put":
                table[args["item"]["id"]] = args["item"]
                return {"rpc": n, "ok": True, "result": None}
            if op == "get":
                return {"rpc": n, "ok": True, "result": table.get(args["key"]["id"])}
        if res == "images":
            bucket = self.buckets.setdefault(res, {})
            if op == "put":
                bucket[args["key"]] = {"data_b64": args["data_b64"], "content_type": args["content_type"]}
                return {"rpc": n, "ok": True, "result": None}
            if op == "get":
                return {"rpc": n, "ok": True, "result": bucket.get(args["key"])}
        return {"rpc": n, "ok": False, "error": {"type": "UnknownOp", "message": "%s.%s" % (res, op)}}

    def invoke(self, w, id_, event):
        w.send({"id": id_, "event": event, "deadline_ms": int(time.time() * 1000) + 10000, "request_id": "r-%s" % id_})
        while True:
            msg = w.recv()
            assert msg is not None, "worker exited: %s" % w.stderr().decode(errors="replace")
            if "rpc" in msg:
                w.send(self.answer(msg))
            else:
                return msg


@pytest.mark.parametrize("as_file", [False, True], ids=["module", "file"])
def test_end_to_end_through_a_real_worker(tmp_path, as_file):
    # the worker is __main__ (python -m _nimbus.local_worker, or the file): the clients must use its rpc
    resources = {
        "orders": {"type": "table", "access": "read_write", "key": ["id"], "native": {}},
        "images": {"type": "bucket", "access": "read_write", "native": {}},
    }
    root = build_package(tmp_path / "pkg", "local", config("local", "handlers/res_e2e.py", resources=resources))
    (root / "handlers" / "res_e2e.py").write_text(E2E_HANDLER, encoding="utf-8")
    argv = [sys.executable, "_nimbus/local_worker.py"] if as_file else None
    w = Worker(root, sys.executable, argv=argv, tmp=tmp_path)
    try:
        ready = w.recv()
        assert ready and ready["ready"] is True, w.stderr().decode(errors="replace")
        rt = FakeRuntime()
        http = {"type": "http", "method": "POST", "path": "/orders", "route": "/orders", "path_params": {},
                "query": {}, "headers": {}, "body": None, "is_base64": False, "source_ip": None}
        r = rt.invoke(w, 1, http)
        assert r["id"] == 1 and r["ok"] is True, r
        assert json.loads(r["result"]["body"]) == {
            "item": {"id": "42", "total": 12, "tags": ["a", "b"]}, "missing": None, "data": [0, 255, 100, 97, 116, 97],
            "denied": "ResourceAccessError", "caught": ["ResourceError", "Exploded", "boom from the runtime"]}
        assert [(f["resource"], f["op"], f["args"]) for f in rt.frames] == [
            ("orders", "put", {"item": {"id": "42", "total": 12, "tags": ["a", "b"]}}),
            ("orders", "get", {"key": {"id": "42"}}),
            ("orders", "get", {"key": {"id": "nope"}}),
            ("images", "put", {"key": "in/a.bin", "data_b64": "AP9kYXRh", "content_type": "application/octet-stream"}),
            ("images", "get", {"key": "in/a.bin"}),
            ("orders", "get", {"key": {"id": "boom"}}),
        ]
        rpc_ids = [f["rpc"] for f in rt.frames]
        assert all(isinstance(i, int) for i in rpc_ids) and len(set(rpc_ids)) == len(rpc_ids)
        # an uncaught runtime error fails the invocation; the worker goes on serving
        r = rt.invoke(w, 2, dict(http, path="/fail"))
        assert r["id"] == 2 and r["ok"] is False
        assert r["error"]["type"] == "ResourceError" and "boom from the runtime" in r["error"]["message"]
        assert rt.invoke(w, 3, http)["ok"] is True
        assert w.close() == 0
    finally:
        if w.proc.poll() is None:
            w.close()
