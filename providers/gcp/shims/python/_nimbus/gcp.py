"""Google Cloud Functions (gen2) adapter of the Nimbus Python shim.

Entry point: ``main.py`` at the package root exports ``nimbus_entry`` (the
functions-framework target). ``nimbus_entry`` serves both signature types:
called with a Flask request (``http``) or with a CloudEvent (``cloudevent``).
When ``functions_framework`` is importable, ``main.py`` also registers
``nimbus_entry`` with the signature type from function.json
(``"gcp": {"signature": "http" | "cloudevent"}``), which takes precedence over
``--signature-type``/``FUNCTION_SIGNATURE_TYPE``.

Native events handled: HTTP, Cloud Scheduler HTTP POST, Pub/Sub push deliveries (a queue's
subscription pushes ``{"message", "subscription", "deliveryAttempt"}`` to the function's URL:
2xx acknowledges, anything else has Pub/Sub redeliver), and the CloudEvents
``google.cloud.pubsub.topic.v1.messagePublished``,
``google.cloud.storage.object.v1.finalized|deleted``,
``google.cloud.firestore.document.v1.written|created|updated|deleted`` (JSON
encoding only) and ``google.cloud.scheduler.job.v1.executed``.

Signature: ``http`` when the function has an http, schedule or queue trigger (or none), else
``cloudevent``. Under ``http`` a request is, in this order: a CloudEvent (binary or structured
content mode, when the function has an Eventarc trigger: topic, bucket or table), a Pub/Sub push
(when it has a queue trigger), a Cloud Scheduler call (when it has a schedule trigger), else an
HTTP request.

Eventarc cannot filter objects by name: a bucket event whose key matches none of the function's
bucket triggers (``prefix``/``suffix``, and the action in ``events``) is acknowledged without
calling the handler, so a function that writes into the bucket it is triggered by (a thumbnail
maker writing ``thumbnails/`` on ``uploads/``) does not trigger itself.

CORS: API Gateway has none, so the shim answers preflights (the handler never sees one) and puts
the function's policy on responses (``gcp_cors``).

Native names: lowering sets ``NIMBUS_RESOURCE_<R>_{COLLECTION,DATABASE,TOPIC,SUBSCRIPTION,NAME}``
and ``NIMBUS_SCHEDULE_<T>_JOB`` (crates/nimbus-gcp/src/env.rs); they are merged into
function.json's ``native`` blocks so events map to neutral names exactly.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from urllib.parse import quote

from . import core
from . import gcp_cors
from . import gcp_resources  # noqa: F401 - registers the "gcp" resource client factory

PROVIDER = "gcp"


def init():
    return core.get_function(provider=PROVIDER)


def _trigger_types(config: dict) -> set:
    return {t.get("type") for t in config.get("triggers") or [] if isinstance(t, dict)}


def signature(config: dict) -> str:
    """``http`` or ``cloudevent``: function.json ``gcp.signature``, else derived from the triggers
    like the packager does (``http`` with an http, schedule or queue trigger or none, else
    ``cloudevent``)."""
    sig = ((config.get("gcp") or {}).get("signature") or "").lower()
    if sig in ("http", "cloudevent"):
        return sig
    types = _trigger_types(config)
    return "http" if not types or types & {"http", "schedule", "queue"} else "cloudevent"


# --------------------------------------------------------------------------- native names

_RESOURCE_FIELDS = ("COLLECTION", "DATABASE", "TOPIC", "SUBSCRIPTION", "NAME")


def with_env_natives(config: dict, env=None) -> dict:
    """function.json with the deployment's native names merged into ``native`` (see the module
    docs and ``core.with_env_natives``): ``NIMBUS_RESOURCE_<R>_{COLLECTION,DATABASE,TOPIC,
    SUBSCRIPTION,NAME}`` and ``NIMBUS_SCHEDULE_<T>_JOB`` (crates/nimbus-gcp/src/env.rs)."""
    return core.with_env_natives(config, _RESOURCE_FIELDS, "JOB", env)


def register_signature(func) -> str | None:
    """Register ``func`` with functions-framework under function.json's signature type."""
    try:
        import functions_framework  # provided by the GCP Python runtime
    except ImportError:
        return None
    sig = signature(init().config)
    if sig == "cloudevent":
        functions_framework.cloud_event(func)
    else:
        functions_framework.http(func)
    return sig


