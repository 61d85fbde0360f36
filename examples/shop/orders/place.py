"""place-order: POST /orders.

Request body (JSON):
    {"items": [{"sku": "mug-blue", "qty": 2}], "email": "ann@example.com", "amount": 24.5}

On success the order is stored in the `orders` table, an `order.placed` event is published
to the `order-events` topic, a `{order_id, amount}` payment is sent to the `payments` queue,
and the handler answers 201 with the order. Bad input answers 400 with
`{"error": "...", "details": [...]}`.

An `amount` of 0 is accepted here (a free order), but charge-payment treats a non-positive
amount as a poison message: it fails on every receive and ends in the dead-letter queue.
An optional `"flaky": true` is passed through to the payment message so that the retry path
can be exercised end to end (charge-payment fails it on its first receive only).
"""

import base64
import json
import logging
import os
import uuid
from datetime import datetime, timezone

log = logging.getLogger("place-order")
log.setLevel(getattr(logging, os.environ.get("LOG_LEVEL", "info").upper(), logging.INFO))

MAX_ITEMS = 100


def _response(status, body):
    return {"status": status, "headers": {"content-type": "application/json"}, "body": body}


def _bad_request(error, details=None):
    body = {"error": error}
    if details:
        body["details"] = details
    return _response(400, body)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_body(event):
    raw = event.get("body")
    if raw is None or raw == "":
        raise ValueError("request body is empty")
    if event.get("is_base64"):
        raw = base64.b64decode(raw).decode("utf-8")
    return json.loads(raw)


def validate(data):
    """Return a list of human-readable problems; empty when `data` is a valid order."""
    if not isinstance(data, dict):
        return ["body must be a JSON object"]
    problems = []

    items = data.get("items")
    if not isinstance(items, list) or not items:
        problems.append("items must be a non-empty list")
    elif len(items) > MAX_ITEMS:
        problems.append(f"items must have at most {MAX_ITEMS} entries")
    else:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(f"items[{i}] must be an object")
                continue
            sku = item.get("sku")
            if not isinstance(sku, str) or not sku.strip():
                problems.append(f"items[{i}].sku must be a non-empty string")
            qty = item.get("qty")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                problems.append(f"items[{i}].qty must be a positive integer")

    email = data.get("email")
    if not isinstance(email, str) or "@" not in email or email.startswith("@") or email.endswith("@"):
        problems.append("email must be an email address")

    amount = data.get("amount")
    if not _is_number(amount) or amount != amount or amount in (float("inf"), float("-inf")):
        problems.append("amount must be a number")
    elif amount < 0:
        problems.append("amount must not be negative")

    if "flaky" in data and not isinstance(data["flaky"], bool):
        problems.append("flaky must be a boolean")
    return problems


def handler(event, context):
    try:
        data = _parse_body(event)
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad_request("body must be valid JSON", [str(exc)])

    problems = validate(data)
    if problems:
        return _bad_request("invalid order", problems)

    order = {
        "id": uuid.uuid4().hex,
        "items": [{"sku": item["sku"].strip(), "qty": item["qty"]} for item in data["items"]],
        "email": data["email"],
        "amount": data["amount"],
        "status": "placed",
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    context.resources["orders"].put(order)
    context.resources["order-events"].publish(
        {
            "type": "order.placed",
            "order_id": order["id"],
            "items": order["items"],
            "email": order["email"],
            "amount": order["amount"],
            "created_at": order["created_at"],
        },
        {"event": "order.placed"},
    )
    payment = {"order_id": order["id"], "amount": order["amount"]}
    if data.get("flaky") is True:
        payment["flaky"] = True
    context.resources["payments"].send(payment)

    log.debug("placed order %s", order["id"])
    return _response(201, order)
