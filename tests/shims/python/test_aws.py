"""AWS Lambda shim (Python): real fixtures through `_nimbus_aws.handler`, as Lambda calls it."""

import base64
import json

import pytest

from conftest import build_package, config, expected, fixture, in_process

AWS_FIXTURES = ["apigw-v2-request-multi-value-parameters", "apigw-v2-request-no-authorizer", "apigw-request",
                "sqs-event", "sns-event", "eventbridge-schedule", "s3-event", "dynamodb-event"]


class LambdaContext:
    """The attributes Lambda's Python runtime gives a handler's context."""

    function_name = "shop-dev-probe"
    aws_request_id = "lambda-req-1"

    def __init__(self, remaining=7000):
        self._remaining = remaining

    def get_remaining_time_in_millis(self):
        return self._remaining


@pytest.fixture
def lam(tmp_path, recorder):
    """Import the package's Lambda entry module, like Lambda does with `_nimbus_aws.handler`."""
    made = []

    def make(cfg=None):
        root = build_package(tmp_path / ("pkg%d" % len(made)), "aws", cfg or config("aws"))
        cm = in_process(root)
        cm.__enter__()
        made.append(cm)
        import _nimbus_aws
        return _nimbus_aws
    yield make
    for cm in reversed(made):
        cm.__exit__(None, None, None)


@pytest.mark.parametrize("name", AWS_FIXTURES)
def test_native_to_neutral(lam, name):
    mod = lam()
    from _nimbus import aws, core
    assert aws.to_neutral(fixture("aws/%s.json" % name), core.load_config()) == expected("aws", name)
    assert mod.handler is aws.handler


def test_http_v2_end_to_end(lam, recorder):
    mod = lam()
    out = mod.handler(fixture("aws/apigw-v2-request-multi-value-parameters.json"), LambdaContext())
    assert out["statusCode"] == 200 and out["isBase64Encoded"] is False
    assert out["headers"] == {"x-handler": "probe", "content-type": "application/json"}
    body = json.loads(out["body"])
    assert body["event"] == expected("aws", "apigw-v2-request-multi-value-parameters")
    assert body["context"] == {
        "function_name": "probe", "request_id": "lambda-req-1", "service": "shop", "stage": "dev",
        "provider": "aws", "deadline_ms": body["context"]["deadline_ms"], "remaining_ok": True,
        "resources": ["images", "order-events", "orders", "refunds"]}
    assert recorder.last()["context"]["request_id"] == "lambda-req-1"


def test_http_v1_end_to_end(lam):
    mod = lam()
    ev = fixture("aws/apigw-request.json")
    out = mod.handler(ev, LambdaContext())
    assert out["statusCode"] == 200
    assert out["multiValueHeaders"] == {"x-handler": ["probe"], "content-type": ["application/json"]}
    assert json.loads(out["body"])["event"] == expected("aws", "apigw-request")
    ev["path"] = "/hello/cookies"
    out = mod.handler(ev, LambdaContext())
    assert out["statusCode"] == 201 and out["multiValueHeaders"]["set-cookie"] == ["a=1", "b=2"]


def _v2(path, method="GET", body=None, b64=False):
    ev = fixture("aws/apigw-v2-request-no-authorizer.json")
    ev["rawPath"] = path
    ev["requestContext"]["http"]["method"] = method
    ev["requestContext"]["http"]["path"] = path
    if body is not None:
        ev["body"] = body
        ev["isBase64Encoded"] = b64
    return ev


def test_http_result_shapes(lam):
    mod = lam()
    h = mod.handler
    assert h(_v2("/x/text"), LambdaContext()) == {
        "statusCode": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "hello text",
        "isBase64Encoded": False}
    out = h(_v2("/x/bytes"), LambdaContext())
    assert out["isBase64Encoded"] is True and base64.b64decode(out["body"]) == b"\x00\x01\xffbin"
    assert out["headers"]["content-type"] == "application/octet-stream"
    assert h(_v2("/x/none"), LambdaContext()) == {"statusCode": 204, "headers": {}, "body": "",
                                                  "isBase64Encoded": False}
    assert h(_v2("/x/list"), LambdaContext())["body"] == "[1,2,3]"
    out = h(_v2("/x/cookies"), LambdaContext())
    assert out["statusCode"] == 201 and out["cookies"] == ["a=1", "b=2"] and out["headers"] == {
        "x-multi": "v", "content-type": "text/plain; charset=utf-8"}
    with pytest.raises(RuntimeError, match="boom from handler"):
        h(_v2("/x/error"), LambdaContext())