# --------------------------------------------------------------------------- CloudEvents


def cloud_event_from_sdk(ev) -> dict:
    """A ``cloudevents`` SDK event -> ``{attribute: value, ..., "data": data}``."""
    if isinstance(ev, dict):
        return dict(ev)
    attrs = dict(ev.get_attributes()) if hasattr(ev, "get_attributes") else {}
    data = ev.get_data() if hasattr(ev, "get_data") else getattr(ev, "data", None)
    out = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v)) for k, v in attrs.items()}
    out["data"] = data
    return out


def looks_like_cloud_event(headers: dict) -> bool:
    ct = (headers.get("content-type") or "").split(";")[0].strip().lower()
    return ct == "application/cloudevents+json" or all(
        headers.get(h) for h in ("ce-id", "ce-type", "ce-source", "ce-specversion"))


def cloud_event_from_http(headers: dict, raw: bytes) -> dict:
    """Parse a CloudEvent delivered over HTTP (binary or structured content mode)."""
    ct = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if ct == "application/cloudevents+json":
        obj = json.loads(raw.decode("utf-8"))
        if "data_base64" in obj:
            obj["data"] = base64.b64decode(obj.pop("data_base64"))
        return obj
    ce = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    if ct:
        ce["datacontenttype"] = headers.get("content-type")
    if ct.endswith("json") and raw:
        ce["data"] = json.loads(raw.decode("utf-8"))
    else:
        ce["data"] = raw
    return ce


def _json_data(ce: dict, what: str):
    data = ce.get("data")
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = json.loads(data)
        except ValueError:
            ct = ce.get("datacontenttype") or "unknown"
            raise core.EventError(
                "%s CloudEvent %s has data that is not JSON (content type %s)%s" % (
                    what, ce.get("id"), ct,
                    "; Nimbus reads the JSON encoding only: deploy the trigger with event data content type "
                    "application/json" if "protobuf" in ct or what == "Firestore" else ""))
    if not isinstance(data, dict):
        raise core.EventError("%s CloudEvent %s carries no data" % (what, ce.get("id")))
    return data


def _source_path(source: str) -> str:
    """``//pubsub.googleapis.com/projects/p/topics/t`` -> ``projects/p/topics/t``."""
    s = source or ""
    if s.startswith("//"):
        s = s[2:].split("/", 1)[1] if "/" in s[2:] else ""
    return s


def pubsub_event(ce: dict, config: dict) -> dict:
    data = _json_data(ce, "Pub/Sub")
    msg = data.get("message") or {}
    topic_path = _source_path(ce.get("source"))
    topic = topic_path.rsplit("/", 1)[-1] if topic_path else None
    sub_path = data.get("subscription") or ""
    cands = [topic_path, topic, sub_path, sub_path.rsplit("/", 1)[-1] if sub_path else None]
    name, etype = core.resolve_resource(config, ("topic", "queue"), cands, topic)
    m = {"id": msg.get("messageId") or msg.get("message_id") or ce.get("id"),
         "body": core.b64decode_text(msg.get("data")),
         "attributes": {k: str(v) for k, v in (msg.get("attributes") or {}).items()}}
    if etype == "queue":
        try:
            m["receive_count"] = int(data.get("deliveryAttempt") or msg.get("deliveryAttempt") or 1)
        except (TypeError, ValueError):
            m["receive_count"] = 1
    return {"type": etype, "source": name, "messages": [m]}


