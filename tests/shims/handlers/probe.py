"""Test handler written against the neutral Nimbus contract only (Python)."""

import json
import os


def _ctx(context):
    remaining = context.remaining_ms()
    return {
        "function_name": context.function_name,
        "request_id": context.request_id,
        "service": context.service,
        "stage": context.stage,
        "provider": context.provider,
        "deadline_ms": context.deadline_ms,
        "remaining_ok": 0 < remaining <= 60 * 60 * 1000,
        "resources": sorted(context.resources),
    }


def _record(event, context):
    path = os.environ.get("NIMBUS_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "context": _ctx(context)}) + "\n")


def _attempt(fn):
    try:
        fn()
        return None
    except Exception as e:  # noqa: BLE001
        return {"type": type(e).__name__, "message": str(e)}


def _resources(context):
    return {
        "granted": sorted(context.resources),
        "has_orders": "orders" in context.resources,
        "has_secrets": "secrets" in context.resources,
        "not_granted": _attempt(lambda: context.resources["secrets"]),
        "trigger_only": _attempt(lambda: context.resources["payments"]),
        "no_client": _attempt(lambda: context.resources["orders"].get({"id": "1"})),
    }


def handler(event, context):
    _record(event, context)
    t = event["type"]
    if t == "http":
        p = event["path"]
        if p.endswith("/text"):
            return "hello text"
        if p.endswith("/bytes"):
            return b"\x00\x01\xffbin"
        if p.endswith("/none"):
            return None
        if p.endswith("/list"):
            return [1, 2, 3]
        if p.endswith("/error"):
            raise RuntimeError("boom from handler")
        if p.endswith("/cookies"):
            return {"status": 201, "headers": {"set-cookie": ["a=1", "b=2"], "x-multi": "v"}, "body": "made"}
        if p.endswith("/resources"):
            return _resources(context)
        return {"status": 200, "headers": {"x-handler": "probe"}, "body": {"event": event, "context": _ctx(context)}}
    if t in ("queue", "topic"):
        if any(m["body"] == "boom" for m in event["messages"]):
            raise RuntimeError("batch boom")
        failed = [m["id"] for m in event["messages"] if "fail" in m["body"]]
        return {"failed": failed} if failed else None
    if t == "bucket" and "boom" in event["key"]:
        raise RuntimeError("bucket boom")
    if t == "table" and (event.get("new") or {}).get("boom"):
        raise RuntimeError("table boom")
    return None
