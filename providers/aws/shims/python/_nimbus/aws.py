"""AWS Lambda adapter of the Nimbus Python shim.

Lambda handler string: ``_nimbus_aws.handler`` (the root module re-exports
``handler`` from here). Native events handled: API Gateway HTTP API (payload
2.0, also Lambda function URLs) and REST API (payload 1.0), SQS, SNS,
EventBridge scheduled events / EventBridge Scheduler, S3 notifications and
DynamoDB Streams. See docs/function-contract.md.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from urllib.parse import quote, unquote, unquote_plus

from . import core
from . import aws_resources  # noqa: F401 - registers the "aws" resource client factory
from . import aws_secrets

PROVIDER = "aws"


def init():
    """Cold start: resolve the function's secrets (NIMBUS_SECRET_<VAR> references) into its
    environment, then load function.json and the user's handler (errors surface as init errors)."""
    aws_secrets.resolve()
    return core.get_function(provider=PROVIDER)


# --------------------------------------------------------------------------- detection


def kind_of(event) -> str:
    if not isinstance(event, dict):
        raise core.EventError("unsupported AWS event: %s" % type(event).__name__)
    if "requestContext" in event and ("httpMethod" in event or "rawPath" in event or event.get("version") == "2.0"):
        return "http"
    records = event.get("Records")
    if isinstance(records, list) and records:
        r = records[0]
        src = r.get("eventSource") or r.get("EventSource")
        if src == "aws:sqs":
            return "queue"
        if src == "aws:sns":
            return "topic"
        if src == "aws:s3":
            return "bucket"
        if src == "aws:dynamodb":
            return "table"
        raise core.EventError("unsupported AWS event source %r" % src)
    if event.get("detail-type") == "Scheduled Event" or event.get("source") in ("aws.events", "aws.scheduler"):
        return "schedule"
    raise core.EventError("unsupported AWS event (keys: %s)" % ", ".join(sorted(event)[:10]))


# --------------------------------------------------------------------------- native -> neutral