def storage_event(ce: dict, config: dict) -> dict:
    t = ce.get("type") or ""
    if t.endswith(".finalized"):
        action = "created"
    elif t.endswith(".deleted"):
        action = "deleted"
    else:
        raise core.EventError("unsupported Cloud Storage event %r (Nimbus handles finalized and deleted)" % t)
    data = _json_data(ce, "Cloud Storage")
    b = data.get("bucket") or _source_path(ce.get("source")).rsplit("/", 1)[-1]
    bucket, _ = core.resolve_resource(config, ("bucket",), [b, _source_path(ce.get("source"))], b)
    size = data.get("size")
    return {"type": "bucket", "bucket": bucket, "key": data.get("name") or "",
            "size": int(size) if size not in (None, "") else None, "action": action}


def bucket_wanted(event: dict, config: dict) -> bool:
    """Whether a bucket event is one of the function's bucket triggers: its resource, one of its
    ``events``, the key within its ``prefix`` and ``suffix``. True when no bucket trigger names
    the resource (nothing to filter by)."""
    triggers = [t for t in config.get("triggers") or []
                if isinstance(t, dict) and t.get("type") == "bucket" and t.get("resource") == event.get("bucket")]
    if not triggers:
        return True
    key = event.get("key") or ""
    for t in triggers:
        events = t.get("events") or ["created", "deleted"]
        if event.get("action") in events and key.startswith(t.get("prefix") or "") \
                and key.endswith(t.get("suffix") or ""):
            return True
    return False


