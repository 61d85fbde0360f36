"""Unit tests of the shop's Python handlers.

The handlers are called directly with neutral events (the shapes of the Nimbus function
contract) and a context whose `resources` are small in-memory fakes of the contract's resource
clients (table / queue / topic / bucket). This tests handler logic only, not any cloud.

    python3 -m pytest examples/shop/tests
"""

import copy
import importlib.util
import io
import json
import pathlib
import time
import uuid

import pytest
from PIL import Image

SHOP = pathlib.Path(__file__).resolve().parent.parent


def load(relpath):
    path = SHOP / relpath
    name = "shop_" + relpath.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


place = load("orders/place.py")
get_order = load("orders/get.py")
audit = load("orders/audit.py")
reserve = load("inventory/reserve.py")
nightly = load("reports/nightly.py")
thumb = load("images/thumb.py")


# --- in-memory fakes of the contract's resource clients ------------------------------------

def _roundtrip(value):
    """Items cross a serialization boundary in every real backend; insist they are JSON."""
    return json.loads(json.dumps(value))


class FakeTable:
    def __init__(self, *key_fields):
        self.key_fields = key_fields
        self.items = {}

    def _k(self, key):
        return tuple(key[f] for f in self.key_fields)

    def get(self, key):
        item = self.items.get(self._k(key))
        return copy.deepcopy(item)

    def put(self, item):
        self.items[self._k(item)] = _roundtrip(item)

    def delete(self, key):
        self.items.pop(self._k(key), None)

    def query(self, key, limit=None):
        rows = [copy.deepcopy(i) for i in self.items.values() if all(i.get(k) == v for k, v in key.items())]
        return rows[:limit] if limit is not None else rows

    def scan(self, limit=None):
        rows = [copy.deepcopy(i) for i in self.items.values()]
        return rows[:limit] if limit is not None else rows


class FakeQueue:
    def __init__(self):
        self.sent = []

    def send(self, body, attributes=None, delay_seconds=0):
        if not isinstance(body, str):
            body = json.dumps(body)
        mid = uuid.uuid4().hex
        self.sent.append({"id": mid, "body": body, "attributes": dict(attributes or {})})
        return mid


class FakeTopic:
    def __init__(self):
        self.published = []

    def publish(self, body, attributes=None):
        if not isinstance(body, str):
            body = json.dumps(body)
        mid = uuid.uuid4().hex
        self.published.append({"id": mid, "body": body, "attributes": dict(attributes or {})})
        return mid


class FakeBucket:
    def __init__(self):
        self.objects = {}
        self.content_types = {}

    def get(self, key):
        return self.objects.get(key)

    def put(self, key, data, content_type=None):
        self.objects[key] = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self.content_types[key] = content_type

    def delete(self, key):
        self.objects.pop(key, None)

    def list(self, prefix=""):
        return sorted(k for k in self.objects if k.startswith(prefix))


class FakeContext:
    def __init__(self, function_name, **resources):
        self.function_name = function_name
        self.request_id = uuid.uuid4().hex
        self.service = "shop"
        self.stage = "test"
        self.provider = "local"
        self.deadline_ms = int(time.time() * 1000) + 10_000
        self.resources = resources

    def remaining_ms(self):
        return max(0, self.deadline_ms - int(time.time() * 1000))


# --- event builders -------------------------------------------------------------------------

def http_event(method, path, route, body=None, path_params=None, query=None):
    return {
        "type": "http", "method": method, "path": path, "route": route,
        "path_params": path_params or {}, "query": query or {},
        "headers": {"content-type": "application/json"},
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "is_base64": False, "source_ip": "127.0.0.1",
    }


def topic_event(*bodies):
    return {"type": "topic", "source": "order-events",
            "messages": [{"id": f"m{i}", "body": b, "attributes": {}} for i, b in enumerate(bodies, 1)]}


GOOD_ORDER = {"items": [{"sku": "mug-blue", "qty": 2}, {"sku": "tee-m", "qty": 1}],
              "email": "ann@example.com", "amount": 42.5}


