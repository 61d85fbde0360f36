"""Answers with the function's name and the route the request matched, in the body and (for
HEAD requests, which have no body) in `x-routing` as JSON."""

import json


def handler(event, context):
    seen = json.dumps({
        "function": context.function_name,
        "route": event["route"],
        "path_params": event["path_params"],
    }, ensure_ascii=True, sort_keys=True)
    return {
        "status": 200,
        "headers": {"content-type": "application/json", "x-routing": seen},
        "body": seen,
    }
