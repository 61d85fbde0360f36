"""Nimbus GCP resource clients (Python): ``context.resources[name]`` inside Cloud Functions.

table -> Firestore, queue and topic -> Pub/Sub, bucket -> Cloud Storage, through Google's client
libraries (``google-cloud-firestore``, ``google-cloud-pubsub``, ``google-cloud-storage``, which
``nimbus build -p gcp`` lists in the package's requirements.txt: providers/gcp/shims/python/
requirements.txt). The libraries are imported and their clients created lazily, once per process,
and shared by every resource of that service. Credentials are the runtime's (Application Default
Credentials); the project is ``NIMBUS_GCP_PROJECT`` (set by lowering), else the libraries' own
detection. The libraries honour Google's emulator variables: ``FIRESTORE_EMULATOR_HOST``,
``PUBSUB_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``.

Native names come from the function's environment, set by lowering (crates/nimbus-gcp/src/env.rs),
``NIMBUS_RESOURCE_<R>_<FIELD>`` with ``<R>`` the neutral name upper-cased and ``-`` as ``_``; a
non-empty string in the resource's function.json ``native`` block is the fallback:

  table:  COLLECTION (the collection id) and DATABASE (``projects/P/databases/D``)
  queue:  TOPIC (``projects/P/topics/T``: sending publishes to the queue's topic)
  topic:  TOPIC
  bucket: NAME (the bucket's name)

**Tables.** One document per item, the whole item as its fields. The document id is the item's
key: its values' text (numbers in decimal), every character but ``A-Z a-z 0-9 -`` percent-encoded
(UTF-8, ``%XX``), joined with ``,`` when the table has a sort key (``{"customer": "c1", "id":
"o/1"}`` -> ``c1,o%2F1``) — the same in every language, and always a valid Firestore id. Keys are
strings or numbers. ``query`` filters on the partition key and ``query``/``scan`` return items in
document-id order.

**Queues.** Pub/Sub has no delivery delay: ``send(..., delay_seconds=N)`` with ``N > 0`` raises
``ResourceError`` of type ``BadRequest``. **Buckets.** ``delete`` of a missing object succeeds
(as on the other providers); ``get`` of one returns ``None``.

Same API and argument checks as the other providers' clients (``_nimbus/args.py``). Failures
reported by Google become ``ResourceError`` with ``type`` one of ``AccessDenied``, ``NotFound``,
``BadRequest``, ``Conflict``, ``Throttled``, ``Unavailable``, ``Internal`` (and ``NotConfigured``
for a missing environment variable), ``message`` Google's message and ``code`` Google's status
(``NOT_FOUND``, ``PERMISSION_DENIED``, ...). On import this module registers the factory of
provider ``"gcp"``. See docs/function-contract.md, "Resource clients".
"""

from __future__ import annotations

import os
import threading

from . import core
from . import trace as _trace  # the running invocation's traceparent goes with each message
from . import args as _args  # argument checks shared by every provider's clients

PROVIDER = "gcp"


class ResourceError(core.ResourceError):
    """Google refused or failed a resource operation: the shared ``core.ResourceError`` whose
    ``type`` is the neutral error type, plus ``code``, Google's status name."""

    def __init__(self, message, type="ResourceError", resource=None, op=None, code=None):  # noqa: A002
        super().__init__(message, type, resource, op)
        self.code = code


# --------------------------------------------------------------------------- Google errors -> neutral

