"""The smallest Nimbus app: one HTTP function.

GET /hello?name=you  ->  200 {"message": "hello, you"}
"""


def handler(event, context):
    name = (event.get("query") or {}).get("name") or "world"
    return {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": {"message": f"hello, {name}"},
    }
