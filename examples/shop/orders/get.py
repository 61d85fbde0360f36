"""get-order: GET /orders/{id} -> 200 with the order, or 404.

GET /orders/{id}/{field+} (a catch-all route) -> 200 with the part of the order at that path
(`/orders/42/items/0/sku` -> the first item's sku), or 404 when the order or the part is missing.
"""


def _response(status, body):
    return {"status": status, "headers": {"content-type": "application/json"}, "body": body}


def _part(value, field):
    """The value at `items/0/sku` inside `value`, or raises KeyError."""
    for key in field.split("/"):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise KeyError(key)
    return value


def handler(event, context):
    params = event.get("path_params") or {}
    order_id = params.get("id", "")
    if not order_id:
        return _response(404, {"error": "order not found", "id": order_id})
    order = context.resources["orders"].get({"id": order_id})
    if order is None:
        return _response(404, {"error": "order not found", "id": order_id})
    field = params.get("field")
    if field is None:
        return _response(200, order)
    try:
        value = _part(order, field)
    except KeyError as e:
        return _response(404, {"error": "no such field", "id": order_id, "field": field, "missing": str(e)})
    return _response(200, {"id": order_id, "field": field, "value": value})