@pytest.fixture
def shop():
    return {"orders": FakeTable("id"), "order-events": FakeTopic(), "payments": FakeQueue(),
            "inventory": FakeTable("sku"), "images": FakeBucket(), "reports": FakeBucket()}


def place_ctx(shop):
    return FakeContext("place-order", orders=shop["orders"], **{"order-events": shop["order-events"]},
                       payments=shop["payments"])


# --- place-order ----------------------------------------------------------------------------

def test_place_order_201_stores_publishes_and_queues(shop):
    res = place.handler(http_event("POST", "/orders", "/orders", GOOD_ORDER), place_ctx(shop))
    assert res["status"] == 201
    assert res["headers"]["content-type"] == "application/json"
    order = res["body"]
    assert order["status"] == "placed"
    assert order["items"] == GOOD_ORDER["items"]
    assert order["email"] == "ann@example.com" and order["amount"] == 42.5
    assert order["created_at"].endswith("Z") and order["id"]
    assert set(order) == {"id", "items", "email", "amount", "status", "created_at"}

    assert shop["orders"].get({"id": order["id"]}) == order

    [event] = shop["order-events"].published
    body = json.loads(event["body"])
    assert body["type"] == "order.placed" and body["order_id"] == order["id"]
    assert body["items"] == GOOD_ORDER["items"]
    assert event["attributes"] == {"event": "order.placed"}

    [payment] = shop["payments"].sent
    assert json.loads(payment["body"]) == {"order_id": order["id"], "amount": 42.5}


def test_place_order_passes_flaky_flag_to_payment(shop):
    res = place.handler(http_event("POST", "/orders", "/orders", {**GOOD_ORDER, "flaky": True}), place_ctx(shop))
    assert res["status"] == 201
    assert json.loads(shop["payments"].sent[0]["body"])["flaky"] is True
    assert "flaky" not in res["body"]


def test_place_order_accepts_base64_body(shop):
    import base64
    ev = http_event("POST", "/orders", "/orders")
    ev["body"], ev["is_base64"] = base64.b64encode(json.dumps(GOOD_ORDER).encode()).decode(), True
    assert place.handler(ev, place_ctx(shop))["status"] == 201


@pytest.mark.parametrize("body, fragment", [
    (None, "valid JSON"),
    ("{not json", "valid JSON"),
    ("[1, 2]", "JSON object"),
    ({**GOOD_ORDER, "items": []}, "items must be a non-empty list"),
    ({**GOOD_ORDER, "items": [{"sku": "", "qty": 1}]}, "items[0].sku"),
    ({**GOOD_ORDER, "items": [{"sku": "a", "qty": 0}]}, "items[0].qty"),
    ({**GOOD_ORDER, "items": [{"sku": "a", "qty": True}]}, "items[0].qty"),
    ({**GOOD_ORDER, "items": [{"sku": "a", "qty": 1.5}]}, "items[0].qty"),
    ({**GOOD_ORDER, "email": "nope"}, "email"),
    ({k: v for k, v in GOOD_ORDER.items() if k != "email"}, "email"),
    ({**GOOD_ORDER, "amount": "12"}, "amount must be a number"),
    ({**GOOD_ORDER, "amount": -1}, "amount must not be negative"),
])
def test_place_order_400_on_bad_input(shop, body, fragment):
    res = place.handler(http_event("POST", "/orders", "/orders", body), place_ctx(shop))
    assert res["status"] == 400
    assert res["headers"]["content-type"] == "application/json"
    text = json.dumps(res["body"])
    assert "error" in res["body"] and fragment in text
    # nothing was written anywhere
    assert shop["orders"].items == {} and shop["order-events"].published == [] and shop["payments"].sent == []


def test_place_order_reports_every_problem(shop):
    res = place.handler(http_event("POST", "/orders", "/orders", {"items": "x", "email": 1, "amount": None}),
                        place_ctx(shop))
    assert res["status"] == 400 and len(res["body"]["details"]) == 3


# --- get-order ------------------------------------------------------------------------------

