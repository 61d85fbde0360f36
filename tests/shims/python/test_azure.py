"""Azure Functions shim (Python v2 model): adapters driven with the real `azure.functions` types
(the concrete classes the Python worker's converters build: queue.QueueMessage,
servicebus.ServiceBusMessage, timer.TimerRequest, blob.InputStream, EventGridEvent, HttpRequest)."""

import datetime
import json

import azure.functions as func
import azure.functions.queue as az_queue
import azure.functions.servicebus as az_servicebus
import azure.functions.timer as az_timer
import pytest

from conftest import build_package, config, in_process


class InvocationContext:
    """What the Azure worker passes as `context: func.Context` (the attributes the shim reads)."""

    invocation_id = "az-inv-1"
    function_name = "probe"


@pytest.fixture
def az(tmp_path, recorder):
    root = build_package(tmp_path / "pkg", "azure", config("azure"))
    with in_process(root):
        from _nimbus import azure as nimbus
        yield nimbus


def test_http(az, recorder):
    req = func.HttpRequest(
        method="POST", url="http://localhost:7071/api/orders/42?x=1&x=2&y=",
        headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7:51234"},
        params={"x": "2", "y": ""}, route_params={"id": "42"}, body=b'{"total": 3}')
    resp = az.http(req, "handlers/probe.py:handler", InvocationContext())
    assert isinstance(resp, func.HttpResponse)
    assert resp.status_code == 200 and resp.headers["x-handler"] == "probe"
    assert resp.mimetype == "application/json"
    out = json.loads(resp.get_body())
    assert out["event"] == {
        "type": "http", "method": "POST", "path": "/orders/42", "route": "/orders/{id}",
        "path_params": {"id": "42"}, "query": {"x": "1,2", "y": ""},
        "headers": {"content-type": "application/json", "x-forwarded-for": "203.0.113.7:51234"},
        "body": '{"total": 3}', "is_base64": False, "source_ip": "203.0.113.7"}
    assert out["context"]["request_id"] == "az-inv-1" and out["context"]["provider"] == "azure"
    assert out["context"]["resources"] == ["images", "order-events", "orders"]


def test_http_results(az):
    def call(path, body=b""):
        return az.http(func.HttpRequest(method="GET", url="http://localhost/api" + path, headers={}, body=body))
    r = call("/x/text")
    assert (r.status_code, r.get_body(), r.mimetype, r.charset) == (200, b"hello text", "text/plain", "utf-8")
    r = call("/x/bytes")
    assert (r.status_code, r.get_body(), r.mimetype) == (200, b"\x00\x01\xffbin", "application/octet-stream")
    r = call("/x/none")
    assert (r.status_code, r.get_body()) == (204, b"")
    r = call("/x/cookies")
    assert r.status_code == 201 and r.get_body() == b"made"
    assert r.headers.getlist("set-cookie") == ["a=1", "b=2"]
    with pytest.raises(RuntimeError, match="boom from handler"):
        call("/x/error")
    r = az.http(func.HttpRequest(method="PUT", url="http://localhost/api/raw", headers={}, body=b"\xff\xfe"))
    ev = json.loads(r.get_body())["event"]
    assert ev["is_base64"] is True and ev["body"] == "//4=" and ev["path"] == "/raw"


def test_http_resources(az):
    r = az.http(func.HttpRequest(method="GET", url="http://localhost/api/x/resources", headers={}, body=b""))
    out = json.loads(r.get_body())
    assert "'secrets' is not granted to function 'probe'" in out["not_granted"]["message"]
    assert "'payments' is not granted" in out["trigger_only"]["message"]
    # Azure has resource clients (test_azure_resources.py): the guard refuses a read on `write` access.
    assert "'write' access to table 'orders'" in out["no_client"]["message"]
    assert out["no_client"]["type"] == "ResourceAccessError"


def test_storage_queue(az, recorder):
    msg = az_queue.QueueMessage(id="q-1", body=b'{"order": 42}', dequeue_count=3)
    assert az.queue(msg, context=InvocationContext()) is None
    assert recorder.last()["event"] == {"type": "queue", "source": "payments", "messages": [
        {"id": "q-1", "body": '{"order": 42}', "attributes": {}, "receive_count": 3}]}
    from _nimbus import core
    with pytest.raises(core.BatchItemFailure, match="q-2"):
        az.queue(az_queue.QueueMessage(id="q-2", body="please fail"), resource="payments")


def _sb(mid, body, props=None, delivery=1):
    return az_servicebus.ServiceBusMessage(body=body.encode(), message_id=mid, application_properties=props or {},
                                  user_properties={}, delivery_count=delivery)


def test_service_bus_topic(az, recorder):
    az.service_bus(_sb("sb-1", "hello", {"kind": "created", "n": 2}), resource="order-events")
    assert recorder.last()["event"] == {"type": "topic", "source": "order-events", "messages": [
        {"id": "sb-1", "body": "hello", "attributes": {"kind": "created", "n": "2"}}]}
    az.service_bus([_sb("sb-2", "a"), _sb("sb-3", "b")], resource="order-events")
    assert [m["id"] for m in recorder.last()["event"]["messages"]] == ["sb-2", "sb-3"]
    from _nimbus import core
    with pytest.raises(core.BatchItemFailure):
        az.service_bus([_sb("sb-4", "ok"), _sb("sb-5", "fail")], resource="order-events")


