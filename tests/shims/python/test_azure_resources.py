"""Azure resource clients (Python, _nimbus/azure_resources.py) against a real Azurite and a real
Cosmos DB API server.

Queues and buckets run against Azurite (blob, queue), tables against ``@vercel/cosmosdb-server``
(npm, started through tests/support/cosmos_server.js), through Microsoft's libraries, as inside
Azure Functions; every effect is checked with the test's own Azure clients. Service Bus
has no emulator here: the topic client is checked against a recording stand-in of
``ServiceBusClient`` (only what nimbus sends, not Service Bus itself). Ends with a handler run
through the Azure HTTP adapter with ``azure.functions.HttpRequest``, using its resources.
"""

import base64
import json
import os
import pathlib
import time
import uuid

import pytest

from conftest import ROOT, Server, build_package, config, free_port, in_process

from azure.cosmos import CosmosClient, PartitionKey
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def node_modules() -> pathlib.Path:
    return pathlib.Path(os.environ.get("NIMBUS_TEST_NODE_MODULES") or ROOT / ".tools" / "node" / "node_modules")


def azurite_bin() -> pathlib.Path:
    path = node_modules() / ".bin" / "azurite"
    if not path.exists():
        pytest.fail("azurite is not installed at %s: run scripts/test (tests/package.json)" % path)
    return path


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    ports = {s: free_port() for s in ("blob", "queue")}
    work = tmp_path_factory.mktemp("azurite")
    argv = [str(azurite_bin()), "--blobHost", "127.0.0.1", "--blobPort", str(ports["blob"]),
            "--queueHost", "127.0.0.1", "--queuePort", str(ports["queue"]),
            "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose"
            ]
    server = Server(argv, cwd=work, env=dict(os.environ), port=ports["queue"], log_path=work / "azurite.log")
    conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;" % (ACCOUNT, KEY)
            + "".join("%sEndpoint=http://127.0.0.1:%d/%s;" % (s.capitalize(), p, ACCOUNT) for s, p in ports.items()))
    deadline = time.monotonic() + 30
    while True:  # both services answer
        try:
            BlobServiceClient.from_connection_string(conn).get_service_properties()
            QueueServiceClient.from_connection_string(conn).get_service_properties()
            break
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("azurite did not answer:\n" + server.log())
            time.sleep(0.2)
    try:
        yield conn
    finally:
        server.stop()


# The key a client addresses the Cosmos DB API server with (it checks none; the SDK needs one).
COSMOS_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


@pytest.fixture(scope="module")
def cosmos(tmp_path_factory):
    """A Cosmos DB for NoSQL API server on 127.0.0.1: its connection string."""
    if not (node_modules() / "@vercel" / "cosmosdb-server").exists():
        pytest.fail("@vercel/cosmosdb-server is not installed in %s: run scripts/test (tests/package.json)"
                    % node_modules())
    work = tmp_path_factory.mktemp("cosmos")
    port = free_port()
    env = dict(os.environ, NIMBUS_TEST_NODE_MODULES=str(node_modules()))
    server = Server(["node", str(ROOT / "tests" / "support" / "cosmos_server.js"), str(port), str(work)],
                    cwd=work, env=env, port=port, log_path=work / "cosmos.log")
    try:
        yield "AccountEndpoint=https://127.0.0.1:%d/;AccountKey=%s;" % (port, COSMOS_KEY)
    finally:
        server.stop()


