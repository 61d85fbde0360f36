"""Cold-start resolution of Nimbus secrets on AWS Lambda (Python).

Lowering puts only a reference in the function's environment, never a value:
``NIMBUS_SECRET_<VAR>=<Secrets Manager secret ARN>`` for each environment variable ``<VAR>`` the
function declared as ``{ secret: NAME }``. ``resolve()`` runs once per process (the Lambda
container), BEFORE the user's handler module is imported: it reads each referenced secret with
Secrets Manager ``GetSecretValue`` through boto3 (which the Lambda Python runtime ships) and sets
``os.environ[<VAR>]`` to its value, so the handler reads ``os.environ["<VAR>"]`` exactly as it does
locally. Warm invocations reuse the values (no further calls). A failure raises ``SecretError``
naming the variable and the ARN (never a value); nothing is cached then, so the next cold start
or invocation tries again. See docs/function-contract.md, "Secrets".
"""

from __future__ import annotations

import os
import threading

PREFIX = "NIMBUS_SECRET_"

_resolved = False
_lock = threading.Lock()


class SecretError(RuntimeError):
    """A referenced secret could not be read (its variable, ARN and AWS's error; never a value)."""


def references(environ=None) -> dict:
    """``{VAR: ARN}`` of every ``NIMBUS_SECRET_<VAR>`` reference in ``environ``."""
    env = os.environ if environ is None else environ
    return {k[len(PREFIX):]: v for k, v in env.items() if k.startswith(PREFIX) and len(k) > len(PREFIX) and v}


def resolve(environ=None, client=None) -> list:
    """Sets each referenced variable to its secret's value, once per process; returns the names set."""
    global _resolved
    env = os.environ if environ is None else environ
    with _lock:
        if _resolved and environ is None:
            return []
        refs = references(env)
        if refs and client is None:
            client = _client()
        values = {}
        for var, arn in sorted(refs.items()):
            values[var] = _value(client, var, arn)
        env.update(values)  # all or nothing: a failure above leaves the environment as it was
        if environ is None:
            _resolved = True
        return sorted(values)


def reset():
    """Forget that this process resolved its secrets (tests)."""
    global _resolved
    with _lock:
        _resolved = False


def _client():
    try:
        import boto3
    except ImportError:
        raise SecretError("resolving secrets needs boto3 (the AWS Lambda Python runtime ships it)") from None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    return boto3.session.Session().client("secretsmanager", region_name=region)


def _value(client, var, arn):
    try:
        out = client.get_secret_value(SecretId=arn)
    except Exception as e:  # botocore ClientError / connection errors: reported with the reference
        code = ((getattr(e, "response", None) or {}).get("Error") or {}).get("Code")
        raise SecretError(
            "secret for environment variable %s (%s) could not be read from AWS Secrets Manager: %s%s; "
            "check that `nimbus secret set` gave it a value for this stage and that the function's role "
            "may call secretsmanager:GetSecretValue on it"
            % (var, arn, (code + ": ") if code else "", e)
        ) from None
    if "SecretString" in out and out["SecretString"] is not None:
        return out["SecretString"]
    raise SecretError("secret for environment variable %s (%s) holds binary data; Nimbus secrets are text "
                      "(set it again with `nimbus secret set`)" % (var, arn))