def test_service_bus_queue(az, recorder):
    az.service_bus(_sb("sb-9", "work", delivery=4), resource="payments")
    assert recorder.last()["event"] == {"type": "queue", "source": "payments", "messages": [
        {"id": "sb-9", "body": "work", "attributes": {}, "receive_count": 4}]}


def test_timer(az, recorder):
    t = az_timer.TimerRequest(past_due=False, schedule_status={"Last": "2026-01-01T03:00:00", "Next": "2026-01-02T03:00:00"})
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    az.timer(t, schedule="nightly")
    ev = recorder.last()["event"]
    assert ev["type"] == "schedule" and ev["name"] == "nightly"
    at = datetime.datetime.strptime(ev["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    assert before <= at <= before + datetime.timedelta(seconds=5)
    az.timer(t)  # single schedule trigger: its name
    assert recorder.last()["event"]["name"] == "nightly"


def test_blob_trigger(az, recorder):
    stream = func.blob.InputStream(data=b"abc", name="images-container/uploads/a b.png", length=3,
                                   uri="http://127.0.0.1:10000/devstoreaccount1/images-container/uploads/a%20b.png")
    az.blob(stream)
    assert recorder.last()["event"] == {"type": "bucket", "bucket": "images", "key": "uploads/a b.png", "size": 3,
                                        "action": "created"}
    with pytest.raises(RuntimeError, match="bucket boom"):
        az.blob(func.blob.InputStream(data=b"", name="thumbs-container/boom.png", length=0))
    assert recorder.last()["event"]["bucket"] == "thumbs"


def _eg(event_type, subject, data):
    return func.EventGridEvent(id="eg-1", data=data, topic="/subscriptions/s/resourceGroups/rg/providers/"
                               "Microsoft.Storage/storageAccounts/acct", subject=subject, event_type=event_type,
                               event_time=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), data_version="")


def test_event_grid_blob_events(az, recorder):
    az.event_grid(_eg("Microsoft.Storage.BlobCreated", "/blobServices/default/containers/images-container/blobs/u/x.png",
                      {"api": "PutBlob", "contentLength": 524288, "url": "https://acct.blob.core.windows.net/x"}))
    assert recorder.last()["event"] == {"type": "bucket", "bucket": "images", "key": "u/x.png", "size": 524288,
                                        "action": "created"}
    az.event_grid(_eg("Microsoft.Storage.BlobDeleted", "/blobServices/default/containers/images-container/blobs/u/x.png",
                      {"api": "DeleteBlob"}))
    assert recorder.last()["event"] == {"type": "bucket", "bucket": "images", "key": "u/x.png", "size": None,
                                        "action": "deleted"}
    from _nimbus import core
    with pytest.raises(core.EventError, match="BlobRenamed"):
        az.event_grid(_eg("Microsoft.Storage.BlobRenamed", "/x", {}))


def _change_feed():
    from conftest import ROOT

    return json.loads((ROOT / "tests" / "shims" / "events" / "azure" / "cosmos-change-feed.json").read_text())


EXPECTED_TABLE_EVENTS = [
    {"type": "table", "table": "orders", "action": "insert", "key": {"id": "o1"}, "old": None,
     "new": {"id": "o1", "status": "placed", "total": 12.5}},
    {"type": "table", "table": "orders", "action": "modify", "key": {"id": "o2"},
     "old": {"id": "o2", "status": "placed", "total": 3}, "new": {"id": "o2", "status": "paid", "total": 3}},
    {"type": "table", "table": "orders", "action": "remove", "key": {"id": "o3"},
     "old": {"id": "o3", "status": "cancelled", "total": 7}, "new": None},
    {"type": "table", "table": "orders", "action": "modify", "key": {"id": "o4"}, "old": None,
     "new": {"id": "o4", "status": "imported"}},
]


def test_cosmos_change_feed_documents_become_table_events_and_tombstones_removes(tmp_path, recorder):
    """The Cosmos DB trigger's DocumentList (azure-functions' own type, as the worker builds it
    from the host's JSON): one handler call per document, in order; a tombstone is `remove`."""
    cfg = config("azure")
    cfg["triggers"] = [{"type": "table", "resource": "orders", "events": ["insert", "modify", "remove"]}]
    root = build_package(tmp_path / "pkg", "azure", cfg)
    docs = func.DocumentList([func.Document.from_dict(d) for d in _change_feed()])
    with in_process(root):
        from _nimbus import azure as nimbus

        nimbus.cosmos(docs, None, InvocationContext(), resource="orders")
    got = [r["event"] for r in recorder.all()]
    assert got == EXPECTED_TABLE_EVENTS
    assert all(r["context"]["request_id"] == "az-inv-1" for r in recorder.all())


def test_cosmos_events_keep_only_what_the_trigger_asks_for(tmp_path, recorder):
    cfg = config("azure")
    cfg["triggers"] = [{"type": "table", "resource": "orders", "events": ["remove"]}]
    root = build_package(tmp_path / "pkg", "azure", cfg)
    with in_process(root):
        from _nimbus import azure as nimbus
        from _nimbus import core

        events = nimbus.cosmos_events(func.DocumentList([func.Document.from_dict(d) for d in _change_feed()]),
                                      cfg, "orders")
        assert [e["action"] for e in events] == ["remove"]
        with pytest.raises(core.EventError, match="must be an object"):
            nimbus.cosmos_events(["[1]"], cfg, "orders")
