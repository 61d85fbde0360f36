"""reserve-stock: consumes `order.placed` events from the `order-events` topic.

For every message, each item's sku has its `available` count in the `inventory` table
decremented by `qty`; an sku seen for the first time starts with 100 available.
Messages whose body cannot be parsed are reported as failed (partial batch failure); other
event types are ignored. A message is fully validated before any stock is touched, so a
retried message never applies half of its items twice.
"""

import json

INITIAL_STOCK = 100


def parse_items(body):
    """Return [(sku, qty)] for an order.placed body, [] for other events; raise ValueError if malformed."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("message body is not a JSON object")
    if data.get("type", "order.placed") != "order.placed":
        return []
    items = data.get("items")
    if not isinstance(items, list):
        raise ValueError("items is not a list")
    parsed = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("item is not an object")
        sku, qty = item.get("sku"), item.get("qty")
        if not isinstance(sku, str) or not sku:
            raise ValueError("item has no sku")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise ValueError("item qty is not a positive integer")
        parsed.append((sku, qty))
    return parsed


def handler(event, context):
    inventory = context.resources["inventory"]
    failed = []
    for message in event.get("messages", []):
        try:
            items = parse_items(message.get("body") or "")
        except (ValueError, TypeError) as exc:
            print(json.dumps({"reserve": "unparseable", "message_id": message.get("id"), "error": str(exc)}))
            failed.append(message["id"])
            continue
        for sku, qty in items:
            stock = inventory.get({"sku": sku}) or {"sku": sku, "available": INITIAL_STOCK}
            stock["available"] = stock.get("available", INITIAL_STOCK) - qty
            inventory.put(stock)
    if failed:
        return {"failed": failed}
    return None