def test_get_order_200_and_404(shop):
    created = place.handler(http_event("POST", "/orders", "/orders", GOOD_ORDER), place_ctx(shop))["body"]
    ctx = FakeContext("get-order", orders=shop["orders"])

    ok = get_order.handler(http_event("GET", f"/orders/{created['id']}", "/orders/{id}",
                                      path_params={"id": created["id"]}), ctx)
    assert ok["status"] == 200 and ok["body"] == created

    missing = get_order.handler(http_event("GET", "/orders/nope", "/orders/{id}", path_params={"id": "nope"}), ctx)
    assert missing["status"] == 404
    assert missing["headers"]["content-type"] == "application/json"
    assert missing["body"] == {"error": "order not found", "id": "nope"}


def test_get_order_field_through_the_catch_all_route(shop):
    created = place.handler(http_event("POST", "/orders", "/orders", GOOD_ORDER), place_ctx(shop))["body"]
    ctx = FakeContext("get-order", orders=shop["orders"])
    oid = created["id"]

    def get(field):
        return get_order.handler(http_event("GET", f"/orders/{oid}/{field}", "/orders/{id}/{field+}",
                                            path_params={"id": oid, "field": field}), ctx)

    sku = get("items/0/sku")
    assert sku["status"] == 200
    assert sku["body"] == {"id": oid, "field": "items/0/sku", "value": created["items"][0]["sku"]}
    assert get("items")["body"]["value"] == created["items"]
    for bad in ("items/9/sku", "items/x", "nope", "items/0/sku/deeper"):
        r = get(bad)
        assert r["status"] == 404 and r["body"]["error"] == "no such field", bad


# --- reserve-stock --------------------------------------------------------------------------

def test_reserve_stock_decrements_and_creates_missing_items(shop):
    inv = shop["inventory"]
    inv.put({"sku": "mug-blue", "available": 10})
    ev = topic_event(
        json.dumps({"type": "order.placed", "order_id": "o1", "items": [{"sku": "mug-blue", "qty": 2},
                                                                         {"sku": "tee-m", "qty": 3}]}),
        json.dumps({"type": "order.placed", "order_id": "o2", "items": [{"sku": "mug-blue", "qty": 1}]}),
    )
    assert reserve.handler(ev, FakeContext("reserve-stock", inventory=inv)) is None
    assert inv.get({"sku": "mug-blue"})["available"] == 7
    assert inv.get({"sku": "tee-m"}) == {"sku": "tee-m", "available": 97}


def test_reserve_stock_partial_failure_for_unparseable_messages(shop):
    inv = shop["inventory"]
    ev = topic_event(
        "not json at all",
        json.dumps({"type": "order.placed", "items": [{"sku": "a", "qty": 1}]}),
        json.dumps({"type": "order.placed", "items": [{"sku": "b", "qty": 1}, {"qty": 2}]}),  # no sku
        json.dumps([1, 2, 3]),
        json.dumps({"type": "order.cancelled", "order_id": "x"}),  # other events are ignored
    )
    res = reserve.handler(ev, FakeContext("reserve-stock", inventory=inv))
    assert res == {"failed": ["m1", "m3", "m4"]}
    assert inv.get({"sku": "a"})["available"] == 99
    assert inv.get({"sku": "b"}) is None  # malformed message touched nothing


def test_reserve_stock_consumes_what_place_order_publishes(shop):
    place.handler(http_event("POST", "/orders", "/orders", GOOD_ORDER), place_ctx(shop))
    msgs = [{**m, "id": "e1"} for m in shop["order-events"].published]
    reserve.handler({"type": "topic", "source": "order-events", "messages": msgs},
                    FakeContext("reserve-stock", inventory=shop["inventory"]))
    assert shop["inventory"].get({"sku": "mug-blue"})["available"] == 98
    assert shop["inventory"].get({"sku": "tee-m"})["available"] == 99


# --- make-thumbnail -------------------------------------------------------------------------

def _png(width, height, mode="RGB"):
    out = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode == "RGB" else None).save(out, format="PNG")
    return out.getvalue()


def _jpeg(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 128, 255)).save(out, format="JPEG")
    return out.getvalue()


def bucket_event(key, action="created", size=None):
    return {"type": "bucket", "bucket": "images", "key": key, "size": size, "action": action}