_BY_STATUS = {
    "PERMISSION_DENIED": "AccessDenied", "UNAUTHENTICATED": "AccessDenied", "FORBIDDEN": "AccessDenied",
    "UNAUTHORIZED": "AccessDenied",
    "NOT_FOUND": "NotFound",
    "INVALID_ARGUMENT": "BadRequest", "BAD_REQUEST": "BadRequest", "OUT_OF_RANGE": "BadRequest",
    "FAILED_PRECONDITION": "BadRequest", "LENGTH_REQUIRED": "BadRequest",
    "ALREADY_EXISTS": "Conflict", "ABORTED": "Conflict", "CONFLICT": "Conflict", "PRECONDITION_FAILED": "Conflict",
    "RESOURCE_EXHAUSTED": "Throttled", "TOO_MANY_REQUESTS": "Throttled",
    "UNAVAILABLE": "Unavailable", "DEADLINE_EXCEEDED": "Unavailable", "SERVICE_UNAVAILABLE": "Unavailable",
    "GATEWAY_TIMEOUT": "Unavailable",
}
_BY_HTTP = {400: "BadRequest", 401: "AccessDenied", 403: "AccessDenied", 404: "NotFound", 409: "Conflict",
            412: "Conflict", 429: "Throttled", 503: "Unavailable", 504: "Unavailable"}


def error_type(status=None, http=None) -> str:
    """Google's status name (gRPC code name or HTTP reason) and HTTP status -> neutral error type."""
    t = _BY_STATUS.get(str(status or "").upper().replace(" ", "_"))
    if t:
        return t
    try:
        http = int(http) if http is not None else None
    except (TypeError, ValueError):
        http = None
    if http in _BY_HTTP:
        return _BY_HTTP[http]
    if http is not None and 400 <= http < 500:
        return "BadRequest"
    return "Internal"


def _status_name(e) -> str | None:
    grpc = getattr(e, "grpc_status_code", None)
    if grpc is not None and getattr(grpc, "name", None):
        return grpc.name
    return type(e).__name__.upper() if type(e).__name__ else None


def _from_google(e, resource, op):
    """An exception raised by a Google library -> ResourceError, or None when it is not one."""
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover - reported when the client is created
        return None
    if isinstance(e, gexc.GoogleAPICallError):
        http = getattr(e, "code", None)
        status = _status_name(e)
        name = status if status and status in _BY_STATUS else None
        msg = getattr(e, "message", None) or str(e)
        return ResourceError(msg, error_type(name, http), resource, op, code=name or status)
    if isinstance(e, gexc.RetryError):
        return ResourceError(str(e), "Unavailable", resource, op, code="RETRY_ERROR")
    try:
        from google.auth import exceptions as aexc
    except ImportError:  # pragma: no cover
        return None
    if isinstance(e, aexc.GoogleAuthError):
        return ResourceError(str(e), "AccessDenied", resource, op, code=type(e).__name__)
    return None


# --------------------------------------------------------------------------- library clients (per process)

_CLIENTS: dict = {}
_CLIENTS_LOCK = threading.Lock()

_LIBRARIES = {"firestore": "google-cloud-firestore", "pubsub": "google-cloud-pubsub",
              "storage": "google-cloud-storage"}


def project() -> str | None:
    """The project the function runs in (``NIMBUS_GCP_PROJECT``), else None (the library decides)."""
    return os.environ.get("NIMBUS_GCP_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT") or None


def _make(service, database):
    if service == "firestore":
        from google.cloud import firestore
        return firestore.Client(project=project(), database=database or "(default)")
    if service == "pubsub":
        # The generated client: one Publish call per message, no batching thread. The emulator is
        # reached the way google-cloud-pubsub's own client reaches it.
        from google.pubsub_v1.services.publisher import PublisherClient
        host = os.environ.get("PUBSUB_EMULATOR_HOST")
        if host:
            from google.auth.credentials import AnonymousCredentials
            return PublisherClient(client_options={"api_endpoint": host}, credentials=AnonymousCredentials())
        return PublisherClient()
    from google.cloud import storage
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials
        return storage.Client(project=project() or "nimbus-emulator", credentials=AnonymousCredentials())
    return storage.Client(project=project())


def gcp_client(service, database=None):
    """The process-wide client of ``service`` (``firestore`` per database, ``pubsub``,
    ``storage``), created on first use."""
    key = (service, database)
    client = _CLIENTS.get(key)
    if client is not None:
        return client
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            try:
                client = _make(service, database)
            except ImportError as e:
                raise core.ResourceUnavailableError(
                    "the Nimbus GCP resource clients need %s (nimbus build -p gcp lists it in the package's "
                    "requirements.txt): %s" % (_LIBRARIES[service], e)) from None
            _CLIENTS[key] = client
    return client