class World:
    """Azure resources of one test, the test's own clients, and the environment of a function."""

    def __init__(self, conn, cosmos):
        tag = uuid.uuid4().hex[:8]
        self.blob = BlobServiceClient.from_connection_string(conn)
        self.queues = QueueServiceClient.from_connection_string(conn)
        self.container, self.queue, self.table, self.database = (
            "images-" + tag, "payments-" + tag, "orders", "shop-" + tag)
        self.blob.create_container(self.container)
        self.queues.create_queue(self.queue)
        db = CosmosClient.from_connection_string(cosmos).create_database(self.database)
        # As the template creates it: partition key /pk, TTL on without a default.
        self.orders = db.create_container(self.table, PartitionKey(path="/pk"), default_ttl=-1)
        self.env = {
            "NIMBUS_AZURE_STORAGE_CONNECTION_STRING": conn,
            "NIMBUS_AZURE_COSMOS_CONNECTION_STRING": cosmos,
            "NIMBUS_AZURE_COSMOS_DATABASE": self.database,
            "NIMBUS_RESOURCE_IMAGES_NAME": self.container,
            "NIMBUS_RESOURCE_PAYMENTS_NAME": self.queue,
            "NIMBUS_RESOURCE_ORDERS_NAME": self.table,
        }

    def document(self, doc_id, pk):
        """The stored document, or None."""
        from azure.cosmos.exceptions import CosmosResourceNotFoundError

        try:
            return self.orders.read_item(doc_id, partition_key=pk)
        except CosmosResourceNotFoundError:
            return None


@pytest.fixture
def world(azurite, cosmos):
    return World(azurite, cosmos)


@pytest.fixture
def clients(tmp_path):
    root = build_package(tmp_path / "pkg", "azure", config("azure"))
    with in_process(root):
        from _nimbus import azure_resources

        azure_resources.reset_clients()
        yield azure_resources
        azure_resources.reset_clients()


def spec(kind, key=None, access="read_write"):
    s = {"type": kind, "access": access, "native": {}}
    if key:
        s["key"] = key
    return s


def test_table_round_trips_json_items_by_partition_and_sort_key(world, clients):
    t = clients.make_client("orders", spec("table", ["customer", "id"]), environ=world.env)
    item = {"customer": "c/1#?", "id": 7, "total": 12.5, "tags": ["a", "b"], "ship": {"to": "x"}, "paid": None}
    t.put(item)
    assert t.get({"customer": "c/1#?", "id": 7}) == item
    assert t.get({"customer": "c/1#?", "id": 8}) is None
    t.put({"customer": "c/1#?", "id": 8, "total": 1})
    t.put({"customer": "other", "id": 1})
    assert [i["id"] for i in t.query({"customer": "c/1#?"})] == [7, 8]
    assert len(t.query({"customer": "c/1#?"}, limit=1)) == 1
    assert len(t.scan()) == 3
    # What Cosmos DB holds: forbidden key characters percent-encoded, the item as JSON.
    doc = world.document("7", "c%2F1%23%3F")
    assert doc["item"] == item and doc["key"] == {"customer": "c/1#?", "id": 7}
    assert (doc["op"], doc["old"]) == ("insert", None)
    changed = dict(item, total=13)
    t.put(changed)
    doc = world.document("7", "c%2F1%23%3F")
    assert (doc["op"], doc["old"], doc["item"]) == ("modify", item, changed)
    with pytest.raises(ValueError, match="key field"):
        t.get({"id": 7})


def test_table_delete_writes_a_tombstone_that_reads_never_return(world, clients):
    t = clients.make_client("orders", spec("table", ["id"]), environ=world.env)
    t.put({"id": "a", "status": "new"})
    t.put({"id": "b", "status": "new"})
    t.delete({"id": "a"})
    # The change feed has no deletes: the item stays as a soft-delete marker with a short TTL.
    doc = world.document("a", "a")
    assert doc["deleted"] is True and doc["ttl"] == 3600
    assert (doc["op"], doc["item"], doc["old"], doc["key"]) == ("remove", None, {"id": "a", "status": "new"}, {"id": "a"})
    assert t.get({"id": "a"}) is None
    assert t.query({"id": "a"}) == []
    assert t.scan() == [{"id": "b", "status": "new"}]
    t.delete({"id": "a"})  # deleting what is gone succeeds and writes nothing
    assert world.document("a", "a")["_etag"] == doc["_etag"]
    t.delete({"id": "never"})
    assert world.document("never", "never") is None
    # A put over a tombstone is an insert again.
    t.put({"id": "a", "status": "again"})
    doc = world.document("a", "a")
    assert (doc["op"], doc["old"], doc.get("deleted")) == ("insert", None, None)
    assert t.get({"id": "a"}) == {"id": "a", "status": "again"}
    # An empty key text is `%`, which percent-encoding never produces.
    t.put({"id": "", "status": "empty"})
    assert world.document("%", "%")["item"] == {"id": "", "status": "empty"}
    assert t.get({"id": ""}) == {"id": "", "status": "empty"}