@pytest.mark.parametrize("key, data, expected_key, expected_size", [
    ("uploads/cat.png", _png(640, 480), "thumbnails/cat.png", (128, 96)),
    ("uploads/tall.jpg", _jpeg(300, 1200), "thumbnails/tall.png", (32, 128)),
    ("uploads/2024/06/dog.jpeg", _jpeg(1000, 1000), "thumbnails/2024/06/dog.png", (128, 128)),
    ("uploads/small.png", _png(50, 40), "thumbnails/small.png", (50, 40)),  # never upscaled
    ("uploads/pal.png", _png(256, 128, "P"), "thumbnails/pal.png", (128, 64)),
])
def test_make_thumbnail(shop, key, data, expected_key, expected_size):
    images = shop["images"]
    images.put(key, data)
    thumb.handler(bucket_event(key, size=len(data)), FakeContext("make-thumbnail", images=images))
    assert expected_key in images.objects
    assert images.content_types[expected_key] == "image/png"
    with Image.open(io.BytesIO(images.objects[expected_key])) as t:
        assert t.format == "PNG"
        assert t.size == expected_size


def test_make_thumbnail_ignores_deletes_other_prefixes_and_missing_or_bad_objects(shop):
    images = shop["images"]
    ctx = FakeContext("make-thumbnail", images=images)
    images.put("uploads/a.png", _png(300, 300))
    images.put("other/b.png", _png(300, 300))
    images.put("uploads/notes.txt", b"not an image")
    thumb.handler(bucket_event("uploads/a.png", action="deleted"), ctx)
    thumb.handler(bucket_event("other/b.png"), ctx)
    thumb.handler(bucket_event("uploads/gone.png"), ctx)
    thumb.handler(bucket_event("uploads/notes.txt"), ctx)
    assert images.list("thumbnails/") == []


# --- nightly-report -------------------------------------------------------------------------

def test_nightly_report_totals(shop):
    orders, reports = shop["orders"], shop["reports"]
    for i, (status, amount) in enumerate([("paid", 10.0), ("paid", 20.25), ("placed", 5), ("paid", 0.1),
                                          ("placed", 99.99)]):
        orders.put({"id": f"o{i}", "items": [], "email": "a@b.c", "amount": amount, "status": status,
                    "created_at": "2026-11-24T12:00:00Z"})
    ev = {"type": "schedule", "name": "nightly-report", "time": "2026-11-25T03:00:00Z"}
    nightly.handler(ev, FakeContext("nightly-report", orders=orders, reports=reports))

    assert reports.list() == ["nightly/2026-11-25.json"]
    assert reports.content_types["nightly/2026-11-25.json"] == "application/json"
    report = json.loads(reports.get("nightly/2026-11-25.json"))
    assert report == {"generated_at": "2026-11-25T03:00:00Z", "orders": 5, "revenue": 30.35,
                      "by_status": {"paid": 3, "placed": 2}}


def test_nightly_report_empty_table(shop):
    ev = {"type": "schedule", "name": "nightly-report", "time": "2026-01-02T03:00:00Z"}
    nightly.handler(ev, FakeContext("nightly-report", orders=shop["orders"], reports=shop["reports"]))
    report = json.loads(shop["reports"].get("nightly/2026-01-02.json"))
    assert report == {"generated_at": "2026-01-02T03:00:00Z", "orders": 0, "revenue": 0.0, "by_status": {}}


# --- audit-orders ---------------------------------------------------------------------------

def test_audit_lines(capsys):
    ctx = FakeContext("audit-orders")
    placed = {"id": "o1", "status": "placed", "amount": 3}
    paid = {**placed, "status": "paid"}
    for action, old, new in [("insert", None, placed), ("modify", placed, paid), ("remove", paid, None)]:
        assert audit.handler({"type": "table", "table": "orders", "action": action, "key": {"id": "o1"},
                              "old": old, "new": new}, ctx) is None
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"audit": "insert", "key": {"id": "o1"}, "old_status": None, "new_status": "placed"},
        {"audit": "modify", "key": {"id": "o1"}, "old_status": "placed", "new_status": "paid"},
        {"audit": "remove", "key": {"id": "o1"}, "old_status": "paid", "new_status": None},
    ]
