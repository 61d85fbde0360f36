"""GCP resource clients (Python, _nimbus/gcp_resources.py) against Google's Firestore and Pub/Sub
emulators and fake-gcs-server (started once for the session: conftest.gcp_emulators).

Every op of every client runs through Google's client libraries (as inside Cloud Functions); its
effect is checked with the emulators' own REST APIs, not with the clients.
"""

import base64
import json
import urllib.parse
import uuid

import pytest

from conftest import build_package, config, in_process, rest

# Google's clients come from tests/requirements.txt; a missing one fails here (never a skip).
import google.cloud.firestore  # noqa: E402,F401
import google.cloud.pubsub_v1  # noqa: E402,F401
import google.cloud.storage  # noqa: E402,F401

PROJECT = "nimbus-shim-test"
KEY = ["customer", "id"]


def _resources_config(access=None):
    access = access or {}
    return {
        "orders": {"type": "table", "access": access.get("orders", "read_write"), "key": KEY, "native": {}},
        "refunds": {"type": "queue", "access": "send", "native": {}},
        "order-events": {"type": "topic", "access": "publish", "native": {}},
        "images": {"type": "bucket", "access": access.get("images", "read_write"), "native": {}},
    }


class World:
    """What one test created in the emulators, and how to look at it."""

    def __init__(self, urls):
        self.urls = urls
        tag = uuid.uuid4().hex[:8]
        self.collection = "orders-" + tag
        self.queue_topic = "projects/%s/topics/refunds-%s" % (PROJECT, tag)
        self.topic = "projects/%s/topics/order-events-%s" % (PROJECT, tag)
        self.bucket = "images-" + tag
        for t in (self.queue_topic, self.topic):
            assert rest(urls["pubsub"], "PUT", "/v1/" + t, {})[0] == 200
            sub = t.replace("/topics/", "/subscriptions/") + "-check"
            assert rest(urls["pubsub"], "PUT", "/v1/" + sub, {"topic": t})[0] == 200
        assert rest(urls["storage"], "POST", "/storage/v1/b?project=" + PROJECT, {"name": self.bucket})[0] == 200

    def env(self):
        return {"NIMBUS_GCP_PROJECT": PROJECT,
                "NIMBUS_RESOURCE_ORDERS_COLLECTION": self.collection,
                "NIMBUS_RESOURCE_ORDERS_DATABASE": "projects/%s/databases/(default)" % PROJECT,
                "NIMBUS_RESOURCE_REFUNDS_TOPIC": self.queue_topic,
                "NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC": self.topic,
                "NIMBUS_RESOURCE_IMAGES_NAME": self.bucket}

    def document(self, doc_id):
        status, body = rest(self.urls["firestore"], "GET", "/v1/projects/%s/databases/(default)/documents/%s/%s"
                            % (PROJECT, self.collection, urllib.parse.quote(doc_id, safe="")))
        return body if status == 200 else None

    def pull(self, topic, n=1):
        sub = "/v1/" + topic.replace("/topics/", "/subscriptions/") + "-check"
        got = []
        for _ in range(20):
            status, body = rest(self.urls["pubsub"], "POST", sub + ":pull", {"maxMessages": 10})
            got.extend(m["message"] for m in (body or {}).get("receivedMessages") or [])
            if len(got) >= n:
                break
        return got

    def objects(self):
        status, body = rest(self.urls["storage"], "GET", "/storage/v1/b/%s/o" % self.bucket)
        return {o["name"]: o for o in (body or {}).get("items") or []}


@pytest.fixture
def world(gcp_emulators, monkeypatch):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", gcp_emulators["firestore"].split("//", 1)[1])
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", gcp_emulators["pubsub"].split("//", 1)[1])
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcp_emulators["storage"])
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    w = World(gcp_emulators)
    for k, v in w.env().items():
        monkeypatch.setenv(k, v)
    return w


