"""A Nimbus HTTP function: GET /hello?name=you -> {"message": "hello, you"}."""


def handler(event, context):
    name = (event.get("query") or {}).get("name", "world")
    return {"status": 200, "headers": {"content-type": "application/json"}, "body": {"message": f"hello, {name}"}}
