"""GCP shim (Python) served by the real `functions-framework`, from a package laid out as the
packager lays it out (main.py + _nimbus/ + the user's code at its manifest path)."""

import base64
import json
import os
import time

import pytest

from conftest import (Recorder, Server, TESTS, VENV_BIN, build_package, config, expected, fixture, free_port,
                      header_values, in_process, local_event)

CASES = json.loads((TESTS / "cases" / "gcp-cloudevents.json").read_text(encoding="utf-8"))


def case_data(case):
    d = case["data"]
    data = fixture(d["fixture"]) if "fixture" in d else local_event(d["local"])
    for k in d.get("drop", []):
        data.pop(k, None)
    return data


def wait_for_log(srv, needle, timeout=5.0):
    deadline = time.monotonic() + timeout
    while needle not in srv.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_ff(tmp_path_factory, name, cfg, signature_arg):
    d = tmp_path_factory.mktemp(name)
    root = build_package(d / "pkg", "gcp", cfg)
    rec = Recorder(d / "record.jsonl")
    env = dict(os.environ, NIMBUS_TEST_RECORD=str(rec.path), PYTHONDONTWRITEBYTECODE="1")
    env.pop("NIMBUS_PACKAGE_ROOT", None)
    port = free_port()
    argv = [str(VENV_BIN / "functions-framework"), "--target", "nimbus_entry", "--source", "main.py",
            "--host", "127.0.0.1", "--port", str(port)]
    if signature_arg:
        argv += ["--signature-type", signature_arg]
    srv = Server(argv, root, env, port, d / "server.log")
    srv.rec = rec
    return srv


@pytest.fixture(scope="module")
def http_srv(tmp_path_factory):
    srv = start_ff(tmp_path_factory, "gcp-http", config("gcp"), None)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ce_srv(tmp_path_factory):
    # function.json says cloudevent, the command line says http: main.py's registration must win
    srv = start_ff(tmp_path_factory, "gcp-ce", config("gcp", gcp={"signature": "cloudevent"}), "http")
    yield srv
    srv.stop()