def test_table_errors_are_neutral(world, clients):
    env = dict(world.env, NIMBUS_RESOURCE_ORDERS_NAME="missing" + uuid.uuid4().hex[:6])
    t = clients.make_client("orders", spec("table", ["id"]), environ=env)
    with pytest.raises(clients.ResourceError) as e:
        t.put({"id": "1"})
    assert e.value.type == "NotFound" and e.value.op == "put"
    unset = clients.make_client("orders", spec("table", ["id"]), environ={"NIMBUS_AZURE_COSMOS_CONNECTION_STRING": world.env["NIMBUS_AZURE_COSMOS_CONNECTION_STRING"]})
    with pytest.raises(clients.ResourceError) as e:
        unset.get({"id": "1"})
    assert e.value.type == "NotConfigured"
    assert "NIMBUS_AZURE_COSMOS_DATABASE" in str(e.value) or "NIMBUS_RESOURCE_ORDERS_NAME" in str(e.value)
    no_account = clients.make_client("orders", spec("table", ["id"]), environ={"NIMBUS_AZURE_COSMOS_DATABASE": "d"})
    with pytest.raises(clients.ResourceError) as e:
        no_account.get({"id": "1"})
    assert e.value.type == "NotConfigured" and "NIMBUS_AZURE_COSMOS_ENDPOINT" in str(e.value)


def test_queue_send_is_base64_with_an_envelope_for_attributes(world, clients):
    q = clients.make_client("payments", spec("queue", access="send"), environ=world.env)
    plain = q.send({"order": 42})
    with_attrs = q.send("hi", attributes={"kind": "card"})
    assert plain and with_attrs and plain != with_attrs
    got = world.queues.get_queue_client(world.queue).receive_messages(messages_per_page=10)
    texts = {m.id: base64.b64decode(m.content).decode() for m in got}
    assert texts[plain] == '{"order":42}'
    assert json.loads(texts[with_attrs]) == {"nimbus": 1, "body": "hi", "attributes": {"kind": "card"}}
    # The queue adapter turns the envelope back into body and attributes.
    import azure.functions.queue as az_queue
    from _nimbus import azure as adapter

    msg = az_queue.QueueMessage(id=with_attrs, body=texts[with_attrs].encode(), dequeue_count=1)
    event = adapter.queue_event(msg, config("azure"), "payments")
    assert event["messages"][0]["body"] == "hi"
    assert event["messages"][0]["attributes"] == {"kind": "card"}
    delayed = q.send("later", delay_seconds=30)
    assert delayed not in {m.id for m in world.queues.get_queue_client(world.queue).peek_messages(max_messages=32)}


def test_bucket_put_get_list_delete(world, clients):
    b = clients.make_client("images", spec("bucket"), environ=world.env)
    b.put("uploads/a b.png", b"\x89PNG", content_type="image/png")
    b.put("uploads/c.txt", "text")
    b.put("other.txt", "x")
    assert b.get("uploads/a b.png") == b"\x89PNG"
    assert b.get("nope") is None
    assert b.list("uploads/") == ["uploads/a b.png", "uploads/c.txt"]
    assert len(b.list()) == 3
    props = world.blob.get_blob_client(world.container, "uploads/a b.png").get_blob_properties()
    assert props.content_settings.content_type == "image/png"
    b.delete("uploads/c.txt")
    b.delete("uploads/c.txt")
    assert [x.name for x in world.blob.get_container_client(world.container).list_blobs()] == [
        "other.txt", "uploads/a b.png"]


class RecordingBus:
    """Stands in for azure.servicebus.ServiceBusClient: records what a sender would send."""

    def __init__(self):
        self.sent = []

    def get_topic_sender(self, topic_name):
        bus = self

        class Sender:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def send_messages(self, message):
                bus.sent.append((topic_name, message))

        return Sender()