@pytest.fixture
def shim(tmp_path):
    """The GCP shim's modules from a built package: (core, gcp_resources, make_resources)."""
    cfg = config("gcp", resources=_resources_config())
    root = build_package(tmp_path / "pkg", "gcp", cfg)
    with in_process(root):
        from _nimbus import core, gcp, gcp_resources  # noqa: F401 - gcp registers the factory

        def resources(access=None, **overrides):
            c = dict(cfg, resources=_resources_config(access), **overrides)
            return core.Resources(c, "gcp")
        yield core, gcp_resources, resources
        gcp_resources.reset_clients()


# --------------------------------------------------------------------------- table


def test_table_put_get_delete(world, shim):
    core, gr, resources = shim
    orders = resources()["orders"]
    item = {"customer": "c1", "id": "o/1", "total": 12, "price": 3.25, "paid": True, "note": None,
            "lines": [{"sku": "a", "qty": 2}], "meta": {"gift": False, "tags": ["x", "y"]}}
    assert orders.put(item) is None
    doc = world.document("c1,o%2F1")  # the key's text, percent-encoded, joined with `,`
    f = doc["fields"]
    assert f["total"] == {"integerValue": "12"} and f["price"] == {"doubleValue": 3.25}
    assert f["paid"] == {"booleanValue": True} and f["note"] == {"nullValue": None}
    assert f["lines"]["arrayValue"]["values"][0]["mapValue"]["fields"]["qty"] == {"integerValue": "2"}
    got = orders.get({"customer": "c1", "id": "o/1"})
    assert got == item
    assert type(got["total"]) is int and type(got["price"]) is float
    assert orders.get({"customer": "c1", "id": "nope"}) is None
    assert orders.delete({"customer": "c1", "id": "o/1"}) is None
    assert world.document("c1,o%2F1") is None
    assert orders.get({"customer": "c1", "id": "o/1"}) is None
    assert orders.delete({"customer": "c1", "id": "o/1"}) is None  # idempotent


def test_table_query_and_scan(world, shim):
    core, gr, resources = shim
    orders = resources()["orders"]
    for i in range(5):
        orders.put({"customer": "c1", "id": "o%d" % i, "n": i})
    orders.put({"customer": "c2", "id": "o9", "n": 9})
    items = orders.query({"customer": "c1"})
    assert [i["id"] for i in items] == ["o0", "o1", "o2", "o3", "o4"] and items[2]["n"] == 2
    assert [i["id"] for i in orders.query({"customer": "c1"}, limit=3)] == ["o0", "o1", "o2"]
    assert orders.query({"customer": "nobody"}) == []
    assert sorted(i["id"] for i in orders.scan()) == ["o0", "o1", "o2", "o3", "o4", "o9"]
    assert len(orders.scan(limit=4)) == 4


def test_document_ids_are_valid_and_the_same_in_every_language(shim):
    core, gr, resources = shim
    assert gr.document_id({"id": "o-1"}, ["id"]) == "o-1"
    assert gr.document_id({"id": "a.b_c/é"}, ["id"]) == "a%2Eb%5Fc%2F%C3%A9"
    assert gr.document_id({"id": 42}, ["id"]) == "42"
    assert gr.document_id({"id": 2.0}, ["id"]) == "2"
    assert gr.document_id({"c": "x", "i": 7}, ["c", "i"]) == "x,7"
    assert gr.document_id({"b": "2", "a": "1"}, []) == "1,2"  # no declared key: sorted fields
    with pytest.raises(TypeError, match="must be a str or a number"):
        gr.document_id({"id": True}, ["id"])
    with pytest.raises(ValueError, match="must not be empty"):
        gr.document_id({"id": ""}, ["id"])


