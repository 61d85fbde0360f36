"""AWS shim secrets (Python, _nimbus/aws_secrets.py): NIMBUS_SECRET_<VAR> references resolved from a
real moto_server's Secrets Manager at cold start, before the handler module is imported, in a real
Python process started like Lambda starts one; cached for the process's life; failures name the
variable and the ARN, never a value."""

import json
import os
import subprocess
import sys
import uuid

import pytest

from conftest import FIXTURES, build_package, config, in_process
from test_aws_resources import REGION, moto  # noqa: F401 - the moto_server fixture

import boto3  # noqa: E402  (tests/requirements.txt; a missing one fails, never skips)

SCRIPT = (
    "import json, sys, _nimbus_aws\n"
    "class Ctx:\n"
    "    aws_request_id = 'req-1'; function_name = 'probe'\n"
    "    def get_remaining_time_in_millis(self): return 10000\n"
    "event = json.load(sys.stdin)\n"
    "print(json.dumps([_nimbus_aws.handler(event, Ctx()) for _ in range(2)]))\n"
)


@pytest.fixture
def sm(moto):  # noqa: F811
    endpoint = "http://127.0.0.1:%d" % moto.port
    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.endpoint = endpoint
    return client


def _env(endpoint, tmp_path, **refs):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "NIMBUS_SECRET_")) and k not in ("API_KEY", "DB_PASSWORD")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, PYTHONDONTWRITEBYTECODE="1",
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"))
    env.update({"NIMBUS_SECRET_" + k: v for k, v in refs.items()})
    return env


def _package(tmp_path):
    return build_package(tmp_path / "pkg", "aws", config("aws", handler="handlers/secret_probe.py"))


def _run(root, env):
    event = json.loads((FIXTURES / "aws" / "apigw-v2-request-no-authorizer.json").read_text())
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, input=json.dumps(event),
                          capture_output=True, text=True, env=env, timeout=120)


def _secret(sm, value):
    # Named as a deploy names it (`{service}-{stage}/{secret}`); referenced by its full ARN, as the
    # deploy writes NIMBUS_SECRET_<VAR>.
    name = "shop-dev/api-key-" + uuid.uuid4().hex[:8]
    return sm.create_secret(Name=name, SecretString=value)["ARN"]


def test_secrets_are_in_the_environment_before_the_handler_module_is_imported(sm, tmp_path):
    api = _secret(sm, "sk_live_python_1")
    db = _secret(sm, "p@ss word\nline2")
    proc = _run(_package(tmp_path), _env(sm.endpoint, tmp_path, API_KEY=api, DB_PASSWORD=db))
    assert proc.returncode == 0, proc.stderr
    first, second = [json.loads(r["body"]) for r in json.loads(proc.stdout.strip().splitlines()[-1])]
    want = {"API_KEY": "sk_live_python_1", "DB_PASSWORD": "p@ss word\nline2"}
    assert first == {"at_import": want, "now": want}
    assert second == first


def test_a_process_resolves_once_and_keeps_its_values_for_its_life(sm, tmp_path, monkeypatch):
    arn = _secret(sm, "first")
    for k, v in _env(sm.endpoint, tmp_path, API_KEY=arn).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    with in_process(_package(tmp_path)):
        from _nimbus import aws_secrets

        aws_secrets.reset()
        try:
            import _nimbus_aws  # cold start

            assert os.environ["API_KEY"] == "first"
            sm.put_secret_value(SecretId=arn, SecretString="rotated")
            event = json.loads((FIXTURES / "aws" / "apigw-v2-request-no-authorizer.json").read_text())
            body = json.loads(_nimbus_aws.handler(event, None)["body"])
            assert body["now"]["API_KEY"] == "first"  # warm: no second read
            assert aws_secrets.resolve() == []
        finally:
            aws_secrets.reset()


def test_a_missing_secret_fails_the_cold_start_naming_the_variable_and_the_arn(sm, tmp_path):
    good = _secret(sm, "never-printed-value")
    missing = "arn:aws:secretsmanager:%s:123456789012:secret:shop/dev/gone-AbCdEf" % REGION
    proc = _run(_package(tmp_path), _env(sm.endpoint, tmp_path, API_KEY=good, DB_PASSWORD=missing))
    assert proc.returncode != 0
    assert "SecretError" in proc.stderr
    assert "environment variable DB_PASSWORD (%s)" % missing in proc.stderr
    assert "ResourceNotFoundException" in proc.stderr
    assert "nimbus secret set" in proc.stderr
    assert "never-printed-value" not in proc.stderr + proc.stdout


def test_a_binary_secret_is_refused_with_how_to_fix(sm, tmp_path):
    name = "shop/dev/blob-" + uuid.uuid4().hex[:8]
    arn = sm.create_secret(Name=name, SecretBinary=b"\x00\x01")["ARN"]
    proc = _run(_package(tmp_path), _env(sm.endpoint, tmp_path, API_KEY=arn))
    assert proc.returncode != 0
    assert "environment variable API_KEY (%s) holds binary data" % arn in proc.stderr


def test_without_references_no_client_is_made(tmp_path):
    with in_process(_package(tmp_path)):
        from _nimbus import aws_secrets

        env = {"PATH": "/bin", "NIMBUS_SECRET_": "x", "NIMBUS_SECRET_EMPTY": ""}
        assert aws_secrets.references(env) == {}
        assert aws_secrets.resolve(environ=env, client=object()) == []
        assert env == {"PATH": "/bin", "NIMBUS_SECRET_": "x", "NIMBUS_SECRET_EMPTY": ""}
