"""Coroutine test handler (neutral contract only)."""

import asyncio


async def handler(event, context):
    await asyncio.sleep(0)
    return {"status": 200, "headers": {}, "body": {"module": "async", "type": event["type"],
                                                   "function_name": context.function_name}}
