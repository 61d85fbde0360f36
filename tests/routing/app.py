"""Answers with the function's name and the route the request matched."""

import json


def handler(event, context):
    return {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({
            "function": context.function_name,
            "method": event["method"],
            "route": event["route"],
            "path_params": event["path_params"],
        }),
    }
