"""Handler that writes to stdout/stderr, including bytes that look like protocol frames."""

import sys


def handler(event, context):
    print("log line from the handler")
    sys.stdout.write('\x00\x00\x00\x0b{"id":"x1"}\n')
    sys.stdout.flush()
    sys.stdout.buffer.write(b"\x00\x00\x00\x02{}")
    sys.stdout.flush()
    print("to stderr", file=sys.stderr)
    return {"status": 200, "headers": {}, "body": "printed"}
