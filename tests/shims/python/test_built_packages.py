"""The packages `nimbus build` really produces, run by the real platforms' code.

Every other shim test lays a package out by hand; these build one with the `nimbus` binary
(``NIMBUS_BIN``, set by scripts/test-shims) from the starter templates and then:
- serve the GCP Python and Node zips with Google's own functions-framework and call them over HTTP;
- call the AWS zip's entry point with a real API Gateway v2 event;
- run the local zip's worker over the local worker protocol.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import urllib.request
import zipfile

import pytest

from conftest import FIXTURES, ROOT, TESTS, VENV_BIN, Server, free_port

NIMBUS = os.environ.get("NIMBUS_BIN") or str(ROOT / "target" / "debug" / "nimbus")
NODE_MODULES = pathlib.Path(os.environ.get("NIMBUS_TEST_NODE_MODULES") or ROOT / ".tools" / "node" / "node_modules")


def nimbus(*args, cwd):
    proc = subprocess.run([NIMBUS, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def built(tmp_path, template, provider):
    """`nimbus init --template T` then `nimbus build -p P`; returns the unzipped package root."""
    project = tmp_path / "project"
    nimbus("init", str(project), "--template", template, "--name", "hello", cwd=tmp_path)
    report = json.loads(nimbus("build", "-p", provider, "--output", "json", cwd=project))
    assert report["built"] == ["hello"]
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(project / ".nimbus" / "build" / provider / "dev" / "hello.zip") as z:
        z.extractall(root)
    return root


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, json.loads(r.read())


def test_gcp_python_package_served_by_functions_framework(tmp_path):
    root = built(tmp_path, "python", "gcp")
    port = free_port()
    argv = [str(VENV_BIN / "functions-framework"), "--target", "nimbus_entry", "--source", "main.py",
            "--host", "127.0.0.1", "--port", str(port)]
    srv = Server(argv, root, dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), port, tmp_path / "ff.log")
    try:
        assert get(port, "/hello?name=gcp") == (200, {"message": "hello, gcp"})
    finally:
        srv.stop()


def test_gcp_node_package_served_by_functions_framework(tmp_path):
    root = built(tmp_path, "node", "gcp")
    assert json.loads((root / "package.json").read_text())["main"] == "_nimbus_gcp.js"
    port = free_port()
    main = NODE_MODULES / "@google-cloud" / "functions-framework" / "build" / "src" / "main.js"
    argv = ["node", "--require", str(TESTS / "node" / "loopback-preload.cjs"), str(main),
            "--target=nimbus_entry", "--source=%s" % root, "--port=%d" % port]
    srv = Server(argv, root, dict(os.environ), port, tmp_path / "ff.log")
    try:
        assert get(port, "/hello?name=node") == (200, {"message": "hello, node"})
    finally:
        srv.stop()


def test_aws_python_package_answers_an_api_gateway_event(tmp_path):
    root = built(tmp_path, "python", "aws")
    event = json.loads((FIXTURES / "aws" / "apigw-v2-request-no-authorizer.json").read_text())
    event["rawQueryString"] = "name=lambda"
    event["queryStringParameters"] = {"name": "lambda"}
    script = (
        "import json, sys, _nimbus_aws\n"
        "class Ctx:\n"
        "    aws_request_id = 'req-1'; function_name = 'hello'\n"
        "    def get_remaining_time_in_millis(self): return 10000\n"
        "print(json.dumps(_nimbus_aws.handler(json.load(sys.stdin), Ctx())))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, input=json.dumps(event),
                          capture_output=True, text=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"message": "hello, lambda"}


def test_local_package_runs_in_the_local_worker(tmp_path):
    from test_local import Worker

    root = built(tmp_path, "python", "local")
    worker = Worker(root, sys.executable, tmp=tmp_path)
    try:
        assert worker.recv()["ready"] is True
        event = {"type": "http", "method": "GET", "path": "/hello", "route": "/hello", "path_params": {},
                 "query": {"name": "local"}, "headers": {}, "body": None, "is_base64": False, "source_ip": None}
        reply = worker.invoke(1, event)
        assert reply["ok"], reply
        assert reply["result"]["status"] == 200
        assert json.loads(reply["result"]["body"]) == {"message": "hello, local"}
    finally:
        worker.close()