def test_http_binary_request_body(lam):
    mod = lam()
    out = mod.handler(_v2("/upload", "POST", base64.b64encode(b"\xff\x00").decode(), True), LambdaContext())
    ev = json.loads(out["body"])["event"]
    assert ev["is_base64"] is True and base64.b64decode(ev["body"]) == b"\xff\x00" and ev["method"] == "POST"


def _sqs(bodies):
    base = fixture("aws/sqs-event.json")["Records"][0]
    recs = []
    for i, b in enumerate(bodies):
        r = json.loads(json.dumps(base))
        r["messageId"] = "m%d" % i
        r["body"] = b
        recs.append(r)
    return {"Records": recs}


def test_sqs_batch_item_failures(lam, recorder):
    mod = lam()
    assert mod.handler(fixture("aws/sqs-event.json"), LambdaContext()) == {"batchItemFailures": []}
    assert recorder.last()["event"] == expected("aws", "sqs-event")
    out = mod.handler(_sqs(["ok", "please fail", "ok too", "fail again"]), LambdaContext())
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    with pytest.raises(RuntimeError, match="batch boom"):  # whole batch retried
        mod.handler(_sqs(["ok", "boom"]), LambdaContext())


def test_sns(lam, recorder):
    mod = lam()
    assert mod.handler(fixture("aws/sns-event.json"), LambdaContext()) is None
    assert recorder.last()["event"] == expected("aws", "sns-event")
    ev = fixture("aws/sns-event.json")
    ev["Records"][0]["Sns"]["Message"] = "fail"
    ev["Records"][0]["Sns"]["MessageAttributes"] = {"kind": {"Type": "String", "Value": "x"}}
    from _nimbus import core
    with pytest.raises(core.BatchItemFailure, match="82833b5c"):
        mod.handler(ev, LambdaContext())
    assert recorder.last()["event"]["messages"][0]["attributes"] == {"kind": "x"}


def test_schedule_s3_dynamodb(lam, recorder):
    mod = lam()
    assert mod.handler(fixture("aws/eventbridge-schedule.json"), LambdaContext()) is None
    assert recorder.last()["event"] == expected("aws", "eventbridge-schedule")
    recorder.clear()
    assert mod.handler(fixture("aws/s3-event.json"), LambdaContext()) is None
    assert [r["event"] for r in recorder.all()] == expected("aws", "s3-event")
    recorder.clear()
    assert mod.handler(fixture("aws/dynamodb-event.json"), LambdaContext()) == {"batchItemFailures": []}
    assert [r["event"] for r in recorder.all()] == expected("aws", "dynamodb-event")


def test_s3_removed_and_encoded_key(lam, recorder):
    mod = lam()
    ev = fixture("aws/s3-event.json")
    ev["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    ev["Records"][0]["s3"]["object"] = {"key": "uploads/a+b%2Bc.png", "sequencer": "x"}
    mod.handler(ev, LambdaContext())
    assert recorder.last()["event"] == {"type": "bucket", "bucket": "images", "key": "uploads/a b+c.png",
                                        "size": None, "action": "deleted"}
    ev["Records"][0]["s3"]["object"]["key"] = "boom.png"
    with pytest.raises(RuntimeError, match="bucket boom"):
        mod.handler(ev, LambdaContext())


def test_dynamodb_partial_failure(lam, recorder):
    mod = lam()
    ev = fixture("aws/dynamodb-event.json")
    ev["Records"][0]["dynamodb"]["SequenceNumber"] = "111"
    ev["Records"][1]["dynamodb"]["SequenceNumber"] = "222"
    ev["Records"][1]["eventName"] = "MODIFY"
    ev["Records"][1]["dynamodb"]["OldImage"] = {"key": {"S": "binary"}, "n": {"N": "-7"}}
    ev["Records"][1]["dynamodb"]["NewImage"]["boom"] = {"BOOL": True}
    assert mod.handler(ev, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "222"}]}
    last = recorder.last()["event"]
    assert last["action"] == "modify" and last["old"] == {"key": "binary", "n": -7}


def test_fallback_to_native_names(lam, recorder):
    mod = lam(config("aws", resources={}, triggers=[]))
    mod.handler(fixture("aws/sqs-event.json"), LambdaContext())
    assert recorder.last()["event"]["source"] == "SQSQueue"
    mod.handler(fixture("aws/sns-event.json"), LambdaContext())
    assert recorder.last()["event"]["source"] == "snsNetTest"
    mod.handler(fixture("aws/eventbridge-schedule.json"), LambdaContext())
    assert recorder.last()["event"]["name"] == "my-scheduled-rule"
    mod.handler(fixture("aws/s3-event.json"), LambdaContext())
    assert recorder.last()["event"]["bucket"] == "sourcebucket"
    mod.handler(fixture("aws/dynamodb-event.json"), LambdaContext())
    assert recorder.last()["event"]["table"] == "Example-Table"