def firestore_value(v):
    """Firestore ``Value`` (JSON form) -> plain JSON value."""
    if not isinstance(v, dict):
        return v
    if "nullValue" in v:
        return None
    if "booleanValue" in v:
        return bool(v["booleanValue"])
    if "integerValue" in v:
        return int(v["integerValue"])
    if "doubleValue" in v:
        d = v["doubleValue"]
        return float(d) if isinstance(d, str) else d
    if "stringValue" in v:
        return v["stringValue"]
    if "timestampValue" in v:
        return v["timestampValue"]
    if "bytesValue" in v:
        return v["bytesValue"]
    if "referenceValue" in v:
        return v["referenceValue"]
    if "geoPointValue" in v:
        g = v["geoPointValue"] or {}
        return {"latitude": g.get("latitude", 0), "longitude": g.get("longitude", 0)}
    if "arrayValue" in v:
        return [firestore_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    if "mapValue" in v:
        return {k: firestore_value(x) for k, x in ((v["mapValue"] or {}).get("fields") or {}).items()}
    raise core.EventError("unsupported Firestore value %r" % (v,))


def _doc(d):
    return d if isinstance(d, dict) and (d.get("name") or d.get("fields")) else None


def firestore_event(ce: dict, config: dict) -> dict:
    data = _json_data(ce, "Firestore")
    new_doc, old_doc = _doc(data.get("value")), _doc(data.get("oldValue"))
    name = (new_doc or old_doc or {}).get("name") or ""
    rel = name.split("/documents/", 1)[1] if "/documents/" in name else (ce.get("document") or "")
    coll_path, _, doc_id = rel.rpartition("/")
    coll_id = coll_path.rsplit("/", 1)[-1]
    table, _ = core.resolve_resource(config, ("table",), [coll_path, coll_id], coll_id or None)
    new = {k: firestore_value(v) for k, v in (new_doc.get("fields") or {}).items()} if new_doc else None
    old = {k: firestore_value(v) for k, v in (old_doc.get("fields") or {}).items()} if old_doc else None
    t = ce.get("type") or ""
    if t.endswith(".created"):
        action = "insert"
    elif t.endswith(".deleted"):
        action = "remove"
    elif t.endswith(".updated"):
        action = "modify"
    else:
        action = "insert" if old is None else ("remove" if new is None else "modify")
    spec = (config.get("resources") or {}).get(table) or {}
    key_fields = spec.get("key") or ["id"]
    if isinstance(key_fields, str):
        key_fields = [key_fields]
    item = new if new is not None else (old or {})
    if len(key_fields) == 1:
        k = key_fields[0]
        key = {k: item.get(k, doc_id) if item else doc_id}
    else:
        key = {k: item.get(k) for k in key_fields if k in item} or {key_fields[0]: doc_id}
    return {"type": "table", "table": table, "action": action, "key": key, "old": old, "new": new}


def scheduler_event(ce: dict, config: dict) -> dict:
    job_path = _source_path(ce.get("source"))
    job = job_path.rsplit("/", 1)[-1] if job_path else None
    name = core.resolve_schedule(config, [job_path, job], job)
    return {"type": "schedule", "name": name, "time": core.rfc3339(ce.get("time"))}


def cloud_event_to_neutral(ce: dict, config: dict) -> dict:
    t = ce.get("type") or ""
    if t == "google.cloud.pubsub.topic.v1.messagePublished":
        return pubsub_event(ce, config)
    if t.startswith("google.cloud.storage.object.v1."):
        return storage_event(ce, config)
    if t.startswith("google.cloud.firestore.document.v1."):
        return firestore_event(ce, config)
    if t == "google.cloud.scheduler.job.v1.executed":
        return scheduler_event(ce, config)
    raise core.EventError("unsupported CloudEvent type %r" % t)


# --------------------------------------------------------------------------- HTTP


def _raw_path(req):
    """The request's path as sent, percent-encoding kept: gunicorn (Cloud Functions) puts it in
    ``RAW_URI``, werkzeug's server in ``REQUEST_URI``; ``None`` when neither did."""
    environ = getattr(req, "environ", None) or {}
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not uri:
        return None
    uri = str(uri).split("?", 1)[0]
    if "://" in uri:
        uri = "/" + uri.split("://", 1)[1].partition("/")[2]
    return uri or "/"


def http_event(method, path, query_string, headers: dict, raw: bytes, remote_addr, config: dict,
               raw_path=None) -> dict:
    """``path`` is decoded; ``raw_path`` the path as sent (percent-encoded), when the server kept it."""
    route, params = core.match_route(config.get("triggers") or [], method, raw_path or quote(path or "/"))
    body, is_b64 = core.body_of(raw)
    return {
        "type": "http",
        "method": method.upper(),
        "path": path or "/",
        "route": route,
        "path_params": params,
        "query": core.query_from_string(query_string),
        "headers": headers,
        "body": body,
        "is_base64": is_b64,
        "source_ip": core.first_ip(headers.get("x-forwarded-for")) or remote_addr,
    }


def schedule_from_http(headers: dict, config: dict) -> dict:
    job = headers.get("x-cloudscheduler-jobname")
    short = job.rsplit("/", 1)[-1] if job else None
    name = core.resolve_schedule(config, [job, short], short)
    t = headers.get("x-cloudscheduler-scheduletime")
    return {"type": "schedule", "name": name, "time": core.rfc3339(t) if t else core.rfc3339()}


def is_schedule_request(headers: dict, config: dict) -> bool:
    types = {t.get("type") for t in config.get("triggers") or [] if isinstance(t, dict)}
    if "schedule" not in types:
        return False
    return headers.get("x-cloudscheduler") == "true" or "http" not in types


def push_envelope(headers: dict, raw: bytes):
    """The body of a Pub/Sub push delivery (``{"message": {...}, "subscription": "..."}``), or None."""
    ct = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if ct not in ("application/json", "") or not raw:
        return None
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("message"), dict) and isinstance(body.get("subscription"), str):
        return body
    return None


