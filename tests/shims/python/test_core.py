"""The shared Python shim core: handler loading, results, context, resources."""

import json

import pytest

from conftest import build_package, config, in_process


@pytest.fixture
def pkg(tmp_path):
    def make(handler="handlers/probe.py", provider="local", **overrides):
        root = build_package(tmp_path / "pkg", provider, config(provider, handler, **overrides))
        return root
    return make


@pytest.fixture
def core(tmp_path):
    root = build_package(tmp_path / "core-pkg", "local", config("local"))
    with in_process(root):
        from _nimbus import core as core_module
        yield core_module


def test_parse_target(core):
    assert core.parse_target("orders/place.py:handler") == ("orders/place.py", "handler")
    assert core.parse_target("orders/place.py:main") == ("orders/place.py", "main")
    assert core.parse_target("orders/place.py") == ("orders/place.py", "handler")
    with pytest.raises(core.HandlerLoadError):
        core.parse_target(":handler")


def test_loads_handler_and_builds_context(pkg):
    root = pkg()
    with in_process(root):
        from _nimbus import core
        fn = core.Function(root=str(root))
        assert fn.name == "probe" and fn.provider == "local" and fn.load_ms > 0
        ctx = fn.context(request_id="r-1", deadline_ms=core.now_ms() + 5000)
        assert (ctx.function_name, ctx.request_id, ctx.service, ctx.stage, ctx.provider) == (
            "probe", "r-1", "shop", "dev", "local")
        assert 0 < ctx.remaining_ms() <= 5000
        ctx2 = fn.context()
        assert ctx2.request_id and ctx2.request_id != "r-1"
        assert 9000 < ctx2.remaining_ms() <= 10000  # timeout_ms from function.json
        expired = fn.context(deadline_ms=core.now_ms() - 10)
        assert expired.remaining_ms() == 0


def test_coroutine_handler(pkg):
    root = pkg("handlers/async_probe.py")
    with in_process(root):
        from _nimbus import core
        fn = core.Function(root=str(root))
        out = fn.invoke({"type": "schedule", "name": "x", "time": "2026-01-01T00:00:00Z"}, fn.context())
        assert out["body"] == {"module": "async", "type": "schedule", "function_name": "probe"}
        # the loop is reused across invocations
        assert fn.invoke({"type": "http"}, fn.context())["body"]["type"] == "http"


@pytest.mark.parametrize("handler,needle", [
    ("handlers/missing.py", "not found"),
    ("handlers/probe.py:nope", "has no function 'nope' (callables found: handler)"),
    ("handlers/broken.py", "ImportError: broken on purpose"),
    ("../outside.py", "must be relative"),
])
def test_load_errors(pkg, handler, needle):
    root = pkg(handler)
    with in_process(root):
        from _nimbus import core
        with pytest.raises(core.HandlerLoadError) as e:
            core.Function(root=str(root))
        assert needle in str(e.value)


def test_missing_function_json(tmp_path):
    root = build_package(tmp_path / "p", "local", config("local"))
    (root / "_nimbus" / "function.json").unlink()
    with in_process(root):
        from _nimbus import core
        with pytest.raises(core.ConfigError, match="function.json not found"):
            core.Function(root=str(root))


def test_normalize_http(core):
    n = core.normalize_http
    assert n(None) == {"status": 204, "headers": {}, "body": None, "is_base64": False}
    assert n("hi") == {"status": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "hi",
                       "is_base64": False}
    assert n(b"\x00\xff") == {"status": 200, "headers": {"content-type": "application/octet-stream"},
                              "body": "AP8=", "is_base64": True}
    assert n({"a": [1, "é"]}) == {"status": 200, "headers": {"content-type": "application/json"},
                                  "body": '{"a":[1,"é"]}', "is_base64": False}
    assert n([1, 2])["body"] == "[1,2]"
    assert n({"status": 201, "headers": {"X-A": 1, "set-cookie": ["a=1", "b=2"]}, "body": {"ok": True}}) == {
        "status": 201, "headers": {"X-A": "1", "set-cookie": ["a=1", "b=2"], "content-type": "application/json"},
        "body": '{"ok":true}', "is_base64": False}
    assert n({"status": 200, "headers": {"Content-Type": "text/csv"}, "body": "a,b"})["headers"] == {
        "Content-Type": "text/csv"}
    assert n({"status": 200, "body": "AAE=", "is_base64": True})["is_base64"] is True
    assert n({"status": 404})["body"] is None
    for bad in ({"status": "200"}, {"status": 99}, {"status": True}):
        with pytest.raises(core.ResultError):
            n(bad)
    with pytest.raises(core.ResultError):
        n(object())


