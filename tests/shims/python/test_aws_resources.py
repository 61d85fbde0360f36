"""AWS resource clients (Python, _nimbus/aws_resources.py) against a real moto_server.

Every op of every client runs against moto through boto3 (as inside Lambda); its effect is checked
with the test's own boto3 calls. Ends with a run through the Lambda entry point `_nimbus_aws.handler`.
"""

import json
import os
import time
import uuid

import pytest

from conftest import VENV_BIN, Server, build_package, config, fixture, free_port, in_process

import boto3  # noqa: E402  (tests/requirements.txt; a missing one fails, never skips)

REGION = "us-east-1"
CUSTOMER_KEY = ["customer", "id"]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    port = free_port()
    env = dict(os.environ)
    server = Server([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                    cwd=tmp_path_factory.mktemp("moto"), env=env, port=port,
                    log_path=tmp_path_factory.mktemp("moto-log") / "moto.log")
    try:
        deadline = time.monotonic() + 30
        while True:  # listening is not answering: wait for a real reply
            try:
                if server.request("POST", "/moto-api/reset", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("moto_server did not answer:\n" + server.log())
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


class World:
    """What one test created in moto, and boto3 clients of the test's own to check effects."""

    def __init__(self, endpoint):
        kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        self.ddb = boto3.client("dynamodb", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.sns = boto3.client("sns", **kw)
        self.s3 = boto3.client("s3", **kw)
        tag = uuid.uuid4().hex[:8]
        self.table = "orders-" + tag
        self.ddb.create_table(TableName=self.table, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                                    {"AttributeName": "id", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                                         {"AttributeName": "id", "KeyType": "RANGE"}])
        self.queue_url = self.sqs.create_queue(QueueName="refunds-" + tag)["QueueUrl"]
        self.topic_arn = self.sns.create_topic(Name="order-events-" + tag)["TopicArn"]
        self.bucket = "images-" + tag
        self.s3.create_bucket(Bucket=self.bucket)

    def env(self):
        return {"NIMBUS_RESOURCE_ORDERS_NAME": self.table,
                "NIMBUS_RESOURCE_REFUNDS_URL": self.queue_url,
                "NIMBUS_RESOURCE_ORDER_EVENTS_ARN": self.topic_arn,
                "NIMBUS_RESOURCE_IMAGES_NAME": self.bucket}

    def receive(self, queue_url, n=1, wait=5):
        got, deadline = [], time.monotonic() + wait
        while len(got) < n and time.monotonic() < deadline:
            out = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           MessageAttributeNames=["All"])
            got.extend(out.get("Messages") or [])
        return got


def _resources_config(access=None):
    access = access or {}
    return {
        "orders": {"type": "table", "access": access.get("orders", "read_write"), "key": CUSTOMER_KEY, "native": {}},
        "refunds": {"type": "queue", "access": "send", "native": {}},
        "order-events": {"type": "topic", "access": "publish", "native": {}},
        "images": {"type": "bucket", "access": access.get("images", "read_write"), "native": {}},
    }


@pytest.fixture
def world(moto, monkeypatch, tmp_path):
    endpoint = "http://127.0.0.1:%d" % moto.port
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    w = World(endpoint)
    for k, v in w.env().items():
        monkeypatch.setenv(k, v)
    return w


@pytest.fixture
def shim(tmp_path):
    """The AWS shim's modules from a built package: (core, aws_resources, make_resources)."""
    cfg = config("aws", resources=_resources_config())
    root = build_package(tmp_path / "pkg", "aws", cfg)
    with in_process(root):
        from _nimbus import aws, aws_resources, core  # noqa: F401 - aws registers the factory

        def resources(access=None, **overrides):
            c = dict(cfg, resources=_resources_config(access), **overrides)
            return core.Resources(c, "aws")
        yield core, aws_resources, resources


class Paging:
    """A boto3 client whose list/scan/query pages are 2 long: exercises the clients' paging."""

    def __init__(self, client, param):
        self._client, self._param = client, param

    def __getattr__(self, name):
        fn = getattr(self._client, name)
        if name not in ("list_objects_v2", "scan", "query"):
            return fn

        def paged(**kw):
            kw.setdefault(self._param, 2)
            return fn(**kw)
        return paged


# --------------------------------------------------------------------------- table


def test_table_put_get_delete(world, shim):
    core, ar, resources = shim
    orders = resources()["orders"]
    item = {"customer": "c1", "id": "o1", "total": 12, "price": 3.25, "paid": True, "note": None,
            "lines": [{"sku": "a", "qty": 2}], "meta": {"gift": False, "tags": ["x", "y"]}}
    assert orders.put(item) is None
    raw = world.ddb.get_item(TableName=world.table, Key={"customer": {"S": "c1"}, "id": {"S": "o1"}})["Item"]
    assert raw["total"] == {"N": "12"} and raw["price"] == {"N": "3.25"} and raw["paid"] == {"BOOL": True}
    assert raw["note"] == {"NULL": True} and raw["lines"]["L"][0]["M"]["qty"] == {"N": "2"}
    got = orders.get({"customer": "c1", "id": "o1"})
    assert got == item
    assert type(got["total"]) is int and type(got["price"]) is float and type(got["lines"][0]["qty"]) is int
    assert orders.get({"customer": "c1", "id": "nope"}) is None
    assert orders.delete({"customer": "c1", "id": "o1"}) is None
    assert "Item" not in world.ddb.get_item(TableName=world.table, Key={"customer": {"S": "c1"}, "id": {"S": "o1"}})
    assert orders.get({"customer": "c1", "id": "o1"}) is None


def test_table_query_and_scan(world, shim):
    core, ar, resources = shim
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
    # the same ops over pages of 2 (LastEvaluatedKey / ExclusiveStartKey)
    paged = ar.make_client("orders", _resources_config()["orders"], client=Paging(ar.aws_client("dynamodb"), "Limit"))
    assert [i["id"] for i in paged.query({"customer": "c1"})] == ["o0", "o1", "o2", "o3", "o4"]
    assert len(paged.scan()) == 6 and len(paged.scan(limit=3)) == 3
    assert world.ddb.scan(TableName=world.table)["Count"] == 6


def test_table_validation(world, shim):
    core, ar, resources = shim
    orders = resources()["orders"]
    with pytest.raises(TypeError, match="table key must be a dict"):
        orders.get("c1")
    with pytest.raises(ValueError, match="lacks the table's key field"):
        orders.put({"customer": "c1"})
    with pytest.raises(ValueError, match="lacks the table's key field"):
        orders.query({"id": "o1"})
    with pytest.raises(ValueError, match="limit must be a positive int"):
        orders.scan(limit=0)
    with pytest.raises(ValueError, match="cannot store"):
        orders.put({"customer": "c1", "id": "o1", "x": float("nan")})
    with pytest.raises(core.ResourceAccessError, match="does not allow put"):
        resources({"orders": "read"})["orders"].put({"customer": "c1", "id": "o1"})


# --------------------------------------------------------------------------- queue


def test_queue_send(world, shim):
    core, ar, resources = shim
    refunds = resources()["refunds"]
    mid = refunds.send({"order": "o1", "amount": 5}, {"reason": "damaged", "source": "web"})
    assert isinstance(mid, str) and mid
    mid2 = refunds.send("plain text", delay_seconds=1)
    msgs = world.receive(world.queue_url, n=2, wait=10)
    by_id = {m["MessageId"]: m for m in msgs}
    assert set(by_id) == {mid, mid2}
    assert json.loads(by_id[mid]["Body"]) == {"order": "o1", "amount": 5}
    assert by_id[mid]["MessageAttributes"] == {
        "reason": {"DataType": "String", "StringValue": "damaged"},
        "source": {"DataType": "String", "StringValue": "web"}}
    assert by_id[mid2]["Body"] == "plain text" and "MessageAttributes" not in by_id[mid2]
    with pytest.raises(TypeError, match="attribute 'n' must be a str"):
        refunds.send("x", {"n": 1})
    with pytest.raises(ValueError, match="delay_seconds must be >= 0"):
        refunds.send("x", delay_seconds=-1)
    with pytest.raises(TypeError, match="body must be a str"):
        refunds.send(42)


# --------------------------------------------------------------------------- topic


def test_topic_publish_reaches_subscribed_queue(world, shim):
    core, ar, resources = shim
    sink = world.sqs.create_queue(QueueName="sink-" + uuid.uuid4().hex[:8])["QueueUrl"]
    sink_arn = world.sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    world.sns.subscribe(TopicArn=world.topic_arn, Protocol="sqs", Endpoint=sink_arn)
    events = resources()["order-events"]
    mid = events.publish({"order": "o1", "status": "placed"}, {"kind": "placed"})
    assert isinstance(mid, str) and mid
    msgs = world.receive(sink, n=1)
    assert len(msgs) == 1
    envelope = json.loads(msgs[0]["Body"])
    assert envelope["MessageId"] == mid and envelope["TopicArn"] == world.topic_arn
    assert json.loads(envelope["Message"]) == {"order": "o1", "status": "placed"}
    assert envelope["MessageAttributes"] == {"kind": {"Type": "String", "Value": "placed"}}
    assert events.publish("second") != mid


# --------------------------------------------------------------------------- bucket


def test_bucket_ops(world, shim):
    core, ar, resources = shim
    images = resources()["images"]
    png = bytes(range(256)) * 3
    assert images.put("a/one.png", png, content_type="image/png") is None
    images.put("a/two.txt", "héllo")
    images.put("b/three.txt", b"3")
    obj = world.s3.get_object(Bucket=world.bucket, Key="a/one.png")
    assert obj["Body"].read() == png and obj["ContentType"] == "image/png"
    assert world.s3.get_object(Bucket=world.bucket, Key="a/two.txt")["Body"].read() == "héllo".encode()
    assert images.get("a/one.png") == png
    assert images.get("a/two.txt") == "héllo".encode()
    assert images.get("missing") is None
    assert images.list() == ["a/one.png", "a/two.txt", "b/three.txt"]
    assert images.list("a/") == ["a/one.png", "a/two.txt"]
    assert images.list("zzz") == []
    paged = ar.make_client("images", _resources_config()["images"], client=Paging(ar.aws_client("s3"), "MaxKeys"))
    for i in range(5):
        images.put("p/%d" % i, b"x")
    assert paged.list("p/") == ["p/0", "p/1", "p/2", "p/3", "p/4"] and len(paged.list()) == 8
    assert images.delete("a/one.png") is None
    assert images.get("a/one.png") is None
    assert "a/one.png" not in [o["Key"] for o in world.s3.list_objects_v2(Bucket=world.bucket)["Contents"]]
    with pytest.raises(TypeError, match="bucket data must be bytes or str"):
        images.put("k", 42)
    with pytest.raises(ValueError, match="bucket key must be a non-empty str"):
        images.get("")
    with pytest.raises(core.ResourceAccessError, match="does not allow get"):
        resources({"images": "write"})["images"].get("a/two.txt")


# --------------------------------------------------------------------------- errors, configuration, reuse


def test_aws_errors_become_resource_errors(world, shim, monkeypatch):
    core, ar, resources = shim
    monkeypatch.setenv("NIMBUS_RESOURCE_ORDERS_NAME", "no-such-table")
    monkeypatch.setenv("NIMBUS_RESOURCE_REFUNDS_URL", world.queue_url + "-gone")
    monkeypatch.setenv("NIMBUS_RESOURCE_IMAGES_NAME", "no-such-bucket-" + uuid.uuid4().hex[:8])
    monkeypatch.setenv("NIMBUS_RESOURCE_ORDER_EVENTS_ARN", world.topic_arn + "-gone")
    res = resources()
    with pytest.raises(ar.ResourceError) as e:
        res["orders"].get({"customer": "c1", "id": "o1"})
    assert e.value.type == "NotFound" and e.value.code == "ResourceNotFoundException"
    assert e.value.resource == "orders" and e.value.op == "get" and e.value.message
    assert isinstance(e.value, core.NimbusError)
    with pytest.raises(ar.ResourceError) as e:
        res["refunds"].send("x")
    assert e.value.type == "NotFound" and e.value.op == "send"
    with pytest.raises(ar.ResourceError) as e:
        res["images"].get("k")
    assert e.value.type == "NotFound" and e.value.code == "NoSuchBucket" and "bucket" in e.value.message.lower()
    with pytest.raises(ar.ResourceError) as e:
        res["order-events"].publish("x")
    assert e.value.type == "NotFound" and e.value.op == "publish"
    # DynamoDB rejects an item whose key has the wrong type: BadRequest with AWS's message
    monkeypatch.setenv("NIMBUS_RESOURCE_ORDERS_NAME", world.table)
    with pytest.raises(ar.ResourceError) as e:
        resources()["orders"].put({"customer": 1, "id": "o1"})
    assert e.value.type == "BadRequest" and e.value.code == "ValidationException" and e.value.message
    assert ar.error_type("AccessDeniedException", 400) == "AccessDenied"
    assert ar.error_type("AuthorizationError", 403) == "AccessDenied"
    assert ar.error_type("Whatever", 500) == "Internal" and ar.error_type("Whatever", 429) == "Throttled"


def test_missing_env_var_is_a_clear_error(world, shim, monkeypatch):
    core, ar, resources = shim
    monkeypatch.delenv("NIMBUS_RESOURCE_ORDER_EVENTS_ARN")
    monkeypatch.delenv("NIMBUS_RESOURCE_REFUNDS_URL")
    res = resources()
    with pytest.raises(ar.ResourceError, match="NIMBUS_RESOURCE_ORDER_EVENTS_ARN is not set") as e:
        res["order-events"].publish("x")
    assert e.value.type == "NotConfigured" and e.value.resource == "order-events"
    with pytest.raises(ar.ResourceError, match="NIMBUS_RESOURCE_REFUNDS_URL is not set"):
        res["refunds"].send("x")
    assert ar.env_var("order-events", "ARN") == "NIMBUS_RESOURCE_ORDER_EVENTS_ARN"
    # a name in function.json's native block is the fallback
    spec = dict(_resources_config()["refunds"], native={"url": world.queue_url})
    assert ar.make_client("refunds", spec).send("via native")
    assert [m["Body"] for m in world.receive(world.queue_url)] == ["via native"]


def test_clients_created_lazily_once(world, shim):
    core, ar, resources = shim
    assert ar._CLIENTS == {}
    res = resources()
    res["orders"].put({"customer": "c", "id": "1"})
    client = ar.aws_client("dynamodb")
    assert list(ar._CLIENTS) == ["dynamodb"]
    resources()["orders"].get({"customer": "c", "id": "1"})
    assert ar.aws_client("dynamodb") is client and client.meta.region_name == REGION
    assert client.meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"]


# --------------------------------------------------------------------------- end to end through the Lambda entry point

HANDLER = '''
def handler(event, context):
    orders = context.resources["orders"]
    orders.put({"customer": "c7", "id": "o1", "total": 42, "rate": 0.5})
    return {"status": 200, "body": {"item": orders.get({"customer": "c7", "id": "o1"}),
                                     "query": orders.query({"customer": "c7"})}}
'''


class LambdaContext:
    function_name = "shop-dev-orders"
    aws_request_id = "lambda-req-res"

    def get_remaining_time_in_millis(self):
        return 7000


def test_end_to_end_through_lambda_entry(world, tmp_path):
    cfg = config("aws", handler="handlers/orders_rw.py", function="orders", resources=_resources_config(),
                 triggers=[{"type": "http", "method": "ANY", "path": "/{proxy+}"}])
    root = build_package(tmp_path / "e2e", "aws", cfg)
    (root / "handlers" / "orders_rw.py").write_text(HANDLER, encoding="utf-8")
    with in_process(root):
        import _nimbus_aws
        out = _nimbus_aws.handler(fixture("aws/apigw-v2-request-no-authorizer.json"), LambdaContext())
    assert out["statusCode"] == 200, out
    body = json.loads(out["body"])
    item = {"customer": "c7", "id": "o1", "total": 42, "rate": 0.5}
    assert body == {"item": item, "query": [item]}
    raw = world.ddb.get_item(TableName=world.table, Key={"customer": {"S": "c7"}, "id": {"S": "o1"}})["Item"]
    assert raw["total"] == {"N": "42"} and raw["rate"] == {"N": "0.5"}


# --------------------------------------------------------------------------- trace context (docs/tracing.md)

TRACING_HANDLER = '''
import json


def handler(event, context):
    seen = {"traceparent": context.traceparent, "attributes": [m["attributes"] for m in event["messages"]]}
    context.resources["refunds"].send(json.dumps(seen), {"reason": "traced"})
    context.resources["order-events"].publish("placed")
'''

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_trace_context_flows_from_an_sqs_message_to_what_the_handler_sends(world, tmp_path):
    cfg = config("aws", handler="handlers/traced.py", function="charge", resources=_resources_config(),
                 triggers=[{"type": "queue", "resource": "refunds", "batch_size": 10}])
    root = build_package(tmp_path / "traced", "aws", cfg)
    (root / "handlers" / "traced.py").write_text(TRACING_HANDLER, encoding="utf-8")
    sink = world.sqs.create_queue(QueueName="sink-" + uuid.uuid4().hex[:8])["QueueUrl"]
    sink_arn = world.sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    world.sns.subscribe(TopicArn=world.topic_arn, Protocol="sqs", Endpoint=sink_arn)
    event = fixture("aws/sqs-event.json")  # the native event, with the sender's traceparent
    event["Records"][0]["messageAttributes"]["traceparent"] = {
        "stringValue": INCOMING, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    with in_process(root):
        import _nimbus_aws
        assert _nimbus_aws.handler(event, LambdaContext()) == {"batchItemFailures": []}
    sent = world.receive(world.queue_url)
    assert len(sent) == 1
    seen = json.loads(sent[0]["Body"])
    # The handler's span continues the sender's trace with a span of its own ...
    version, trace_id, span_id, flags = seen["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert len(span_id) == 16 and span_id != "00f067aa0ba902b7"
    # ... sees only the attributes it was sent ...
    assert seen["attributes"] == [{"Attribute3": "MTEwMA==", "Attribute2": "123", "Attribute1": "AttributeValue1"}]
    # ... and what it sends and publishes carries its context as a message attribute.
    assert sent[0]["MessageAttributes"] == {
        "reason": {"DataType": "String", "StringValue": "traced"},
        "traceparent": {"DataType": "String", "StringValue": seen["traceparent"]}}
    published = world.receive(sink)
    assert len(published) == 1
    assert json.loads(published[0]["Body"])["MessageAttributes"]["traceparent"] == {
        "Type": "String", "Value": seen["traceparent"]}


def test_without_an_incoming_context_an_invocation_starts_a_trace(world, shim):
    from _nimbus import trace
    assert trace.parse(INCOMING) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    for bad in ("", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None, 7):
        assert trace.parse(bad) is None, bad
    a, b = trace.child(None), trace.child(None)
    assert trace.parse(a) and trace.parse(a)[0] != trace.parse(b)[0]
    event = {"type": "queue", "messages": [{"attributes": {"traceparent": "junk", "k": "v"}},
                                           {"attributes": {"traceparent": INCOMING}}]}
    assert trace.parent_of(event) == INCOMING
    assert [m["attributes"] for m in event["messages"]] == [{"k": "v"}, {}]
    http = {"type": "http", "headers": {"traceparent": INCOMING}}
    assert trace.parent_of(http) == INCOMING and http["headers"] == {"traceparent": INCOMING}
    assert trace.with_trace({"a": "1"}) == {"a": "1"}  # outside an invocation: nothing added
    value, token = trace.enter({"type": "schedule"})
    try:
        assert trace.with_trace({"a": "1"}) == {"a": "1", "traceparent": value}
        assert trace.with_trace({"traceparent": "mine"}) == {"traceparent": "mine"}
    finally:
        trace.leave(token)
    assert trace.current() is None