def test_topic_publish_sends_a_service_bus_message(clients):
    bus = RecordingBus()
    env = {"NIMBUS_RESOURCE_ORDER_EVENTS_NAME": "order-events"}
    t = clients.make_client("order-events", spec("topic", access="publish"), environ=env, client=bus)
    mid = t.publish({"id": 1}, attributes={"type": "placed"})
    (topic, msg), = bus.sent
    assert topic == "order-events" and msg.message_id == mid
    assert b"".join(msg.body) == b'{"id":1}'
    assert msg.application_properties == {"type": "placed"}


def test_a_handler_uses_its_resources_through_the_http_adapter(world, tmp_path, monkeypatch):
    handler = tmp_path / "handlers"
    cfg = config("azure", handler="handlers/orders.py:handler")
    cfg["resources"] = {"orders": spec("table", ["id"], "read_write"), "images": spec("bucket", access="write")}
    cfg["triggers"] = [{"type": "http", "method": "POST", "path": "/orders/{id}"}]
    cfg["azure"] = {"route_prefix": ""}
    root = build_package(tmp_path / "pkg", "azure", cfg)
    (root / "handlers" / "orders.py").write_text(
        "def handler(event, context):\n"
        "    orders = context.resources['orders']\n"
        "    orders.put({'id': event['path_params']['id'], 'qty': 2})\n"
        "    context.resources['images'].put('receipts/' + event['path_params']['id'], event['body'])\n"
        "    return {'status': 201, 'body': orders.get({'id': event['path_params']['id']})}\n",
        encoding="utf-8")
    for k, v in world.env.items():
        monkeypatch.setenv(k, v)
    import azure.functions as func

    with in_process(root):
        from _nimbus import azure as adapter

        req = func.HttpRequest(method="POST", url="https://app.azurewebsites.net/orders/42", headers={},
                               route_params={"id": "42"}, body=b"paid")
        res = adapter.http(req)
        assert res.status_code == 201
        assert json.loads(res.get_body()) == {"id": "42", "qty": 2}
    assert world.document("42", "42")["item"] == {"id": "42", "qty": 2}
    assert world.blob.get_blob_client(world.container, "receipts/42").download_blob().readall() == b"paid"


def test_an_existing_resource_is_reached_at_its_own_endpoint(clients):
    """A resource that already exists (``existing.azure``) may be in an account or namespace of its
    own: ``NIMBUS_RESOURCE_<R>_ENDPOINT`` replaces the deployment's endpoint for that resource only,
    and each endpoint gets a client of its own."""
    env = {
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000c1",
        "NIMBUS_AZURE_BLOB_ENDPOINT": "https://shopdata1234.blob.core.windows.net/",
        "NIMBUS_AZURE_QUEUE_ENDPOINT": "https://shopdata1234.queue.core.windows.net/",
        "NIMBUS_AZURE_SERVICEBUS_NAMESPACE": "shop-dev-1234.servicebus.windows.net",
        "NIMBUS_RESOURCE_IMAGES_NAME": "images",
        "NIMBUS_RESOURCE_REPORTS_NAME": "reports",
        "NIMBUS_RESOURCE_REPORTS_ENDPOINT": "https://finance.blob.core.windows.net/",
        "NIMBUS_RESOURCE_JOBS_NAME": "jobs",
        "NIMBUS_RESOURCE_JOBS_ENDPOINT": "https://finance.queue.core.windows.net/",
        "NIMBUS_RESOURCE_EVENTS_NAME": "events",
        "NIMBUS_RESOURCE_EVENTS_ENDPOINT": "finance.servicebus.windows.net",
    }
    images = clients.make_client("images", spec("bucket"), environ=env)._svc("get")
    reports = clients.make_client("reports", spec("bucket"), environ=env)._svc("get")
    jobs = clients.make_client("jobs", spec("queue", access="send"), environ=env)._svc("send")
    events = clients.make_client("events", spec("topic", access="publish"), environ=env)._svc("publish")
    assert images.account_name == "shopdata1234"
    assert reports.account_name == "finance"
    assert jobs.account_name == "finance"
    assert events.fully_qualified_namespace == "finance.servicebus.windows.net"
    # The connection string of tests and local runs still wins (Azurite holds every container).
    env["NIMBUS_AZURE_STORAGE_CONNECTION_STRING"] = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + KEY
        + ";BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;")
    assert clients.make_client("reports", spec("bucket"), environ=env)._svc("get").account_name == "devstoreaccount1"