def test_resources_in_handler(lam):
    mod = lam()
    out = mod.handler(_v2("/x/resources"), LambdaContext())
    r = json.loads(out["body"])
    assert r["granted"] == ["images", "order-events", "orders", "refunds"]
    assert r["has_orders"] is True and r["has_secrets"] is False
    assert r["not_granted"]["type"] == "ResourceAccessError"
    assert "'secrets' is not granted to function 'probe'" in r["not_granted"]["message"]
    assert "'payments' is not granted" in r["trigger_only"]["message"]
    # the AWS clients exist (_nimbus/aws_resources.py): 'orders' is write-only, so get() is refused
    assert r["no_client"]["type"] == "ResourceAccessError"
    assert "'write' access to table 'orders'" in r["no_client"]["message"] and "get()" in r["no_client"]["message"]


def test_unsupported_event(lam):
    mod = lam()
    from _nimbus import core
    with pytest.raises(core.EventError, match="unsupported AWS event"):
        mod.handler({"hello": "world"}, LambdaContext())


def test_load_error_is_an_init_error(tmp_path):
    root = build_package(tmp_path / "broken", "aws", config("aws", "handlers/broken.py"))
    with in_process(root):
        with pytest.raises(Exception) as e:
            import _nimbus_aws  # noqa: F401
        assert type(e.value).__name__ == "HandlerLoadError" and "broken on purpose" in str(e.value)


# Two triggers of every type, `native` left empty as packaging does: only the deployment's
# NIMBUS_RESOURCE_<R>_* / NIMBUS_SCHEDULE_<T>_ARN variables (crates/nimbus-aws/src/env.rs) tell them apart.
PAIRS_CONFIG = {
    "resources": {
        "payments": {"type": "queue", "access": None, "native": {}},
        "refunds": {"type": "queue", "access": None, "native": {}},
        "order-events": {"type": "topic", "access": None, "native": {}},
        "audit-events": {"type": "topic", "access": None, "native": {}},
        "images": {"type": "bucket", "access": None, "native": {}},
        "thumbs": {"type": "bucket", "access": None, "native": {}},
        "orders": {"type": "table", "access": None, "key": ["id"], "native": {}},
        "audit": {"type": "table", "access": None, "key": ["id"], "native": {}},
    },
    "triggers": [
        {"type": "queue", "resource": "payments", "batch_size": 10},
        {"type": "queue", "resource": "refunds", "batch_size": 10},
        {"type": "topic", "resource": "order-events"},
        {"type": "topic", "resource": "audit-events"},
        {"type": "schedule", "name": "probe-schedule-0", "expression": "cron(0 3 * * ? *)"},
        {"type": "schedule", "name": "probe-schedule-1", "expression": "rate(1 hour)"},
        {"type": "bucket", "resource": "images", "events": ["created", "deleted"]},
        {"type": "bucket", "resource": "thumbs", "events": ["created"]},
        {"type": "table", "resource": "orders", "events": ["insert", "modify", "remove"]},
        {"type": "table", "resource": "audit", "events": ["insert"]},
    ],
}
SCHEDULER_ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/shop-dev-probe-schedule-1"
PAIRS_ENV = {
    # the fixtures' own names for the first resource of each pair ...
    "NIMBUS_RESOURCE_PAYMENTS_ARN": "arn:aws:sqs:us-west-2:123456789012:SQSQueue",
    "NIMBUS_RESOURCE_PAYMENTS_URL": "https://sqs.us-west-2.amazonaws.com/123456789012/SQSQueue",
    "NIMBUS_RESOURCE_ORDER_EVENTS_ARN": "arn:aws:sns:us-east-1:246796806071:snsNetTest",
    "NIMBUS_RESOURCE_ORDER_EVENTS_NAME": "snsNetTest",
    "NIMBUS_RESOURCE_IMAGES_NAME": "sourcebucket",
    "NIMBUS_RESOURCE_ORDERS_NAME": "Example-Table",
    "NIMBUS_RESOURCE_ORDERS_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table",
    "NIMBUS_RESOURCE_ORDERS_STREAM_ARN":
        "arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table/stream/2016-12-01T00:00:00.000",
    "NIMBUS_SCHEDULE_PROBE_SCHEDULE_0_ARN": "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule",
    # ... and different ones for the second, which the modified fixture copies below carry
    "NIMBUS_RESOURCE_REFUNDS_NAME": "shop-dev-refunds",
    "NIMBUS_RESOURCE_REFUNDS_ARN": "arn:aws:sqs:us-west-2:123456789012:shop-dev-refunds",
    "NIMBUS_RESOURCE_AUDIT_EVENTS_ARN": "arn:aws:sns:us-east-1:246796806071:shop-dev-audit-events",
    "NIMBUS_RESOURCE_THUMBS_NAME": "shop-dev-thumbs",
    "NIMBUS_RESOURCE_THUMBS_ARN": "arn:aws:s3:::shop-dev-thumbs",
    "NIMBUS_RESOURCE_AUDIT_STREAM_ARN":
        "arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-audit/stream/2024-01-01T00:00:00.000",
    "NIMBUS_SCHEDULE_PROBE_SCHEDULE_1_ARN": SCHEDULER_ARN,
}


