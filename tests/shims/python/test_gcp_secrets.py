"""A secret as Cloud Functions delivers it: `examples/secrets`, built by the real `nimbus build -p
gcp` (``NIMBUS_BIN``), its `pay` package served by Google's functions-framework with
``PAYMENT_API_KEY`` set in the environment, as the platform sets a `secretEnvironmentVariables`
entry (Secret Manager version `latest`, read at instance start). The handler reads it like any
variable, with no Nimbus code between it and the platform.
"""

import json
import os
import pathlib
import shutil
import subprocess
import urllib.request
import zipfile

import pytest

from conftest import ROOT, VENV_BIN, Server, free_port

NIMBUS = os.environ.get("NIMBUS_BIN") or str(ROOT / "target" / "debug" / "nimbus")
CANARY = "sk_live_GCP_SHIM_91d0c3"


@pytest.fixture(scope="module")
def pay_root(tmp_path_factory):
    """`pay`'s package, unzipped from the real build of examples/secrets for GCP."""
    if not pathlib.Path(NIMBUS).is_file():
        pytest.fail("the nimbus binary is missing at %s (scripts/test-shims builds it)" % NIMBUS)
    tmp = tmp_path_factory.mktemp("secrets")
    project = tmp / "secrets"
    shutil.copytree(ROOT / "examples" / "secrets", project, ignore=shutil.ignore_patterns(".nimbus", "__pycache__"))
    manifest = project / "nimbus.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8")
                        + "providers:\n  gcp: { project: secrets-shim, region: europe-west1 }\n", encoding="utf-8")
    proc = subprocess.run([NIMBUS, "build", "-p", "gcp", "--output", "json"], cwd=project, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    root = tmp / "pay"
    with zipfile.ZipFile(project / ".nimbus" / "build" / "gcp" / "dev" / "pay.zip") as z:
        z.extractall(root)
    return root


def test_the_handler_reads_the_secret_the_platform_sets(pay_root, tmp_path):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PAYMENT_API_KEY=CANARY, MODE="test")
    env.pop("NIMBUS_PACKAGE_ROOT", None)
    port = free_port()
    argv = [str(VENV_BIN / "functions-framework"), "--target", "nimbus_entry", "--source", "main.py",
            "--host", "127.0.0.1", "--port", str(port)]
    srv = Server(argv, pay_root, env, port, tmp_path / "pay.log")
    try:
        req = urllib.request.Request("http://127.0.0.1:%d/pay" % port, method="GET")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
            body = json.loads(r.read())
        assert body == {"key_length": len(CANARY), "mode": "test"}, srv.log()
    finally:
        srv.stop()
