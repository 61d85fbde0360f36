"""Handler of the CORS table (tests/shims/cases/cors.json): 200, `x-handled: yes`, and an
`access-control-allow-origin` of its own that CORS must replace."""


def handler(event, context):
    return {
        "status": 200,
        "headers": {
            "x-handled": "yes",
            "x-request-id": "r-1",
            "access-control-allow-origin": "https://handler.example",
        },
        "body": "ok",
    }
