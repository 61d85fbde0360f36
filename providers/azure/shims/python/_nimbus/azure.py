"""Azure Functions (Python v2 programming model) adapters of the Nimbus Python shim.

The generated ``function_app.py`` registers each trigger with ``azure.functions``
decorators and calls one adapter per trigger, e.g.::

    import azure.functions as func
    from _nimbus import azure as nimbus

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="orders/{id}", methods=["POST"])
    def place_order(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return nimbus.http(req, "orders/place.py:handler", context)

Adapters: ``http`` (HttpRequest -> HttpResponse), ``queue`` (Storage Queue
QueueMessage), ``service_bus`` (ServiceBusMessage or a list of them; topic or
queue per function.json triggers), ``timer`` (TimerRequest), ``blob``
(InputStream from a blob trigger: created), ``event_grid`` (EventGridEvent
``Microsoft.Storage.BlobCreated``/``BlobDeleted``) and ``cosmos`` (the Cosmos DB trigger's
DocumentList, the change feed of a table's container: one handler call per document, in order,
a tombstone as ``remove``; see ``_nimbus/azure_cosmos.py``). ``target`` is the handler
reference ``file:export`` (default: function.json's handler); ``context`` is the
optional ``func.Context`` (its invocation id becomes ``context.request_id``).
Azure's trigger payloads do not name their queue, topic or container reliably,
so the generated code should pass the neutral name: ``resource="payments"``
(queue, service_bus, blob, event_grid, cosmos) or ``schedule="nightly"`` (timer).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from . import azure_cosmos
from . import azure_resources  # noqa: F401 - registers the "azure" resource client factory
from . import core

PROVIDER = "azure"


def _function(target=None):
    return core.get_function(target=target, provider=PROVIDER)


def _ctx(fn, context):
    return fn.context(request_id=getattr(context, "invocation_id", None) if context is not None else None)


# --------------------------------------------------------------------------- HTTP


def _route_prefix(config):
    prefix = (config.get("azure") or {}).get("route_prefix", "api")
    return (prefix or "").strip("/")


def http_event(req, config: dict) -> dict:
    parts = urlsplit(req.url or "/")
    raw_path = parts.path or "/"
    prefix = _route_prefix(config)
    if prefix and (raw_path == "/" + prefix or raw_path.startswith("/" + prefix + "/")):
        raw_path = raw_path[len(prefix) + 1:] or "/"
    path = unquote(raw_path)
    method = (req.method or "GET").upper()
    headers = core.join_headers(req.headers.items())
    query = core.query_from_string(parts.query) if parts.query else {k: str(v) for k, v in (req.params or {}).items()}
    # The shim matches the route itself, the neutral way (most specific first, each segment
    # decoded on its own): the host orders an app's routes by function name, not precedence.
    route, params = core.match_route(config.get("triggers") or [], method, raw_path)
    if route is None:
        params = {k: str(v) for k, v in (getattr(req, "route_params", None) or {}).items()}
    body, is_b64 = core.body_of(req.get_body())
    return {
        "type": "http",
        "method": method,
        "path": path,
        "route": route,
        "path_params": params,
        "query": query,
        "headers": headers,
        "body": body,
        "is_base64": is_b64,
        "source_ip": core.first_ip(headers.get("x-forwarded-for")) or core.first_ip(headers.get("client-ip")),
    }


def http_response(res: dict):
    import azure.functions as func  # provided by the Azure Functions Python worker

    ct = None
    for k, v in res["headers"].items():
        if k.lower() == "content-type":
            ct = v if isinstance(v, str) else v[0]
    mimetype, charset = None, None
    if ct:
        mimetype = ct.split(";")[0].strip()
        for p in ct.split(";")[1:]:
            if p.strip().lower().startswith("charset="):
                charset = p.strip()[8:]
    resp = func.HttpResponse(body=core.http_body_bytes(res), status_code=res["status"],
                             mimetype=mimetype, charset=charset)
    for k, v in core.header_pairs(res["headers"]):
        resp.headers.add_header(k, v)
    return resp


def http(req, target: str | None = None, context=None):
    fn = _function(target)
    event = http_event(req, fn.config)
    if core.unrouted(event, fn.config):
        return http_response(core.NOT_FOUND)
    return http_response(core.normalize_http(fn.invoke(event, _ctx(fn, context))))


# --------------------------------------------------------------------------- queues & topics


def _named(config, resource, types):
    spec = (config.get("resources") or {}).get(resource) if resource else None
    if isinstance(spec, dict) and spec.get("type") in types:
        return resource, spec["type"]
    return None


def queue_event(msg, config: dict, resource: str | None = None) -> dict:
    source, _ = _named(config, resource, ("queue",)) or core.resolve_resource(config, ("queue",), [], resource)
    # A message sent with attributes by the Nimbus queue client is an envelope (azure_resources.py).
    body, attributes = azure_resources.unwrap_envelope(core.text_of(msg.get_body()))
    return {"type": "queue", "source": source, "messages": [{
        "id": msg.id,
        "body": body,
        "attributes": attributes,
        "receive_count": int(getattr(msg, "dequeue_count", None) or 1),
    }]}


def _run_batch(fn, event, context):
    failed = core.normalize_batch(fn.invoke(event, _ctx(fn, context)), event)
    if failed:  # no per-message settlement through the binding: fail the invocation
        raise core.BatchItemFailure(failed)


def queue(msg, target: str | None = None, context=None, *, resource: str | None = None):
    fn = _function(target)
    _run_batch(fn, queue_event(msg, fn.config, resource), context)


def service_bus_event(msgs, config: dict, resource: str | None = None) -> dict:
    if not isinstance(msgs, (list, tuple)):
        msgs = [msgs]
    name, etype = _named(config, resource, ("topic", "queue")) or core.resolve_resource(
        config, ("topic", "queue"), [], resource)
    messages = []
    for m in msgs:
        props = dict(getattr(m, "application_properties", None) or getattr(m, "user_properties", None) or {})
        item = {"id": m.message_id, "body": core.text_of(m.get_body()),
                "attributes": {k: str(v) for k, v in props.items()}}
        if etype == "queue":
            item["receive_count"] = int(getattr(m, "delivery_count", None) or 1)
        messages.append(item)
    return {"type": etype, "source": name, "messages": messages}


def service_bus(msgs, target: str | None = None, context=None, *, resource: str | None = None):
    fn = _function(target)
    _run_batch(fn, service_bus_event(msgs, fn.config, resource), context)


# --------------------------------------------------------------------------- timer


def timer_event(t, config: dict, schedule: str | None = None) -> dict:
    import datetime as _dt

    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    names = [x.get("name") for x in config.get("triggers") or [] if isinstance(x, dict) and x.get("type") == "schedule"]
    name = schedule if schedule in names else core.resolve_schedule(config, [schedule], schedule)
    return {"type": "schedule", "name": name, "time": core.rfc3339(now)}


def timer(t, target: str | None = None, context=None, *, schedule: str | None = None):
    fn = _function(target)
    fn.invoke(timer_event(t, fn.config, schedule), _ctx(fn, context))


# --------------------------------------------------------------------------- blobs


def _bucket(config, container, resource=None):
    named = _named(config, resource, ("bucket",))
    if named:
        return named[0]
    name, _ = core.resolve_resource(config, ("bucket",), [container], container)
    return name


def blob_event(stream, config: dict, resource: str | None = None) -> dict:
    full = stream.name or ""
    container, _, key = full.partition("/")
    length = getattr(stream, "length", None)
    return {"type": "bucket", "bucket": _bucket(config, container, resource), "key": key,
            "size": int(length) if length is not None else None, "action": "created"}


def blob(stream, target: str | None = None, context=None, *, resource: str | None = None):
    fn = _function(target)
    fn.invoke(blob_event(stream, fn.config, resource), _ctx(fn, context))


_BLOB_EVENTS = {"Microsoft.Storage.BlobCreated": "created", "Microsoft.Storage.BlobDeleted": "deleted"}


def event_grid_event(ev, config: dict, resource: str | None = None) -> dict:
    etype = ev.event_type
    action = _BLOB_EVENTS.get(etype)
    if action is None:
        raise core.EventError("unsupported Event Grid event %r (Nimbus handles BlobCreated and BlobDeleted)" % etype)
    subject = ev.subject or ""
    # /blobServices/default/containers/<container>/blobs/<key>
    container, key = "", ""
    if "/containers/" in subject:
        rest = subject.split("/containers/", 1)[1]
        container, _, key = rest.partition("/blobs/")
    data = ev.get_json() if hasattr(ev, "get_json") else (ev.data or {})
    size = (data or {}).get("contentLength") if action == "created" else None
    return {"type": "bucket", "bucket": _bucket(config, container, resource), "key": key,
            "size": int(size) if size is not None else None, "action": action}


def event_grid(ev, target: str | None = None, context=None, *, resource: str | None = None):
    fn = _function(target)
    fn.invoke(event_grid_event(ev, fn.config, resource), _ctx(fn, context))


# --------------------------------------------------------------------------- tables (Cosmos DB change feed)

ALL_TABLE_EVENTS = ("insert", "modify", "remove")


def _table_events(config, table):
    """The actions the function's `table` triggers on ``table`` ask for."""
    wanted = set()
    for t in config.get("triggers") or []:
        if isinstance(t, dict) and t.get("type") == "table" and t.get("resource") in (None, table):
            wanted.update(t.get("events") or ALL_TABLE_EVENTS)
    return wanted or set(ALL_TABLE_EVENTS)


def _document(d):
    if isinstance(d, dict):
        return d
    if hasattr(d, "to_dict"):
        return d.to_dict()
    return d  # not a document: table_event says so


def cosmos_events(docs, config: dict, resource: str | None = None) -> list:
    """The neutral events of a Cosmos DB trigger's documents, those the triggers ask for."""
    named = _named(config, resource, ("table",))
    table = named[0] if named else core.resolve_resource(config, ("table",), [], resource)[0]
    wanted = _table_events(config, table)
    if docs is None:
        return []
    if isinstance(docs, (dict, str, bytes)) or not hasattr(docs, "__iter__"):
        docs = [docs]
    out = []
    for d in docs:
        if isinstance(d, (str, bytes)):
            import json

            d = json.loads(d)
        event = azure_cosmos.table_event(_document(d), table)
        if event["action"] in wanted:
            out.append(event)
    return out


def cosmos(docs, target: str | None = None, context=None, *, resource: str | None = None):
    """A Cosmos DB trigger invocation: the handler once per event, in order; the first failure
    fails the invocation (the host then retries the batch when a retry policy is set)."""
    fn = _function(target)
    for event in cosmos_events(docs, fn.config, resource):
        fn.invoke(event, _ctx(fn, context))
