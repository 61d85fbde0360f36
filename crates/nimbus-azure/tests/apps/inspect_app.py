"""Imports a generated Azure Function App (`function_app.py`, Python v2 programming model) with
Microsoft's `azure-functions` library, as the Python worker indexes it, and prints what it
registers: `{"functions": [{"name", "bindings": [<function.json binding>...]}]}`.

With `--http FUNCTION METHOD URL [BODY]`, also calls that HTTP function with an
`azure.functions.HttpRequest` (route parameters filled in by matching the URL against its route)
and prints the response as `"response": {"status", "headers", "body"}`.

Usage: python inspect_app.py APP_DIR [--http FUNCTION METHOD URL [BODY]]
"""

import json
import os
import re
import sys
from urllib.parse import urlsplit


def main():
    app_dir = os.path.abspath(sys.argv[1])
    os.chdir(app_dir)
    sys.path.insert(0, app_dir)
    import azure.functions as func
    import function_app

    app = function_app.app
    functions = []
    by_name = {}
    for f in app.get_functions():
        name = f.get_function_name()
        by_name[name] = f
        functions.append({"name": name, "bindings": json.loads(f.get_function_json())["bindings"]})
    out = {"functions": functions}
    args = sys.argv[2:]
    if args and args[0] == "--http":
        fname, method, url = args[1], args[2], args[3]
        body = args[4].encode() if len(args) > 4 else b""
        f = by_name[fname]
        trigger = next(b for b in json.loads(f.get_function_json())["bindings"] if b["type"] == "httpTrigger")
        pattern = "^/" + re.sub(r"\{\*?(\w+)\}", r"(?P<\1>[^/]+)", trigger["route"]) + "$"
        m = re.match(pattern, urlsplit(url).path)
        params = m.groupdict() if m else {}
        req = func.HttpRequest(method=method, url=url, headers={"content-type": "application/json"},
                               route_params=params, body=body)

        class Ctx:
            invocation_id = "inv-1"

        res = f.get_user_function()(req, Ctx())
        out["response"] = {"status": res.status_code, "headers": dict(res.headers),
                           "body": res.get_body().decode("utf-8", "replace")}
    print(json.dumps(out))


main()