def test_normalize_batch(core):
    ev = {"type": "queue", "messages": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
    assert core.normalize_batch(None, ev) == []
    assert core.normalize_batch({"failed": []}, ev) == []
    assert core.normalize_batch({"failed": ["c", "a"]}, ev) == ["a", "c"]
    assert core.normalize_batch("ignored", ev) == []
    with pytest.raises(core.ResultError, match="not a message of this batch"):
        core.normalize_batch({"failed": ["zz"]}, ev)
    with pytest.raises(core.ResultError):
        core.normalize_batch({"failed": "a"}, ev)
    assert core.normalize_result(ev, {"failed": ["b"]}) == {"failed": ["b"]}
    assert core.normalize_result({"type": "schedule"}, 42) is None


def test_rfc3339_and_routes(core):
    assert core.rfc3339("2015-10-08T16:53:06Z") == "2015-10-08T16:53:06Z"
    assert core.rfc3339("2021-02-05T04:06:14.109Z") == "2021-02-05T04:06:14.109Z"
    assert core.rfc3339("2026-01-02T03:04:05.678000+01:00") == "2026-01-02T02:04:05.678Z"
    assert core.rfc3339(0) == "1970-01-01T00:00:00Z"
    trig = [{"type": "http", "method": "GET", "path": "/orders/{id}"},
            {"type": "http", "method": "ANY", "path": "/files/{path+}"}]
    assert core.match_route(trig, "GET", "/orders/42") == ("/orders/{id}", {"id": "42"})
    assert core.match_route(trig, "POST", "/orders/42") == (None, {})
    assert core.match_route(trig, "PUT", "/files/a/b.txt") == ("/files/{path+}", {"path": "a/b.txt"})
    assert core.match_route(trig, "GET", "/nope") == (None, {})


def test_resolve_resource_order(core):
    cfg = {"resources": {"a": {"type": "queue", "native": {"arn": "arn:x:q1"}},
                         "b": {"type": "queue", "native": {}}},
           "triggers": [{"type": "queue", "resource": "a"}, {"type": "queue", "resource": "b"}]}
    assert core.resolve_resource(cfg, ("queue",), ["arn:x:q1"], "q1") == ("a", "queue")
    assert core.resolve_resource(cfg, ("queue",), ["arn:x:other"], "other") == ("other", "queue")
    one = {"resources": {"b": {"type": "queue", "native": {}}}, "triggers": [{"type": "queue", "resource": "b"}]}
    assert core.resolve_resource(one, ("queue",), ["arn:x:other"], "other") == ("b", "queue")
    assert core.resolve_resource({}, ("topic", "queue"), ["t"], "t") == ("t", "topic")


class FakeTable:
    def __init__(self):
        self.items = {}

    def get(self, key):
        return self.items.get(json.dumps(key, sort_keys=True))

    def put(self, item):
        self.items[json.dumps({"id": item["id"]}, sort_keys=True)] = item

    def delete(self, key):
        self.items.pop(json.dumps(key, sort_keys=True), None)

    def query(self, key, limit=None):
        return []

    def scan(self, limit=None):
        return list(self.items.values())


def test_resources_mapping_and_uses_enforcement(core):
    cfg = {"function": "place-order", "resources": {
        "orders": {"type": "table", "access": "read_write", "key": ["id"], "native": {}},
        "writer": {"type": "table", "access": "write", "key": ["id"], "native": {}},
        "audit": {"type": "table", "access": "read", "key": ["id"], "native": {}},
        "payments": {"type": "queue", "access": None, "native": {}},
        "events": {"type": "topic", "access": "publish", "native": {}},
        "weird": {"type": "table", "access": "admin", "native": {}}}}
    res = core.Resources(cfg, "test-provider")
    assert sorted(res) == ["audit", "events", "orders", "weird", "writer"] and len(res) == 5
    assert "orders" in res and "payments" not in res and "nope" not in res
    with pytest.raises(core.ResourceAccessError) as e:
        res["nope"]
    assert "'nope' is not granted to function 'place-order'" in str(e.value) and "uses" in str(e.value)
    with pytest.raises(core.ResourceAccessError, match="'payments' is not granted"):
        res["payments"]
    with pytest.raises(core.ResourceUnavailableError) as e:
        res["orders"]
    assert "'orders' (table)" in str(e.value) and "'test-provider'" in str(e.value)

    made = []

    def factory(name, spec, fcfg):
        made.append(name)
        return FakeTable() if spec["type"] == "table" else None

    core.register_resource_factory("test-provider", factory)
    try:
        orders = res["orders"]
        assert res["orders"] is orders and made == ["orders"]  # cached
        assert sorted(core.ACCESS_LEVELS["table"]) == ["read", "read_write", "write"]
        orders.put({"id": "1", "total": 3})
        assert orders.get({"id": "1"}) == {"id": "1", "total": 3}
        audit = res["audit"]
        assert audit.scan() == []
        with pytest.raises(core.ResourceAccessError, match="'read' access to table 'audit'.*put"):
            audit.put({"id": "2"})
        writer = res["writer"]
        writer.put({"id": "3"})
        writer.delete({"id": "3"})
        with pytest.raises(core.ResourceAccessError, match="'write' access to table 'writer'.*get"):
            writer.get({"id": "3"})
        with pytest.raises(AttributeError, match="has no method 'send'"):
            orders.send("x")
        with pytest.raises(core.ResourceUnavailableError, match="provider 'test-provider' has no topic client"):
            res["events"]
        with pytest.raises(core.ResourceAccessError, match="unknown access level 'admin'"):
            res["weird"]
    finally:
        core._FACTORIES.pop("test-provider", None)


def test_match_route_precedence_and_decoding(core):
    trig = [{"type": "http", "method": "ANY", "path": "/f/{key+}"},
            {"type": "http", "method": "GET", "path": "/f/{name}"},
            {"type": "http", "method": "GET", "path": "/f/index"}]
    assert core.match_route(trig, "GET", "/f/index") == ("/f/index", {})
    assert core.match_route(trig, "GET", "/f/x") == ("/f/{name}", {"name": "x"})
    assert core.match_route(trig, "GET", "/f/x/y") == ("/f/{key+}", {"key": "x/y"})
    assert core.match_route(trig, "HEAD", "/f/index") == ("/f/{key+}", {"key": "index"}), "ANY takes HEAD before GET"
    assert core.match_route(trig[1:], "HEAD", "/f/index") == ("/f/index", {})
    assert core.match_template("/a/{id}", "/a/x%2Fy") == {"id": "x/y"}, "an encoded / stays in its segment"
    assert core.match_template("/a/{p+}", "/a/x%20y/%C3%A9") == {"p": "x y/é"}
    assert core.match_template("/a/{p+}", "/a") is None
    assert core.match_template("/a/{p+}", "/a//b/") == {"p": "b"}
    assert core.match_route(trig, "GET", "/f/a%25b") == ("/f/{name}", {"name": "a%b"}), "decoded once"


def test_user_traceback_keeps_the_users_frames_and_the_cause(core, tmp_path, monkeypatch):
    user = tmp_path / "app" / "fns" / "pay.py"
    user.parent.mkdir(parents=True)
    user.write_text(
        "def parse(body):\n"
        "    return int(body)\n"
        "\n"
        "def handler(body):\n"
        "    try:\n"
        "        return parse(body)\n"
        "    except ValueError as e:\n"
        "        raise RuntimeError('bad amount') from e\n"
    )
    monkeypatch.chdir(tmp_path / "app")
    namespace = {}
    exec(compile(user.read_text(), str(user), "exec"), namespace)
    try:
        namespace["handler"]("x")
    except RuntimeError as e:
        info = core.error_info(e)
    stack = info["stack"]
    assert info["type"] == "RuntimeError" and info["message"] == "bad amount"
    cause, effect = stack.split("\nThe above exception was the direct cause of the following exception:\n\n")
    # Paths relative to the package root (the working directory); the user's frames only.
    assert cause.startswith('Traceback (most recent call last):\n  File "fns/pay.py", line 6, in handler\n')
    assert 'File "fns/pay.py", line 2, in parse' in cause and "ValueError: invalid literal" in cause
    # (Called from this test, not through the shim: the test's frame is the caller.)
    assert effect.startswith("Traceback (most recent call last):\n") and "test_core.py" in effect
    assert 'File "fns/pay.py", line 8, in handler' in effect
    assert effect.rstrip().endswith("RuntimeError: bad amount")
