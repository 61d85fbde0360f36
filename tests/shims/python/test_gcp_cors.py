"""The CORS table (tests/shims/cases/cors.json) through the GCP shim (Python) served by the real
functions-framework: the shim answers preflights (the handler never runs) and replaces the
handler's CORS headers with the policy's. The policy is the one the packager puts in
function.json for the table's manifest (cors-policy.json, kept current by
crates/nimbus-gcp/tests/cors.rs)."""

import json
import os

import pytest

from conftest import Server, TESTS, VENV_BIN, build_package, config, free_port

TABLE = json.loads((TESTS / "cases" / "cors.json").read_text(encoding="utf-8"))
POLICY = json.loads((TESTS / "cases" / "cors-policy.json").read_text(encoding="utf-8"))


def cors_config():
    route = TABLE["route"]
    return config("gcp", handler="handlers/cors_probe.py", resources={},
                  triggers=[{"type": "http", "method": route["method"], "path": route["path"], "cors": POLICY}])


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("gcp-cors")
    root = build_package(d / "pkg", "gcp", cors_config())
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("NIMBUS_PACKAGE_ROOT", None)
    port = free_port()
    argv = [str(VENV_BIN / "functions-framework"), "--target", "nimbus_entry", "--source", "main.py",
            "--host", "127.0.0.1", "--port", str(port)]
    s = Server(argv, root, env, port, d / "server.log")
    yield s
    s.stop()


def check(case, target, status, headers):
    """What differs from the case's expectation for `target` (empty when nothing)."""
    want = case.get(target, case["expect"])
    origin = case["request"].get("origin")
    wrong = []
    if want["status"] != status:
        wrong.append("status %s (want %s)" % (status, want["status"]))
    handled = headers.get("x-handled") == "yes"
    if want["handler"] != handled:
        wrong.append("handler ran: %s (want %s)" % (handled, want["handler"]))
    acao = headers.get("access-control-allow-origin")
    allowed = acao is not None and acao == origin
    if want["allowed"] != allowed:
        wrong.append("allowed: %s (want %s; access-control-allow-origin: %r)" % (allowed, want["allowed"], acao))
    if not allowed:
        leaked = [k for k in headers if k.startswith("access-control-")]
        if leaked:
            wrong.append("a refused request got %s" % leaked)
    for k, v in want.get("headers", {}).items():
        if headers.get(k) != v:
            wrong.append("%s: %r (want %r)" % (k, headers.get(k), v))
    return wrong


@pytest.mark.parametrize("case", TABLE["cases"], ids=[c["name"] for c in TABLE["cases"]])
def test_cors_table(srv, case):
    r = case["request"]
    headers = {}
    for key, header in (("origin", "Origin"), ("request_method", "Access-Control-Request-Method"),
                        ("request_headers", "Access-Control-Request-Headers"), ("cookie", "Cookie")):
        if key in r:
            headers[header] = r[key]
    status, pairs, _ = srv.request(r["method"], TABLE["route"]["path"], headers=headers)
    got = {}
    for k, v in pairs:
        got[k.lower()] = got[k.lower()] + ", " + v if k.lower() in got else v
    assert check(case, "gcp", status, got) == [], got
    if status == 204:
        assert got.get("vary") == "Origin"