def _route_from_key(route_key):
    if not route_key or route_key == "$default":
        return None
    parts = route_key.split(" ", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def http_event(ev: dict, config: dict) -> dict:
    rc = ev.get("requestContext") or {}
    if "rawPath" in ev or ev.get("version") == "2.0":
        h = rc.get("http") or {}
        method = (h.get("method") or "GET").upper()
        raw_path = ev.get("rawPath") or h.get("path") or "/"
        path = unquote(raw_path)
        headers = core.join_headers((ev.get("headers") or {}).items())
        cookies = ev.get("cookies") or []
        if cookies:
            c = "; ".join(cookies)
            headers["cookie"] = headers["cookie"] + "; " + c if "cookie" in headers else c
        query = {k: ("" if v is None else str(v)) for k, v in (ev.get("queryStringParameters") or {}).items()}
        route = _route_from_key(ev.get("routeKey") or rc.get("routeKey"))
        source_ip = h.get("sourceIp")
    else:
        method = (ev.get("httpMethod") or "GET").upper()
        path = ev.get("path") or rc.get("path") or "/"
        raw_path = None
        if ev.get("multiValueHeaders"):
            headers = core.join_headers((k, v) for k, vs in ev["multiValueHeaders"].items() for v in (vs or []))
        else:
            headers = core.join_headers((ev.get("headers") or {}).items())
        if ev.get("multiValueQueryStringParameters"):
            query = core.join_query((k, v) for k, vs in ev["multiValueQueryStringParameters"].items() for v in (vs or []))
        else:
            query = {k: ("" if v is None else str(v)) for k, v in (ev.get("queryStringParameters") or {}).items()}
        route = ev.get("resource") or rc.get("resourcePath")
        source_ip = (rc.get("identity") or {}).get("sourceIp")
    path_params = {k: str(v) for k, v in (ev.get("pathParameters") or {}).items()}
    if route is not None and raw_path is not None:
        # The route API Gateway chose, its parameters read from the raw path the neutral way
        # (each segment decoded on its own), so they are the same on every target.
        own = core.match_template(route, raw_path)
        if own is not None:
            path_params = own
    elif route is None:
        route, matched = core.match_route(config.get("triggers") or [], method, raw_path or quote(path))
        if not path_params:
            path_params = matched
    body = ev.get("body")
    if body == "":
        body = None
    return {
        "type": "http",
        "method": method,
        "path": path,
        "route": route,
        "path_params": path_params,
        "query": query,
        "headers": headers,
        "body": body,
        "is_base64": bool(ev.get("isBase64Encoded")) and body is not None,
        "source_ip": source_ip,
    }


def _arn_name(arn: str) -> str:
    return re.split(r"[:/]", arn or "")[-1] if arn else ""


def queue_event(ev: dict, config: dict) -> dict:
    records = ev["Records"]
    arn = records[0].get("eventSourceARN") or ""
    name = _arn_name(arn)
    source, _ = core.resolve_resource(config, ("queue",), [arn, name], name or None)
    messages = []
    for r in records:
        attrs = {}
        for k, a in (r.get("messageAttributes") or {}).items():
            a = a or {}
            dt = a.get("dataType") or "String"
            v = a.get("binaryValue") if dt.startswith("Binary") else a.get("stringValue")
            if v is not None:
                attrs[k] = str(v)
        try:
            rc = int((r.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        except ValueError:
            rc = 1
        messages.append({"id": r["messageId"], "body": r.get("body") or "", "attributes": attrs, "receive_count": rc})
    return {"type": "queue", "source": source, "messages": messages}


def topic_event(ev: dict, config: dict) -> dict:
    records = ev["Records"]
    arn = (records[0].get("Sns") or {}).get("TopicArn") or ""
    name = _arn_name(arn)
    source, _ = core.resolve_resource(config, ("topic",), [arn, name], name or None)
    messages = []
    for r in records:
        s = r.get("Sns") or {}
        attrs = {}
        for k, a in (s.get("MessageAttributes") or {}).items():
            if isinstance(a, dict) and a.get("Value") is not None:
                attrs[k] = str(a["Value"])
        messages.append({"id": s.get("MessageId"), "body": s.get("Message") or "", "attributes": attrs})
    return {"type": "topic", "source": source, "messages": messages}


def schedule_event(ev: dict, config: dict) -> dict:
    arns = ev.get("resources") or []
    arn = arns[0] if arns else ""
    native = arn.rsplit("/", 1)[-1] if arn else None
    name = core.resolve_schedule(config, [arn, native], native)
    return {"type": "schedule", "name": name, "time": core.rfc3339(ev.get("time"))}


def bucket_events(ev: dict, config: dict) -> list:
    out = []
    for r in ev["Records"]:
        s3 = r.get("s3") or {}
        b = s3.get("bucket") or {}
        o = s3.get("object") or {}
        en = r.get("eventName") or ""
        if en.startswith("ObjectCreated"):
            action = "created"
        elif en.startswith("ObjectRemoved") or en.startswith("LifecycleExpiration"):
            action = "deleted"
        else:
            raise core.EventError("unsupported S3 event %r (Nimbus handles ObjectCreated and ObjectRemoved)" % en)
        bucket, _ = core.resolve_resource(config, ("bucket",), [b.get("name"), b.get("arn")], b.get("name"))
        size = o.get("size")
        out.append({
            "type": "bucket",
            "bucket": bucket,
            "key": unquote_plus(o.get("key") or ""),
            "size": int(size) if size is not None else None,
            "action": action,
        })
    return out


def _num(s: str):
    s = str(s)
    if re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    return float(s)


def unmarshal(av):
    """DynamoDB AttributeValue JSON -> plain JSON value (B/BS stay base64 strings)."""
    if not isinstance(av, dict) or len(av) != 1:
        raise core.EventError("malformed DynamoDB AttributeValue %r" % (av,))
    (t, v), = av.items()
    if t == "S":
        return v
    if t == "N":
        return _num(v)
    if t == "BOOL":
        return bool(v)
    if t == "NULL":
        return None
    if t == "M":
        return {k: unmarshal(x) for k, x in v.items()}
    if t == "L":
        return [unmarshal(x) for x in v]
    if t in ("SS", "BS"):
        return list(v)
    if t == "NS":
        return [_num(x) for x in v]
    if t == "B":
        return v
    raise core.EventError("unsupported DynamoDB AttributeValue type %r" % t)


def unmarshal_item(item):
    if item is None:
        return None
    return {k: unmarshal(v) for k, v in item.items()}


_ACTIONS = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}


def table_events(ev: dict, config: dict) -> list:
    out = []
    for r in ev["Records"]:
        arn = r.get("eventSourceARN") or ""
        table_arn = arn.split("/stream/")[0]
        tname = table_arn.split(":table/")[-1] if ":table/" in table_arn else _arn_name(table_arn)
        table, _ = core.resolve_resource(config, ("table",), [arn, table_arn, tname], tname or None)
        d = r.get("dynamodb") or {}
        action = _ACTIONS.get(r.get("eventName"))
        if action is None:
            raise core.EventError("unsupported DynamoDB stream event %r" % r.get("eventName"))
        out.append({
            "type": "table",
            "table": table,
            "action": action,
            "key": unmarshal_item(d.get("Keys")) or {},
            "old": unmarshal_item(d.get("OldImage")),
            "new": unmarshal_item(d.get("NewImage")),
        })
    return out


_RESOURCE_FIELDS = ("NAME", "ARN", "URL", "STREAM_ARN")


def with_env_natives(config: dict, env=None) -> dict:
    """function.json with the deployment's native names merged into ``native``.

    Lowering sets ``NIMBUS_RESOURCE_<R>_{NAME,ARN,URL,STREAM_ARN}`` for every resource
    in ``resources`` and ``NIMBUS_SCHEDULE_<T>_ARN`` for every schedule trigger
    (crates/nimbus-aws/src/env.rs); packaging leaves ``native`` empty (see
    ``core.with_env_natives``)."""
    return core.with_env_natives(config, _RESOURCE_FIELDS, "ARN", env)


def to_neutral(event: dict, config: dict):
    """Native event -> neutral event, or a list of them (S3 / DynamoDB: one per record)."""
    k = kind_of(event)
    if k != "http":
        config = with_env_natives(config)
    if k == "http":
        return http_event(event, config)
    if k == "queue":
        return queue_event(event, config)
    if k == "topic":
        return topic_event(event, config)
    if k == "schedule":
        return schedule_event(event, config)
    if k == "bucket":
        return bucket_events(event, config)
    return table_events(event, config)


# --------------------------------------------------------------------------- neutral -> native


def http_response(res: dict, v2: bool = True) -> dict:
    """Normalized http result -> API Gateway proxy response."""
    headers, multi, cookies = {}, {}, []
    for k, v in core.header_pairs(res["headers"]):
        if v2 and k.lower() == "set-cookie":
            cookies.append(v)
        elif v2:
            headers[k] = headers[k] + ", " + v if k in headers else v
        else:
            multi.setdefault(k, []).append(v)
    out = {"statusCode": res["status"], "body": res["body"] if res["body"] is not None else "",
           "isBase64Encoded": bool(res["is_base64"])}
    if v2:
        out["headers"] = headers
        if cookies:
            out["cookies"] = cookies
    else:
        out["headers"] = {k: vs[-1] for k, vs in multi.items()}
        out["multiValueHeaders"] = multi
    return out


# --------------------------------------------------------------------------- the Lambda handler


def _context(fn, lambda_context):
    rid = getattr(lambda_context, "aws_request_id", None)
    deadline = None
    rem = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if callable(rem):
        deadline = core.now_ms() + int(rem())
    return fn.context(request_id=rid, deadline_ms=deadline)


def handler(event, lambda_context=None):
    fn = init()  # after a failed cold start, tries again; warm: cached
    ctx = _context(fn, lambda_context)
    kind = kind_of(event)
    neutral = to_neutral(event, fn.config)
    if kind == "http":
        res = core.normalize_http(fn.invoke(neutral, ctx))
        return http_response(res, v2=("rawPath" in event or event.get("version") == "2.0"))
    if kind == "queue":
        failed = core.normalize_batch(fn.invoke(neutral, ctx), neutral)
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    if kind == "topic":
        failed = core.normalize_batch(fn.invoke(neutral, ctx), neutral)
        if failed:
            raise core.BatchItemFailure(failed)
        return None
    if kind == "schedule":
        fn.invoke(neutral, ctx)
        return None
    if kind == "bucket":
        for e in neutral:
            fn.invoke(e, ctx)
        return None
    # DynamoDB Streams: records in order; on the first failure report its sequence
    # number (ReportBatchItemFailures) so Lambda retries from there.
    for e, r in zip(neutral, event["Records"]):
        try:
            fn.invoke(e, ctx)
        except Exception:
            seq = (r.get("dynamodb") or {}).get("SequenceNumber")
            if seq is None:
                raise
            traceback.print_exc(file=sys.stderr)
            return {"batchItemFailures": [{"itemIdentifier": seq}]}
    return {"batchItemFailures": []}
