"""The routing table (tests/routing/table.json) through each provider's shim.

The platform picks the function (checked against the generated configuration in each provider
crate's tests); here the shim of that function must report the neutral `route` and `path_params`
for the same request: AWS from an HTTP API v2 event carrying the route key API Gateway chose,
Azure from the real `azure.functions.HttpRequest` the worker builds, GCP through the real
`functions-framework` server. Each is given the raw (percent-encoded) path as the platform
passes it, so per-segment decoding is checked too."""

import json
import os
from urllib.parse import unquote

import azure.functions as func
import pytest
import yaml

from conftest import ROOT, VENV_BIN, Recorder, Server, build_package, config, free_port, in_process

APP = yaml.safe_load((ROOT / "tests" / "routing" / "nimbus.yaml").read_text(encoding="utf-8"))
ROWS = json.loads((ROOT / "tests" / "routing" / "table.json").read_text(encoding="utf-8"))["requests"]
SERVED = [r for r in ROWS if r["function"]]


def triggers(function):
    return [{"type": "http", **t["http"]} for t in APP["functions"][function]["triggers"]]


def cfg(provider, function, **extra):
    return config(provider, function=function, triggers=triggers(function), **extra)


def row_id(r):
    return "%s %s" % (r["method"], r["path"])


def chosen_method(row):
    """The method of the route the platform chose: the request's own, else ANY, else GET (HEAD)."""
    methods = {t["method"] for t in triggers(row["function"]) if t["path"] == row["route"]}
    for m in (row["method"], "ANY", "GET"):
        if m in methods:
            return m
    raise AssertionError("no route %s for %s" % (row["route"], row_id(row)))


def test_table_covers_every_route():
    used = {(r["function"], r["route"]) for r in SERVED}
    every = {(f, t["http"]["path"]) for f, spec in APP["functions"].items() for t in spec["triggers"]}
    assert every <= used, "routes no row reaches: %s" % sorted(every - used)


@pytest.mark.parametrize("row", SERVED, ids=row_id)
def test_aws(tmp_path, row):
    root = build_package(tmp_path / "pkg", "aws", cfg("aws", row["function"]))
    with in_process(root):
        from _nimbus import aws
        ev = {
            "version": "2.0",
            "routeKey": "%s %s" % (chosen_method(row), row["route"]),
            "rawPath": row["path"],
            "rawQueryString": "",
            "headers": {},
            # what API Gateway puts here is not the contract: the shim reads the raw path
            "pathParameters": {k: "not-this" for k in row["params"]},
            "requestContext": {"http": {"method": row["method"], "path": row["path"], "sourceIp": "203.0.113.1"},
                               "routeKey": "%s %s" % (chosen_method(row), row["route"])},
            "isBase64Encoded": False,
        }
        got = aws.http_event(ev, cfg("aws", row["function"]))
    assert (got["route"], got["path_params"], got["path"]) == (row["route"], row["params"], unquote(row["path"]))


@pytest.mark.parametrize("row", SERVED, ids=row_id)
def test_azure(tmp_path, row):
    root = build_package(tmp_path / "pkg", "azure", cfg("azure", row["function"]))
    with in_process(root):
        from _nimbus import azure
        # ASP.NET's own route values of whichever binding the host tried first: not the contract
        req = func.HttpRequest(method=row["method"], url="https://app.azurewebsites.net/api" + row["path"],
                               headers={}, body=b"", route_params={k: "not-this" for k in row["params"]})
        got = azure.http_event(req, cfg("azure", row["function"]))
    assert (got["route"], got["path_params"], got["path"]) == (row["route"], row["params"], unquote(row["path"]))


@pytest.fixture(scope="module")
def gcp_servers(tmp_path_factory):
    servers = {}
    try:
        for function in sorted({r["function"] for r in SERVED}):
            d = tmp_path_factory.mktemp("gcp-" + function)
            root = build_package(d / "pkg", "gcp", cfg("gcp", function))
            rec = Recorder(d / "record.jsonl")
            env = dict(os.environ, NIMBUS_TEST_RECORD=str(rec.path), PYTHONDONTWRITEBYTECODE="1")
            env.pop("NIMBUS_PACKAGE_ROOT", None)
            port = free_port()
            argv = [str(VENV_BIN / "functions-framework"), "--target", "nimbus_entry", "--source", "main.py",
                    "--host", "127.0.0.1", "--port", str(port)]
            servers[function] = Server(argv, root, env, port, d / "server.log")
            servers[function].rec = rec
        yield servers
    finally:
        for s in servers.values():
            s.stop()


@pytest.mark.parametrize("row", SERVED, ids=row_id)
def test_gcp(gcp_servers, row):
    # API Gateway appends the request's path to the function's URL (APPEND_PATH_TO_ADDRESS)
    srv = gcp_servers[row["function"]]
    srv.rec.clear()
    status, _, body = srv.request(row["method"], row["path"])
    assert status == 200, body
    ev = srv.rec.last()["event"]
    assert (ev["route"], ev["path_params"], ev["path"]) == (row["route"], row["params"], unquote(row["path"]))


UNSERVED = [r for r in ROWS if not r["function"]]


def unserved_cases():
    # every function's shim is sent every request no route serves: a platform may still call one
    # (an empty catch-all tail: GCP's `{x=**}`, Azure's `{*x}`), and its shim must answer 404
    return [(r, f) for r in UNSERVED for f in sorted(APP["functions"])]


def case_id(case):
    return "%s to %s" % (row_id(case[0]), case[1])


@pytest.mark.parametrize("case", unserved_cases(), ids=case_id)
def test_azure_unserved(tmp_path, case):
    row, function = case
    root = build_package(tmp_path / "pkg", "azure", cfg("azure", function))
    with in_process(root):
        from _nimbus import azure
        req = func.HttpRequest(method=row["method"], url="https://app.azurewebsites.net/api" + row["path"],
                               headers={}, body=b"", route_params={"path": ""})
        res = azure.http(req)
    assert res.status_code == 404 and json.loads(res.get_body()) == {"message": "Not Found"}


@pytest.mark.parametrize("case", unserved_cases(), ids=case_id)
def test_gcp_unserved(gcp_servers, case):
    row, function = case
    srv = gcp_servers[function]
    srv.rec.clear()
    status, _, body = srv.request(row["method"], row["path"])
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert srv.rec.all() == [], "the handler did not run"