def test_an_existing_table_is_reached_in_its_own_account_and_database(world, clients, cosmos):
    """An existing Cosmos DB container (``existing.azure``) is in its owner's account and
    database: ``NIMBUS_RESOURCE_<R>_ENDPOINT`` replaces the deployment's account endpoint and
    ``NIMBUS_RESOURCE_<R>_DATABASE`` its database, for that table only."""
    env = {
        "NIMBUS_AZURE_COSMOS_ENDPOINT": "https://shop-dev-1234.documents.azure.com:443/",
        "NIMBUS_RESOURCE_USERS_ENDPOINT": "https://acmedocs.documents.azure.com:443/",
    }
    own = clients.with_resource_endpoint("cosmos", "users", env)
    assert own["NIMBUS_AZURE_COSMOS_ENDPOINT"] == "https://acmedocs.documents.azure.com:443/"
    assert clients.with_resource_endpoint("cosmos", "orders", env) is env
    # Against the Cosmos DB API server: the owner's database `app-<tag>`, beside the deployment's.
    owner_db = "app-" + uuid.uuid4().hex[:8]
    users = CosmosClient.from_connection_string(cosmos).create_database(owner_db).create_container(
        "users", PartitionKey(path="/pk"), default_ttl=-1)
    env = dict(world.env, NIMBUS_RESOURCE_USERS_NAME="users", NIMBUS_RESOURCE_USERS_DATABASE=owner_db)
    t = clients.make_client("users", spec("table", ["id"]), environ=env)
    t.put({"id": "u1", "name": "Ada"})
    assert t.get({"id": "u1"}) == {"id": "u1", "name": "Ada"}
    assert users.read_item("u1", partition_key="u1")["item"] == {"id": "u1", "name": "Ada"}
    # Nothing went to the deployment's database.
    from azure.cosmos.exceptions import CosmosResourceNotFoundError

    with pytest.raises(CosmosResourceNotFoundError):
        CosmosClient.from_connection_string(cosmos).get_database_client(world.database) \
            .get_container_client("users").read_item("u1", partition_key="u1")


def test_messages_sent_during_an_invocation_carry_its_trace_context(world, clients):
    """docs/tracing.md: a Storage queue message carries the running invocation's `traceparent` in
    its attribute envelope, read back by the queue adapter and continued by the next invocation;
    a Service Bus message carries it as an application property."""
    from _nimbus import azure as adapter
    from _nimbus import trace
    import azure.functions.queue as az_queue

    q = clients.make_client("payments", spec("queue", access="send"), environ=world.env)
    bus = RecordingBus()
    t = clients.make_client("order-events", spec("topic", access="publish"),
                            environ={"NIMBUS_RESOURCE_ORDER_EVENTS_NAME": "order-events"}, client=bus)
    value, token = trace.enter({"type": "schedule"})
    try:
        mid = q.send("hi")
        t.publish("placed", attributes={"type": "placed"})
    finally:
        trace.leave(token)
    (_, msg), = bus.sent
    assert msg.application_properties == {"type": "placed", "traceparent": value}
    got = world.queues.get_queue_client(world.queue).receive_messages(messages_per_page=10)
    text = {m.id: base64.b64decode(m.content).decode() for m in got}[mid]
    assert json.loads(text) == {"nimbus": 1, "body": "hi", "attributes": {"traceparent": value}}
    event = adapter.queue_event(az_queue.QueueMessage(id=mid, body=text.encode(), dequeue_count=1),
                                config("azure"), "payments")
    child, token = trace.enter(event)
    trace.leave(token)
    assert event["messages"][0]["attributes"] == {}
    assert child.split("-")[1] == value.split("-")[1] and child != value
