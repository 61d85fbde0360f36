"""Imports a generated Azure Function App (`function_app.py`, Python v2 programming model) with
Microsoft's `azure-functions` library, as the Python worker indexes it, and prints what it
registers: `{"functions": [{"name", "bindings": [<function.json binding>...]}]}`.

With `--http FUNCTION METHOD URL [BODY]`, also calls that HTTP function with an
`azure.functions.HttpRequest` (route parameters filled in by matching the URL against its route)
and prints the response as `"response": {"status", "headers", "body"}`; FUNCTION `-` picks the
function whose route and methods match (none: `"response": null`). With `--invoke FUNCTION
INPUT`, calls a queue, Service Bus or timer function as the Functions admin API would with that
input (a Cosmos DB function with INPUT a JSON array of change feed documents, as a
`func.DocumentList`) and prints `"invoked": {"ok": true}` or `{"ok": false, "error"}`.

Usage: python inspect_app.py APP_DIR [--http FUNCTION METHOD URL [BODY] | --invoke FUNCTION INPUT]
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
        path = urlsplit(url).path
        match = None
        for name, f in by_name.items():
            trigger = next((b for b in json.loads(f.get_function_json())["bindings"] if b["type"] == "httpTrigger"), None)
            if trigger is None or (fname != "-" and name != fname):
                continue
            pattern = "^/" + re.sub(r"\{\*?(\w+)\}", r"(?P<\1>[^/]+)", trigger["route"]) + "$"
            m = re.match(pattern, path)
            methods = [x.upper() for x in trigger.get("methods") or []]
            if m and (not methods or method.upper() in methods):
                match = (f, trigger, m.groupdict())
                break
        if match is None:
            out["response"] = None
        else:
            f, trigger, params = match
            req = func.HttpRequest(method=method, url=url, headers={"content-type": "application/json"},
                                   route_params=params, body=body)

            class Ctx:
                invocation_id = "inv-1"

            res = f.get_user_function()(req, Ctx())
            out["response"] = {"function": f.get_function_name(), "authLevel": str(trigger.get("authLevel")),
                               "status": res.status_code, "headers": dict(res.headers),
                               "body": res.get_body().decode("utf-8", "replace")}
    if args and args[0] == "--invoke":
        f = by_name[args[1]]
        data = args[2]
        trigger = next(b for b in json.loads(f.get_function_json())["bindings"] if b["type"].endswith("Trigger"))
        import azure.functions.queue as az_queue
        import azure.functions.timer as az_timer

        kind = trigger["type"]
        if kind == "queueTrigger":
            arg = az_queue.QueueMessage(id="admin-1", body=data.encode(), dequeue_count=1)
        elif kind == "timerTrigger":
            arg = az_timer.TimerRequest(past_due=False)
        elif kind == "cosmosDBTrigger":  # INPUT: the JSON array of documents the host delivers
            arg = func.DocumentList([func.Document.from_dict(d) for d in json.loads(data)])
        elif kind == "serviceBusTrigger":
            import azure.functions._servicebus as sb

            arg = sb.ServiceBusMessage(body=data.encode(), message_id="admin-1")
        else:
            raise SystemExit("the runner cannot invoke a %s" % kind)

        class Ctx:
            invocation_id = "admin-1"

        try:
            f.get_user_function()(arg, Ctx())
            out["invoked"] = {"ok": True}
        except Exception as e:  # noqa: BLE001 - reported, as the host would log it
            out["invoked"] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(out))


main()