def test_http_request(http_srv):
    http_srv.rec.clear()
    status, headers, body = http_srv.request(
        "GET", "/orders/42?x=1&x=2&y=&z=a%20b",
        headers={"X-Custom": "v", "Function-Execution-Id": "exec-1", "X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
    assert status == 200, body
    assert header_values(headers, "x-handler") == ["probe"]
    assert header_values(headers, "content-type") == ["application/json"]
    out = json.loads(body)
    ev = out["event"]
    assert {k: ev[k] for k in ("type", "method", "path", "route", "path_params", "query", "body", "is_base64",
                               "source_ip")} == {
        "type": "http", "method": "GET", "path": "/orders/42", "route": "/orders/{id}", "path_params": {"id": "42"},
        "query": {"x": "1,2", "y": "", "z": "a b"}, "body": None, "is_base64": False, "source_ip": "203.0.113.9"}
    assert ev["headers"]["x-custom"] == "v" and ev["headers"]["host"].startswith("127.0.0.1")
    assert out["context"] == {"function_name": "probe", "request_id": "exec-1", "service": "shop", "stage": "dev",
                              "provider": "gcp", "deadline_ms": out["context"]["deadline_ms"], "remaining_ok": True,
                              "resources": ["images", "order-events", "orders"]}
    assert http_srv.rec.last()["event"] == ev


def test_http_bodies(http_srv):
    status, _, body = http_srv.request("POST", "/orders/7", headers={"Content-Type": "application/json"},
                                       body=b'{"a": 1}')
    ev = json.loads(body)["event"]
    assert status == 200 and ev["body"] == '{"a": 1}' and ev["is_base64"] is False and ev["method"] == "POST"
    status, _, body = http_srv.request("PUT", "/blob", headers={"Content-Type": "application/octet-stream"},
                                       body=b"\xff\x00\xfe")
    ev = json.loads(body)["event"]
    assert ev["is_base64"] is True and base64.b64decode(ev["body"]) == b"\xff\x00\xfe"
    assert ev["route"] == "/{path+}" and ev["path_params"] == {"path": "blob"}


def test_http_results(http_srv):
    status, headers, body = http_srv.request("GET", "/x/text")
    assert (status, body) == (200, b"hello text")
    assert header_values(headers, "content-type") == ["text/plain; charset=utf-8"]
    status, headers, body = http_srv.request("GET", "/x/bytes")
    assert (status, body) == (200, b"\x00\x01\xffbin")
    assert header_values(headers, "content-type") == ["application/octet-stream"]
    status, _, body = http_srv.request("GET", "/x/none")
    assert (status, body) == (204, b"")
    status, headers, body = http_srv.request("GET", "/x/cookies")
    assert status == 201 and body == b"made"
    assert header_values(headers, "set-cookie") == ["a=1", "b=2"] and header_values(headers, "x-multi") == ["v"]
    status, _, body = http_srv.request("GET", "/x/error")
    assert status == 500
    # The stack trace stays in the logs: only the local runtime answers it.
    assert b"Traceback" not in body and b"probe.py" not in body and b"boom from handler" not in body


def test_http_resources(http_srv):
    status, _, body = http_srv.request("GET", "/x/resources")
    r = json.loads(body)
    assert r["granted"] == ["images", "order-events", "orders"]
    assert "'secrets' is not granted to function 'probe'" in r["not_granted"]["message"]
    # the GCP clients exist; `orders` is granted `write`, which does not allow reads
    assert r["no_client"]["type"] == "ResourceAccessError"
    assert "'write' access to table 'orders', which does not allow get()" in r["no_client"]["message"]


def test_cloud_scheduler_http(http_srv):
    http_srv.rec.clear()
    status, _, _ = http_srv.request(
        "POST", "/", body=json.dumps(fixture("gcp/scheduler-job-simple.json")).encode(),
        headers={"Content-Type": "application/octet-stream", "X-CloudScheduler": "true",
                 "X-CloudScheduler-JobName": "nightly-job",
                 "X-CloudScheduler-ScheduleTime": "2026-11-25T03:00:00.000Z", "User-Agent": "Google-Cloud-Scheduler"})
    assert status == 204
    assert http_srv.rec.last()["event"] == {"type": "schedule", "name": "nightly", "time": "2026-11-25T03:00:00Z"}


def _binary(case, data):
    headers = {"ce-" + k: v for k, v in case["ce"].items()}
    headers["Content-Type"] = "application/json"
    return headers, json.dumps(data).encode()


def _structured(case, data):
    obj = dict(case["ce"], datacontenttype="application/json", data=data)
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(obj).encode()


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cloud_events(ce_srv, case, mode):
    ce_srv.rec.clear()
    headers, body = (_binary if mode == "binary" else _structured)(case, case_data(case))
    status, _, resp = ce_srv.request("POST", "/", headers=headers, body=body)
    assert status == 200, resp + ce_srv.log().encode()
    got = ce_srv.rec.last()
    assert got["event"] == expected("gcp", case["name"])
    assert got["context"]["request_id"] == case["ce"]["id"] and got["context"]["provider"] == "gcp"


def test_pubsub_failure_is_retried(ce_srv):
    case = CASES[0]
    data = case_data(case)
    data["message"]["data"] = base64.b64encode(b"please fail").decode()
    headers, body = _binary(case, data)
    status, _, _ = ce_srv.request("POST", "/", headers=headers, body=body)
    assert status == 500  # Pub/Sub redelivers the message
    assert wait_for_log(ce_srv, "failed message(s) 'message-id'")


def test_firestore_protobuf_is_rejected_clearly(ce_srv):
    case = next(c for c in CASES if c["name"] == "firestore-written")
    headers = {"ce-" + k: v for k, v in case["ce"].items()}
    headers["Content-Type"] = "application/protobuf"
    status, _, _ = ce_srv.request("POST", "/", headers=headers, body=b"\x0a\x03abc")
    assert status == 500
    assert wait_for_log(ce_srv, "event data content type application/json")


def test_cloudevent_registration_won(ce_srv):
    # A plain POST is not a CloudEvent: functions-framework in cloudevent mode rejects it (400);
    # in http mode the shim would have served it as an http event.
    status, _, _ = ce_srv.request("POST", "/", headers={"Content-Type": "application/json"}, body=b'{"a":1}')
    assert status == 400


def test_http_signature_fallback_parses_cloud_events(tmp_path, recorder):
    """If a deployment runs nimbus_entry with the http signature while function.json says
    cloudevent, CloudEvents delivered over HTTP are still parsed (both content modes)."""
    import flask

    root = build_package(tmp_path / "pkg", "gcp", config("gcp", gcp={"signature": "cloudevent"}))
    with in_process(root):
        import main
        app = flask.Flask("t")
        for case in CASES:
            for mk in (_binary, _structured):
                headers, body = mk(case, case_data(case))
                with app.test_request_context("/", method="POST", headers=headers, data=body):
                    out = main.nimbus_entry(flask.request)
                assert out[1] == 200
                assert recorder.last()["event"] == expected("gcp", case["name"])


def test_signature_derivation(tmp_path):
    root = build_package(tmp_path / "pkg", "gcp", config("gcp"))
    with in_process(root):
        from _nimbus import gcp
        assert gcp.signature({"gcp": {"signature": "cloudevent"}}) == "cloudevent"
        assert gcp.signature({"triggers": [{"type": "topic"}]}) == "cloudevent"
        assert gcp.signature({"triggers": [{"type": "schedule"}]}) == "http"
        assert gcp.signature({"triggers": [{"type": "http"}, {"type": "queue"}]}) == "http"
        assert gcp.signature({"triggers": [{"type": "queue"}]}) == "http"  # pushed over HTTP
        assert gcp.signature({"triggers": [{"type": "queue"}, {"type": "topic"}]}) == "http"
        assert gcp.signature({"triggers": [{"type": "schedule"}, {"type": "topic"}]}) == "http"
        assert gcp.signature({"triggers": [{"type": "bucket"}, {"type": "table"}]}) == "cloudevent"
        assert gcp.signature({}) == "http"


# --------------------------------------------------------------------------- Pub/Sub push (queues)


def push_envelope(subscription, data=b'{"order":42}', attempt=3):
    """What a push subscription POSTs to its endpoint (Pub/Sub's documented push format)."""
    return {"message": {"attributes": {"kind": "card"}, "data": base64.b64encode(data).decode(),
                        "messageId": "2070443601311540", "message_id": "2070443601311540",
                        "publishTime": "2026-02-26T19:13:55.749Z", "publish_time": "2026-02-26T19:13:55.749Z"},
            "subscription": subscription, "deliveryAttempt": attempt}


def test_pubsub_push_to_a_queue_function(http_srv):
    http_srv.rec.clear()
    body = json.dumps(push_envelope("projects/my-project/subscriptions/jobs-sub")).encode()
    status, _, resp = http_srv.request("POST", "/", headers={"Content-Type": "application/json"}, body=body)
    assert status == 204, resp + http_srv.log().encode()  # 2xx acknowledges the message
    got = http_srv.rec.last()
    assert got["event"] == {"type": "queue", "source": "jobs", "messages": [
        {"id": "2070443601311540", "body": '{"order":42}', "attributes": {"kind": "card"}, "receive_count": 3}]}


def test_pubsub_push_failure_is_redelivered(http_srv):
    body = json.dumps(push_envelope("projects/my-project/subscriptions/jobs-sub", b"please fail")).encode()
    status, _, _ = http_srv.request("POST", "/", headers={"Content-Type": "application/json"}, body=body)
    assert status == 500  # not acknowledged: Pub/Sub redelivers, then dead-letters
    assert wait_for_log(http_srv, "failed message(s) '2070443601311540'")


def test_push_subscription_names_come_from_the_environment(tmp_path, monkeypatch):
    root = build_package(tmp_path / "pkg", "gcp", config("gcp"))
    monkeypatch.setenv("NIMBUS_RESOURCE_PAYMENTS_SUBSCRIPTION", "projects/p/subscriptions/shop-dev-payments")
    monkeypatch.setenv("NIMBUS_RESOURCE_ORDERS_COLLECTION", "shop-dev-orders")
    monkeypatch.setenv("NIMBUS_SCHEDULE_NIGHTLY_JOB", "projects/p/locations/r/jobs/shop-dev-f-schedule-0")
    with in_process(root):
        from _nimbus import gcp
        cfg = gcp.with_env_natives(gcp.init().config)
        event = gcp.push_event(push_envelope("projects/p/subscriptions/shop-dev-payments"), cfg)
        assert (event["type"], event["source"]) == ("queue", "payments")
        assert gcp.schedule_from_http({"x-cloudscheduler-jobname": "shop-dev-f-schedule-0"}, cfg)["name"] == "nightly"
        case = next(c for c in CASES if c["name"] == "firestore-written")
        data = case_data(case)
        data["value"]["name"] = data["value"]["name"].replace("/orders/", "/shop-dev-orders/")
        data["oldValue"]["name"] = data["oldValue"]["name"].replace("/orders/", "/shop-dev-orders/")
        ce = dict(case["ce"], data=data)
        assert gcp.cloud_event_to_neutral(ce, cfg)["table"] == "orders"


# --------------------------------------------------------------------------- bucket triggers' prefix/suffix


def test_bucket_events_outside_the_triggers_prefix_and_suffix_are_acknowledged_unhandled(tmp_path, recorder):
    import flask

    triggers = [{"type": "bucket", "resource": "images", "events": ["created"], "prefix": "uploads/",
                 "suffix": ".jpg"}]
    resources = {"images": {"type": "bucket", "access": "read_write", "native": {"name": "sample-bucket"}}}
    root = build_package(tmp_path / "pkg", "gcp", config("gcp", triggers=triggers, resources=resources,
                                                          gcp={"signature": "cloudevent"}))
    case = next(c for c in CASES if c["name"] == "storage-finalized")
    deleted = next(c for c in CASES if c["name"] == "storage-deleted")
    with in_process(root):
        import main
        app = flask.Flask("t")

        def deliver(case, key):
            data = dict(case_data(case), name=key)
            headers, body = _binary(case, data)
            with app.test_request_context("/", method="POST", headers=headers, data=body):
                return main.nimbus_entry(flask.request)

        for key in ("thumbnails/cat.jpg", "uploads/cat.png", "cat.jpg"):
            assert deliver(case, key)[1] == 200  # acknowledged (no redelivery)
        assert recorder.all() == []
        assert deliver(deleted, "uploads/cat.jpg")[1] == 200  # `deleted` is not among the events
        assert recorder.all() == []
        assert deliver(case, "uploads/cat.jpg")[1] == 200
        assert recorder.last()["event"]["key"] == "uploads/cat.jpg"