def test_table_validation(world, shim):
    core, gr, resources = shim
    orders = resources()["orders"]
    with pytest.raises(TypeError, match="table key must be a dict"):
        orders.get("c1")
    with pytest.raises(ValueError, match="lacks the table's key field"):
        orders.put({"customer": "c1"})
    with pytest.raises(ValueError, match="lacks the table's key field"):
        orders.query({"id": "o1"})
    with pytest.raises(ValueError, match="limit must be a positive int"):
        orders.scan(limit=0)
    with pytest.raises(TypeError, match="must be a str or a number"):
        orders.put({"customer": ["c"], "id": "o1"})
    with pytest.raises(core.ResourceAccessError, match="does not allow put"):
        resources({"orders": "read"})["orders"].put({"customer": "c1", "id": "o1"})


# --------------------------------------------------------------------------- queue and topic


def test_queue_send_publishes_to_the_queue_topic(world, shim):
    core, gr, resources = shim
    refunds = resources()["refunds"]
    mid = refunds.send({"order": "o1", "amount": 5}, {"reason": "damaged", "source": "web"})
    mid2 = refunds.send("plain text")
    assert isinstance(mid, str) and mid and mid2 != mid
    by_id = {m["messageId"]: m for m in world.pull(world.queue_topic, n=2)}
    assert set(by_id) == {mid, mid2}
    assert json.loads(base64.b64decode(by_id[mid]["data"])) == {"order": "o1", "amount": 5}
    assert by_id[mid]["attributes"] == {"reason": "damaged", "source": "web"}
    assert base64.b64decode(by_id[mid2]["data"]) == b"plain text" and not by_id[mid2].get("attributes")
    with pytest.raises(gr.ResourceError, match="Pub/Sub cannot delay a message") as e:
        refunds.send("x", delay_seconds=5)
    assert e.value.type == "BadRequest"
    with pytest.raises(TypeError, match="attribute 'n' must be a str"):
        refunds.send("x", {"n": 1})
    with pytest.raises(TypeError, match="body must be a str"):
        refunds.send(42)


def test_topic_publish(world, shim):
    core, gr, resources = shim
    events = resources()["order-events"]
    mid = events.publish({"order": "o1", "status": "placed"}, {"kind": "placed", "retry": "no"})
    (msg,) = world.pull(world.topic)
    assert msg["messageId"] == mid
    assert json.loads(base64.b64decode(msg["data"])) == {"order": "o1", "status": "placed"}
    assert msg["attributes"] == {"kind": "placed", "retry": "no"}


# --------------------------------------------------------------------------- bucket


def test_bucket_ops(world, shim):
    core, gr, resources = shim
    images = resources()["images"]
    png = bytes(range(256)) * 3
    assert images.put("a/one.png", png, content_type="image/png") is None
    images.put("a/two.txt", "héllo")
    images.put("b/three.txt", b"3")
    objects = world.objects()
    assert objects["a/one.png"]["contentType"] == "image/png" and int(objects["a/one.png"]["size"]) == len(png)
    status, raw = rest(world.urls["storage"], "GET", "/storage/v1/b/%s/o/a%%2Ftwo.txt" % world.bucket)
    assert status == 200 and int(raw["size"]) == len("héllo".encode())
    assert images.get("a/one.png") == png
    assert images.get("a/two.txt") == "héllo".encode()
    assert images.get("missing") is None
    assert images.list() == ["a/one.png", "a/two.txt", "b/three.txt"]
    assert images.list("a/") == ["a/one.png", "a/two.txt"]
    assert images.list("zzz") == []
    assert images.delete("a/one.png") is None
    assert images.delete("a/one.png") is None  # a missing object: fine
    assert images.get("a/one.png") is None and "a/one.png" not in world.objects()
    with pytest.raises(TypeError, match="bucket data must be bytes or str"):
        images.put("k", 42)
    with pytest.raises(ValueError, match="bucket key must be a non-empty str"):
        images.get("")
    with pytest.raises(core.ResourceAccessError, match="does not allow get"):
        resources({"images": "write"})["images"].get("a/two.txt")


# --------------------------------------------------------------------------- errors, configuration, reuse