def _second_of_each():
    """Copies of the real fixtures whose native names are those of the second resource of each pair."""
    sqs = fixture("aws/sqs-event.json")
    for r in sqs["Records"]:
        r["eventSourceARN"] = "arn:aws:sqs:us-west-2:123456789012:shop-dev-refunds"
    sns = fixture("aws/sns-event.json")
    for r in sns["Records"]:
        r["Sns"]["TopicArn"] = "arn:aws:sns:us-east-1:246796806071:shop-dev-audit-events"
    sched = fixture("aws/eventbridge-schedule.json")
    sched["source"] = "aws.scheduler"
    sched["detail-type"] = "Scheduled Event"
    sched["resources"] = [SCHEDULER_ARN]
    s3 = fixture("aws/s3-event.json")
    for r in s3["Records"]:
        r["s3"]["bucket"]["name"] = "shop-dev-thumbs"
        r["s3"]["bucket"]["arn"] = "arn:aws:s3:::shop-dev-thumbs"
    ddb = fixture("aws/dynamodb-event.json")
    for r in ddb["Records"]:
        r["eventSourceARN"] = PAIRS_ENV["NIMBUS_RESOURCE_AUDIT_STREAM_ARN"]
    return sqs, sns, sched, s3, ddb


def _names(aws, core, events):
    cfg = core.load_config()
    sqs, sns, sched, s3, ddb = (aws.to_neutral(e, cfg) for e in events)
    return (sqs["source"], sns["source"], sched["name"],
            sorted({e["bucket"] for e in s3}), sorted({e["table"] for e in ddb}))


def test_two_triggers_per_type_mapped_through_env(lam, recorder, monkeypatch):
    for k, v in PAIRS_ENV.items():
        monkeypatch.setenv(k, v)
    mod = lam(config("aws", **PAIRS_CONFIG))
    from _nimbus import aws, core
    originals = [fixture("aws/%s.json" % n)
                 for n in ("sqs-event", "sns-event", "eventbridge-schedule", "s3-event", "dynamodb-event")]
    assert _names(aws, core, originals) == ("payments", "order-events", "probe-schedule-0", ["images"], ["orders"])
    assert _names(aws, core, _second_of_each()) == (
        "refunds", "audit-events", "probe-schedule-1", ["thumbs"], ["audit"])
    # function.json itself is left as packaged
    assert all(spec["native"] == {} for spec in core.load_config()["resources"].values())
    # and through the Lambda entry point
    sqs, _, sched, _, ddb = _second_of_each()
    mod.handler(sqs, LambdaContext())
    assert recorder.last()["event"]["source"] == "refunds"
    mod.handler(sched, LambdaContext())
    assert recorder.last()["event"]["name"] == "probe-schedule-1"
    recorder.clear()
    mod.handler(ddb, LambdaContext())
    assert [r["event"]["table"] for r in recorder.all()] == ["audit"] * len(ddb["Records"])


def test_two_triggers_per_type_without_env_keep_the_fallback(lam, monkeypatch):
    for k in PAIRS_ENV:
        monkeypatch.delenv(k, raising=False)
    lam(config("aws", **PAIRS_CONFIG))
    from _nimbus import aws, core
    originals = [fixture("aws/%s.json" % n)
                 for n in ("sqs-event", "sns-event", "eventbridge-schedule", "s3-event", "dynamodb-event")]
    # two triggers of the type and nothing to match: the native name, as before
    assert _names(aws, core, originals) == (
        "SQSQueue", "snsNetTest", "my-scheduled-rule", ["sourcebucket"], ["Example-Table"])
    assert _names(aws, core, _second_of_each()) == (
        "shop-dev-refunds", "shop-dev-audit-events", "shop-dev-probe-schedule-1", ["shop-dev-thumbs"],
        ["shop-dev-audit"])
    # one trigger of the type: that trigger's resource, as before
    one = dict(PAIRS_CONFIG, triggers=[t for t in PAIRS_CONFIG["triggers"]
                                       if t.get("resource") not in ("refunds",)])
    lam(config("aws", **one))
    from _nimbus import aws as aws2, core as core2
    sqs = _second_of_each()[0]
    assert aws2.to_neutral(sqs, core2.load_config())["source"] == "payments"
