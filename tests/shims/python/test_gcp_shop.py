"""The shop example's handlers as Cloud Functions would run them, against Google's emulators.

`nimbus build -p gcp` (``NIMBUS_BIN``) packages the shop; place-order and get-order (Python) and
charge-payment (Node.js) are served from their zips by Google's functions-framework, with
``FIRESTORE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST`` pointing at the
emulators (conftest.gcp_emulators) and the ``NIMBUS_*`` variables lowering sets
(crates/nimbus-gcp/src/env.rs). Everything is checked with the emulators' own REST APIs.
"""

import base64
import json
import os
import pathlib
import re
import shutil
import subprocess
import urllib.request
import zipfile

import pytest

from conftest import ROOT, TESTS, VENV_BIN, Server, free_port, rest

# From tests/requirements.txt; a missing one fails here (never a skip).
import google.cloud.firestore  # noqa: E402,F401

NIMBUS = os.environ.get("NIMBUS_BIN") or str(ROOT / "target" / "debug" / "nimbus")
NODE_MODULES = pathlib.Path(os.environ.get("NIMBUS_TEST_NODE_MODULES") or ROOT / ".tools" / "node" / "node_modules")
PROJECT = "shop-emulated"


def call(port, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method, data=data,
                                 headers=dict({"content-type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The shop, built for GCP by the real `nimbus build`: function -> unzipped package root."""
    if not pathlib.Path(NIMBUS).is_file():
        pytest.fail("the nimbus binary is missing at %s (scripts/test-shims builds it)" % NIMBUS)
    tmp = tmp_path_factory.mktemp("shop")
    project = tmp / "shop"
    shutil.copytree(ROOT / "examples" / "shop", project,
                    ignore=shutil.ignore_patterns(".nimbus", "node_modules", "__pycache__", "tests"))
    # make-thumbnail is not run here: build it without Pillow (no download from PyPI).
    (project / "images" / "requirements.txt").unlink()
    proc = subprocess.run([NIMBUS, "build", "-p", "gcp", "--output", "json"], cwd=project, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    roots = {}
    for f in ("place-order", "get-order", "charge-payment"):
        roots[f] = tmp / f
        with zipfile.ZipFile(project / ".nimbus" / "build" / "gcp" / "dev" / (f + ".zip")) as z:
            z.extractall(roots[f])
    # Cloud Build installs the package's dependencies; here they come from the test tools.
    os.symlink(NODE_MODULES, roots["charge-payment"] / "node_modules")
    return roots


def test_an_order_through_the_shop_on_the_emulators(shop, gcp_emulators, tmp_path):
    urls = gcp_emulators
    topics = {"order-events": "projects/%s/topics/shop-dev-order-events" % PROJECT,
              "payments": "projects/%s/topics/shop-dev-payments" % PROJECT}
    for t in topics.values():
        assert rest(urls["pubsub"], "PUT", "/v1/" + t, {})[0] == 200
        sub = t.replace("/topics/", "/subscriptions/") + "-check"
        assert rest(urls["pubsub"], "PUT", "/v1/" + sub, {"topic": t})[0] == 200
    database = "projects/%s/databases/(default)" % PROJECT
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
               FIRESTORE_EMULATOR_HOST=urls["firestore"].split("//", 1)[1],
               PUBSUB_EMULATOR_HOST=urls["pubsub"].split("//", 1)[1],
               STORAGE_EMULATOR_HOST=urls["storage"],
               NIMBUS_GCP_PROJECT=PROJECT,
               NIMBUS_RESOURCE_ORDERS_COLLECTION="shop-dev-orders",
               NIMBUS_RESOURCE_ORDERS_DATABASE=database,
               NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC=topics["order-events"],
               NIMBUS_RESOURCE_PAYMENTS_TOPIC=topics["payments"],
               NIMBUS_RESOURCE_PAYMENTS_SUBSCRIPTION="projects/%s/subscriptions/shop-dev-payments" % PROJECT,
               # What Cloud Functions sets from charge-payment's secretEnvironmentVariables
               # (Secret Manager, version latest).
               PAYMENT_API_KEY="pk_test_shop")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env.pop("NIMBUS_PACKAGE_ROOT", None)
    servers = []

    def serve_python(function):
        port = free_port()
        argv = [str(VENV_BIN / "functions-framework"), "--target", "nimbus_entry", "--source", "main.py",
                "--host", "127.0.0.1", "--port", str(port)]
        servers.append(Server(argv, shop[function], env, port, tmp_path / (function + ".log")))
        return port

    def serve_node(function):
        port = free_port()
        main = NODE_MODULES / "@google-cloud" / "functions-framework" / "build" / "src" / "main.js"
        argv = ["node", "--require", str(TESTS / "node" / "loopback-preload.cjs"), str(main),
                "--target=nimbus_entry", "--source=" + str(shop[function]), "--port=%d" % port]
        servers.append(Server(argv, shop[function], env, port, tmp_path / (function + ".log")))
        return port

    try:
        place, get, charge = serve_python("place-order"), serve_python("get-order"), serve_node("charge-payment")

        # POST /orders: the order is a document in Firestore, its event and its payment are messages.
        status, order = call(place, "POST", "/orders",
                             {"items": [{"sku": "mug-blue", "qty": 2}], "email": "ann@example.com", "amount": 24.5})
        assert status == 201, order + "".join(s.log() for s in servers)
        status, doc = rest(urls["firestore"], "GET", "/v1/%s/documents/shop-dev-orders/%s" % (database, order["id"]))
        assert status == 200, doc
        fields = doc["fields"]
        assert fields["email"] == {"stringValue": "ann@example.com"}
        assert fields["status"] == {"stringValue": "placed"} and fields["amount"] == {"doubleValue": 24.5}
        assert fields["items"]["arrayValue"]["values"][0]["mapValue"]["fields"]["qty"] == {"integerValue": "2"}

        def pull(topic):
            sub = "/v1/" + topic.replace("/topics/", "/subscriptions/") + "-check:pull"
            status, body = rest(urls["pubsub"], "POST", sub, {"maxMessages": 10})
            return [m["message"] for m in (body or {}).get("receivedMessages") or []]

        (event,) = pull(topics["order-events"])
        # What place-order publishes and sends carries its invocation's trace context (docs/tracing.md).
        traceparent = event["attributes"].pop("traceparent")
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", traceparent), traceparent
        assert event["attributes"] == {"event": "order.placed"}
        assert json.loads(base64.b64decode(event["data"]))["order_id"] == order["id"]
        (payment,) = pull(topics["payments"])
        assert payment["attributes"] == {"traceparent": traceparent}
        assert json.loads(base64.b64decode(payment["data"])) == {"order_id": order["id"], "amount": 24.5}

        # GET /orders/{id} reads it back through Firestore.
        assert call(get, "GET", "/orders/" + order["id"]) == (200, order)
        assert call(get, "GET", "/orders/nope")[0] == 404

        # The payments queue pushes the message to charge-payment (Node.js): the order becomes paid.
        envelope = {"message": payment, "subscription": "projects/%s/subscriptions/shop-dev-payments" % PROJECT,
                    "deliveryAttempt": 1}
        status, body = call(charge, "POST", "/", envelope)
        assert status == 204, "%s %s %s" % (status, body, servers[2].log())
        status, doc = rest(urls["firestore"], "GET", "/v1/%s/documents/shop-dev-orders/%s" % (database, order["id"]))
        assert doc["fields"]["status"] == {"stringValue": "paid"} and "paid_at" in doc["fields"]
        assert '"charge":"paid"' in servers[2].log()

        # A poison message is not acknowledged: Pub/Sub redelivers it, then dead-letters it.
        poison = dict(payment, data=base64.b64encode(json.dumps({"order_id": order["id"], "amount": 0}).encode())
                      .decode(), messageId="poison-1")
        envelope = dict(envelope, message=poison, deliveryAttempt=2)
        assert call(charge, "POST", "/", envelope)[0] == 500
    finally:
        for s in servers:
            s.stop()