def test_google_errors_become_resource_errors(world, shim, monkeypatch):
    core, gr, resources = shim
    monkeypatch.setenv("NIMBUS_RESOURCE_IMAGES_NAME", "no-such-bucket-" + uuid.uuid4().hex[:8])
    monkeypatch.setenv("NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC", world.topic + "-gone")
    monkeypatch.setenv("NIMBUS_RESOURCE_REFUNDS_TOPIC", "not a topic name")
    res = resources()
    with pytest.raises(gr.ResourceError) as e:
        res["images"].get("k")
    assert e.value.type == "NotFound" and "does not exist" in e.value.message and e.value.op == "get"
    assert isinstance(e.value, core.NimbusError) and e.value.resource == "images"
    with pytest.raises(gr.ResourceError) as e:
        res["images"].delete("k")
    assert e.value.type == "NotFound"
    with pytest.raises(gr.ResourceError) as e:
        res["order-events"].publish("x")
    assert e.value.type == "NotFound" and e.value.code == "NOT_FOUND" and e.value.op == "publish"
    with pytest.raises(gr.ResourceError) as e:
        res["refunds"].send("x")
    assert e.value.type == "BadRequest" and e.value.code == "INVALID_ARGUMENT"
    assert gr.error_type("PERMISSION_DENIED") == "AccessDenied" and gr.error_type(None, 429) == "Throttled"
    assert gr.error_type("ABORTED") == "Conflict" and gr.error_type(None, 500) == "Internal"


def test_missing_env_var_is_a_clear_error(world, shim, monkeypatch):
    core, gr, resources = shim
    monkeypatch.delenv("NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC")
    monkeypatch.delenv("NIMBUS_RESOURCE_ORDERS_DATABASE")
    res = resources()
    with pytest.raises(gr.ResourceError, match="NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC is not set") as e:
        res["order-events"].publish("x")
    assert e.value.type == "NotConfigured" and e.value.resource == "order-events"
    with pytest.raises(gr.ResourceError, match="NIMBUS_RESOURCE_ORDERS_DATABASE is not set"):
        res["orders"].get({"customer": "c", "id": "1"})
    assert gr.env_var("order-events", "TOPIC") == "NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC"
    # a name in function.json's native block is the fallback
    spec = dict(_resources_config()["order-events"], native={"topic": world.topic})
    mid = gr.make_client("order-events", spec).publish("via native")
    assert [m["messageId"] for m in world.pull(world.topic)] == [mid]


def test_clients_created_lazily_once(world, shim):
    core, gr, resources = shim
    assert gr._CLIENTS == {}
    res = resources()
    assert gr._CLIENTS == {}, "creating the resources creates no library client"
    res["orders"].put({"customer": "c", "id": "1"})
    client = gr.gcp_client("firestore", "(default)")
    assert list(gr._CLIENTS) == [("firestore", "(default)")]
    resources()["orders"].get({"customer": "c", "id": "1"})
    assert gr.gcp_client("firestore", "(default)") is client and client.project == PROJECT


def test_messages_sent_during_an_invocation_carry_its_trace_context(world, shim):
    """docs/tracing.md: the running invocation's `traceparent` becomes a Pub/Sub attribute (Cloud
    Trace reads W3C `traceparent` natively); a handler's own value wins."""
    from _nimbus import trace
    core, gr, resources = shim
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    event = {"type": "topic", "messages": [{"id": "1", "body": "x", "attributes": {"traceparent": incoming}}]}
    value, token = trace.enter(event)
    try:
        assert value.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert event["messages"][0]["attributes"] == {}
        resources()["order-events"].publish("placed", {"kind": "placed"})
        resources()["refunds"].send("own", {"traceparent": incoming})
    finally:
        trace.leave(token)
    resources()["refunds"].send("after")
    (published,) = world.pull(world.topic)
    assert published["attributes"] == {"kind": "placed", "traceparent": value}
    by_body = {base64.b64decode(m["data"]): m for m in world.pull(world.queue_topic, n=2)}
    assert by_body[b"own"]["attributes"] == {"traceparent": incoming}
    assert not by_body[b"after"].get("attributes")