def reset_clients():
    """Forget the cached clients (tests; a changed environment)."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


# --------------------------------------------------------------------------- native names and keys


def env_var(resource: str, field: str) -> str:
    """``NIMBUS_RESOURCE_<R>_<FIELD>``: ``order-events``, ``TOPIC`` -> ``NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC``."""
    return "NIMBUS_RESOURCE_%s_%s" % (resource.upper().replace("-", "_"), field)


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def _key_text(v, field):
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise TypeError("table key field %r must be a str or a number, got %s" % (field, _args.type_name(v)))
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = v if isinstance(v, str) else repr(v)
    if text == "":
        raise ValueError("table key field %r must not be empty" % field)
    return "".join(c if c in _SAFE else "".join("%%%02X" % b for b in c.encode("utf-8")) for c in text)


def document_id(key: dict, fields) -> str:
    """The Firestore document id of the item with ``key`` (see the module docs)."""
    names = list(fields) if fields else sorted(key)
    return ",".join(_key_text(key[f], f) for f in names)


# --------------------------------------------------------------------------- clients


class _Client:
    _type = "?"
    _fields = ("NAME",)

    def __init__(self, name, spec=None, function_config=None, environ=None, client=None):
        self._name = name
        self._spec = spec if isinstance(spec, dict) else {}
        self._environ = environ
        self._injected = client  # an injected library client (tests); else the process-wide one
        self._native = {}

    def _env(self):
        return os.environ if self._environ is None else self._environ

    def native(self, field=None, op=None):
        """A native name of the resource (env var, else function.json ``native``)."""
        field = field or self._fields[0]
        if field not in self._native:
            var = env_var(self._name, field)
            value = self._env().get(var)
            if not value:
                fallback = (self._spec.get("native") or {}).get(field.lower())
                value = fallback if isinstance(fallback, str) and fallback else None
            if not value:
                raise ResourceError(
                    "%s %r has no Google Cloud %s: environment variable %s is not set (nimbus deploy sets it "
                    "for every resource a function uses)" % (self._type, self._name, field.lower(), var),
                    "NotConfigured", self._name, op)
            self._native[field] = value
        return self._native[field]

    def _client(self, service, database=None):
        return self._injected if self._injected is not None else gcp_client(service, database)

    def _call(self, op, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - Google's errors become ResourceError, others pass
            err = _from_google(e, self._name, op)
            if err is None:
                raise
            raise err from e

    def __repr__(self):
        return "<nimbus gcp %s client %r>" % (self._type, self._name)


class TableClient(_Client):
    _type = "table"
    _fields = ("COLLECTION", "DATABASE")

    def _key_fields(self):
        return _args.key_fields(self._spec)

    def _collection(self, op):
        database = self.native("DATABASE", op).rsplit("/", 1)[-1]
        return self._client("firestore", database).collection(self.native("COLLECTION", op))

    def _doc(self, op, key):
        return self._collection(op).document(document_id(key, self._key_fields()))

    def get(self, key):
        key = _args.check_key("table key", key, self._key_fields(), lambda f: f)
        doc = self._doc("get", key)
        snap = self._call("get", doc.get)
        return snap.to_dict() if snap.exists else None

    def put(self, item):
        item = _args.check_key("table item", item, self._key_fields(), lambda f: f)
        doc = self._doc("put", item)
        self._call("put", doc.set, item)
        return None

    def delete(self, key):
        key = _args.check_key("table key", key, self._key_fields(), lambda f: f)
        doc = self._doc("delete", key)
        self._call("delete", doc.delete)
        return None

    def _items(self, op, query, limit):
        if limit is not None:
            query = query.limit(limit)
        return self._call(op, lambda: [s.to_dict() for s in query.stream()])

    def query(self, key, limit=None):
        fields = self._key_fields()
        key = _args.check_key("query key", key, fields, lambda f: f[:1])
        limit = _args.limit(limit)
        if fields:
            pk = fields[0]
        elif len(key) == 1:
            pk = next(iter(key))
        else:
            raise ValueError("query key must hold only the partition key (table %r declares no key)" % self._name)
        from google.cloud.firestore_v1.base_query import FieldFilter
        query = self._collection("query").where(filter=FieldFilter(pk, "==", key[pk]))
        return self._items("query", query, limit)

    def scan(self, limit=None):
        limit = _args.limit(limit)
        return self._items("scan", self._collection("scan"), limit)


def _publish(client, op, topic, body, attrs):
    """One ``Publish`` call (no client-side batching: the message is out when this returns)."""
    api = client._client("pubsub")
    message = {"data": body.encode("utf-8"), "attributes": attrs}
    out = client._call(op, api.publish, request={"topic": topic, "messages": [message]}, timeout=60)
    return out.message_ids[0]


class QueueClient(_Client):
    _type = "queue"
    _fields = ("TOPIC",)

    def send(self, body, attributes=None, delay_seconds=0):
        body = _args.body(body)
        attrs = _trace.with_trace(_args.attributes(attributes))
        delay_seconds = _args.delay_seconds(delay_seconds)
        if delay_seconds:
            raise ResourceError("Pub/Sub cannot delay a message (delay_seconds=%d): send it without a delay"
                                % delay_seconds, "BadRequest", self._name, "send", code="INVALID_ARGUMENT")
        return _publish(self, "send", self.native("TOPIC", "send"), body, attrs)


class TopicClient(_Client):
    _type = "topic"
    _fields = ("TOPIC",)

    def publish(self, body, attributes=None):
        body = _args.body(body)
        attrs = _trace.with_trace(_args.attributes(attributes))
        return _publish(self, "publish", self.native("TOPIC", "publish"), body, attrs)


class BucketClient(_Client):
    _type = "bucket"

    def _bucket(self, op):
        return self._client("storage").bucket(self.native("NAME", op))

    def _missing_object(self, op, bucket, e):
        """Whether NotFound ``e`` is about the object (the bucket exists), not the bucket."""
        if e.type != "NotFound":
            return False
        if self._call(op, bucket.exists):
            return True
        raise ResourceError("bucket %r does not exist" % bucket.name, "NotFound", self._name, op,
                            code="NOT_FOUND") from e

    def get(self, key):
        key = _args.bucket_key(key)
        bucket = self._bucket("get")
        try:
            return self._call("get", bucket.blob(key).download_as_bytes)
        except ResourceError as e:
            if self._missing_object("get", bucket, e):
                return None
            raise

    def put(self, key, data, content_type=None):
        key = _args.bucket_key(key)
        raw = _args.bucket_data(data)
        content_type = _args.content_type(content_type)
        blob = self._bucket("put").blob(key)
        self._call("put", blob.upload_from_string, raw, content_type=content_type or "application/octet-stream")
        return None

    def delete(self, key):
        key = _args.bucket_key(key)
        bucket = self._bucket("delete")
        try:
            self._call("delete", bucket.blob(key).delete)
        except ResourceError as e:
            if not self._missing_object("delete", bucket, e):
                raise
        return None

    def list(self, prefix=""):
        prefix = _args.prefix(prefix)
        bucket = self.native("NAME", "list")
        client = self._client("storage")
        return self._call("list", lambda: sorted(b.name for b in client.list_blobs(bucket, prefix=prefix)))


CLIENTS = {"table": TableClient, "queue": QueueClient, "topic": TopicClient, "bucket": BucketClient}


def make_client(name, spec, function_config=None, environ=None, client=None):
    """The neutral GCP client of resource ``name`` (``spec`` from function.json)."""
    cls = CLIENTS.get((spec or {}).get("type"))
    return cls(name, spec, function_config, environ, client) if cls is not None else None


def factory(name, spec, function_config=None):
    """``core.register_resource_factory`` hook for provider ``"gcp"``."""
    return make_client(name, spec, function_config)


def register():
    core.register_resource_factory(PROVIDER, factory)


register()
