"""get-order: GET /orders/{id} -> 200 with the order, or 404."""


def _response(status, body):
    return {"status": status, "headers": {"content-type": "application/json"}, "body": body}


def handler(event, context):
    order_id = (event.get("path_params") or {}).get("id", "")
    if not order_id:
        return _response(404, {"error": "order not found", "id": order_id})
    order = context.resources["orders"].get({"id": order_id})
    if order is None:
        return _response(404, {"error": "order not found", "id": order_id})
    return _response(200, order)