def push_event(envelope: dict, config: dict) -> dict:
    """A Pub/Sub push delivery -> a queue (or topic) event of one message."""
    msg = envelope.get("message") or {}
    sub = envelope.get("subscription") or ""
    short = sub.rsplit("/", 1)[-1] if sub else None
    name, etype = core.resolve_resource(config, ("queue", "topic"), [sub, short], short)
    m = {"id": msg.get("messageId") or msg.get("message_id"),
         "body": core.b64decode_text(msg.get("data")),
         "attributes": {k: str(v) for k, v in (msg.get("attributes") or {}).items()}}
    if etype == "queue":
        try:
            m["receive_count"] = int(envelope.get("deliveryAttempt") or 1)
        except (TypeError, ValueError):
            m["receive_count"] = 1
    return {"type": etype, "source": name, "messages": [m]}


def _flask_response(res: dict):
    return core.http_body_bytes(res), res["status"], core.header_pairs(res["headers"])


def handle_request(fn, req):
    """Serve a Flask request (``http`` signature)."""
    headers = core.join_headers(req.headers.items())
    raw = req.get_data()
    ctx_id = headers.get("function-execution-id") or headers.get("ce-id")
    types = _trigger_types(fn.config)
    events = signature(fn.config) == "cloudevent" or types & {"topic", "bucket", "table", "queue"}
    if events and looks_like_cloud_event(headers):
        handle_cloud_event(fn, cloud_event_from_http(headers, raw))
        return "OK", 200, [("content-type", "text/plain; charset=utf-8")]
    envelope = push_envelope(headers, raw) if "queue" in types and req.method == "POST" else None
    if envelope is not None:
        handle_push(fn, envelope, ctx_id)
        return b"", 204, []
    if is_schedule_request(headers, fn.config):
        fn.invoke(schedule_from_http(headers, fn.config), fn.context(request_id=ctx_id))
        return b"", 204, []
    policy = gcp_cors.policy_of(fn.config)
    answer = gcp_cors.preflight(policy, req.method, headers) if policy else None
    if answer is not None:  # the handler never sees a preflight
        return answer
    qs = req.query_string.decode("latin-1") if isinstance(req.query_string, bytes) else (req.query_string or "")
    event = http_event(req.method, req.path, qs, headers, raw, req.remote_addr, fn.config, _raw_path(req))
    if core.unrouted(event, fn.config):
        res = core.NOT_FOUND
    else:
        res = core.normalize_http(fn.invoke(event, fn.context(request_id=ctx_id)))
    body, status, pairs = _flask_response(res)
    if policy:
        pairs = gcp_cors.on_response(policy, headers, pairs)
    return body, status, pairs


def handle_push(fn, envelope: dict, request_id=None):
    """A Pub/Sub push delivery: the handler's failure (a raise, or the message in ``failed``)
    raises, which answers 500, so Pub/Sub redelivers (and dead-letters after the queue's
    ``max_receives``)."""
    config = with_env_natives(fn.config)
    event = push_event(envelope, config)
    message_id = event["messages"][0]["id"]
    result = fn.invoke(event, fn.context(request_id=request_id or message_id))
    failed = core.normalize_batch(result, event)
    if failed:
        raise core.BatchItemFailure(failed)


def handle_cloud_event(fn, ce: dict):
    config = with_env_natives(fn.config)
    event = cloud_event_to_neutral(ce, config)
    if event["type"] == "bucket" and not bucket_wanted(event, config):
        print("nimbus: %s %s/%s matches none of the function's bucket triggers: acknowledged, not handled"
              % (event["action"], event["bucket"], event["key"]), file=sys.stderr)
        return None
    result = fn.invoke(event, fn.context(request_id=ce.get("id")))
    if event["type"] in ("queue", "topic"):
        failed = core.normalize_batch(result, event)
        if failed:  # one message per delivery: fail it so Pub/Sub redelivers
            raise core.BatchItemFailure(failed)
    return None


def entry(arg):
    """``nimbus_entry``: a Flask request (http signature) or a CloudEvent (cloudevent signature)."""
    fn = init()
    if hasattr(arg, "get_data") and hasattr(arg, "headers") and hasattr(arg, "method"):
        return handle_request(fn, arg)
    return handle_cloud_event(fn, cloud_event_from_sdk(arg))
