"""Handler that reports what its secret variables held when Lambda imported it, and now."""

import json
import os

AT_IMPORT = {k: os.environ.get(k) for k in ("API_KEY", "DB_PASSWORD")}


def handler(event, context):
    now = {k: os.environ.get(k) for k in ("API_KEY", "DB_PASSWORD")}
    return {"status": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"at_import": AT_IMPORT, "now": now})}
