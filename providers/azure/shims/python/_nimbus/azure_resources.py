"""Nimbus Azure resource clients (Python): ``context.resources[name]`` inside Azure Functions.

table -> Cosmos DB for NoSQL (azure-cosmos, see _nimbus/azure_cosmos.py), queue -> Storage queue (azure-storage-queue),
topic -> Service Bus topic (azure-servicebus), bucket -> Blob container (azure-storage-blob).
The libraries are imported and their clients created lazily, once per process.

Where the resources are (app settings written by the Azure provider, crates/nimbus-azure/src/env.rs):

  NIMBUS_RESOURCE_<R>_NAME            native name (blob or Cosmos DB container, queue, topic); else
                                      function.json ``native`` (``container``/``queue``/``topic``)
  NIMBUS_RESOURCE_<R>_ENDPOINT        a resource that already exists: its own account's endpoint or
                                      namespace, instead of the deployment's
  NIMBUS_AZURE_{BLOB,QUEUE}_ENDPOINT  the data storage account's endpoints
  NIMBUS_AZURE_COSMOS_ENDPOINT, NIMBUS_AZURE_COSMOS_DATABASE   the tables' Cosmos DB account and database
  NIMBUS_AZURE_SERVICEBUS_NAMESPACE   the Service Bus namespace host name
  AZURE_CLIENT_ID                     the app's user-assigned identity (ManagedIdentityCredential);
                                      without it, azure-identity's DefaultAzureCredential
  NIMBUS_AZURE_STORAGE_CONNECTION_STRING, NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING,
  NIMBUS_AZURE_COSMOS_CONNECTION_STRING
                                      instead of endpoints and identity (Azurite, a local Cosmos DB
                                      API server, local development)

Tables: one Cosmos DB document per item, deletes as tombstones (the change feed has no deletes):
see ``_nimbus/azure_cosmos.py``.

Queues: messages are Base64 text, as the Functions queue trigger expects. A message sent with
``attributes`` is an envelope ``{"nimbus": 1, "body": ..., "attributes": {...}}`` that the queue
adapter (``_nimbus/azure.py``) unwraps, because storage queue messages have no attributes of their
own. ``delay_seconds`` is the message's initial invisibility.

Failures become ``ResourceError`` with ``type`` one of ``AccessDenied``, ``NotFound``,
``BadRequest``, ``Conflict``, ``Throttled``, ``Unavailable``, ``Internal`` (and ``NotConfigured``
for a missing setting). On import this module registers the factory of provider ``"azure"``.
See docs/function-contract.md, "Resource clients".
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid

from . import args as _args
from . import azure_cosmos
from . import core
from . import trace as _trace  # the running invocation's traceparent goes with each message

PROVIDER = "azure"
ENVELOPE = "nimbus"


class ResourceError(core.ResourceError):
    """Azure refused or failed a resource operation: ``type`` is the neutral error type,
    ``code`` Azure's error code and ``status`` the HTTP status, when there were any."""

    def __init__(self, message, type="ResourceError", resource=None, op=None, code=None, status=None):  # noqa: A002
        super().__init__(message, type, resource, op)
        self.code = code
        self.status = status


def error_type(status, code=None) -> str:
    """HTTP status (and Azure error code) -> neutral error type."""
    code = code or ""
    if code in ("AuthorizationFailure", "AuthorizationPermissionMismatch", "AuthenticationFailed",
                "InsufficientAccountPermissions", "Unauthorized"):
        return "AccessDenied"
    if code.endswith("NotFound") or code in ("ResourceNotFound", "BlobNotFound", "QueueNotFound",
                                              "TableNotFound", "ContainerNotFound", "MessagingEntityNotFound"):
        return "NotFound"
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    if status in (401, 403):
        return "AccessDenied"
    if status == 404:
        return "NotFound"
    if status in (409, 412):
        return "Conflict"
    if status == 429:
        return "Throttled"
    if status in (502, 503, 504):
        return "Unavailable"
    if status is not None and 400 <= status < 500:
        return "BadRequest"
    return "Internal"


def _from_azure(e, resource, op):
    """An exception raised by an Azure library -> ResourceError, or None when it is not one."""
    try:
        from azure.core import exceptions as ax
    except ImportError:  # pragma: no cover - reported when a client is created
        return None
    if isinstance(e, ax.ClientAuthenticationError):
        return ResourceError(str(e.message or e), "AccessDenied", resource, op,
                             code=getattr(e, "error_code", None), status=getattr(e, "status_code", None))
    if isinstance(e, ax.HttpResponseError):
        status = getattr(e, "status_code", None)
        code = getattr(e, "error_code", None)
        if code is not None:
            code = str(getattr(code, "value", code))
        msg = (str(e.message or e).splitlines() or [""])[0]
        return ResourceError(msg, error_type(status, code), resource, op, code=code, status=status)
    if isinstance(e, (ax.ServiceRequestError, ax.ServiceResponseError)):
        return ResourceError(str(e), "Unavailable", resource, op)
    if isinstance(e, ax.AzureError):
        name = type(e).__name__
        t = "Throttled" if "Quota" in name or "Busy" in name else "Unavailable" if "Connection" in name else "Internal"
        return ResourceError(str(e), t, resource, op, code=name)
    return None


def env_var(resource: str) -> str:
    """``NIMBUS_RESOURCE_<R>_NAME``: ``order-events`` -> ``NIMBUS_RESOURCE_ORDER_EVENTS_NAME``."""
    return "NIMBUS_RESOURCE_%s_NAME" % resource.upper().replace("-", "_")


# --------------------------------------------------------------------------- service clients (per process)

_SERVICES: dict = {}
_SERVICES_LOCK = threading.Lock()


def _credential(environ):
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = environ.get("AZURE_CLIENT_ID")
    return ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()


def _make_service(kind, environ):
    conn = environ.get("NIMBUS_AZURE_STORAGE_CONNECTION_STRING")
    if kind == "blob":
        from azure.storage.blob import BlobServiceClient as cls
    elif kind == "queue":
        from azure.storage.queue import QueueServiceClient as cls
    elif kind == "cosmos":
        return azure_cosmos.make_service(environ)
    else:
        from azure.servicebus import ServiceBusClient

        conn = environ.get("NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING")
        if conn:
            return ServiceBusClient.from_connection_string(conn)
        ns = environ.get("NIMBUS_AZURE_SERVICEBUS_NAMESPACE")
        if not ns:
            raise KeyError("NIMBUS_AZURE_SERVICEBUS_NAMESPACE")
        return ServiceBusClient(ns, credential=_credential(environ))
    if conn:
        return cls.from_connection_string(conn)
    var = "NIMBUS_AZURE_%s_ENDPOINT" % kind.upper()
    endpoint = environ.get(var)
    if not endpoint:
        raise KeyError(var)
    return cls(endpoint, credential=_credential(environ))


def _endpoint_var(kind):
    """The app setting that says where the service of ``kind`` is."""
    if kind == "servicebus":
        return "NIMBUS_AZURE_SERVICEBUS_NAMESPACE"
    return "NIMBUS_AZURE_%s_ENDPOINT" % kind.upper()


def with_resource_endpoint(kind, resource, environ):
    """``environ`` with a resource's own endpoint (``NIMBUS_RESOURCE_<R>_ENDPOINT``: a resource that
    already exists, in an account or namespace of its own) in place of the deployment's."""
    own = environ.get("NIMBUS_RESOURCE_%s_ENDPOINT" % resource.upper().replace("-", "_"))
    if not own:
        return environ
    env = dict(environ)
    env[_endpoint_var(kind)] = own
    return env


def service(kind, environ=None):
    """The process-wide service client of ``kind`` (``blob``, ``queue``, ``cosmos``, ``servicebus``)."""
    environ = os.environ if environ is None else environ
    conn = {"cosmos": "NIMBUS_AZURE_COSMOS_CONNECTION_STRING",
            "servicebus": "NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING"}.get(kind, "NIMBUS_AZURE_STORAGE_CONNECTION_STRING")
    key = (kind, environ.get(conn), environ.get(_endpoint_var(kind)))
    client = _SERVICES.get(key)
    if client is not None:
        return client
    with _SERVICES_LOCK:
        client = _SERVICES.get(key)
        if client is None:
            client = _make_service(kind, environ)
            _SERVICES[key] = client
    return client


def reset_clients():
    """Forget the cached service clients (tests; a changed environment)."""
    with _SERVICES_LOCK:
        _SERVICES.clear()


# --------------------------------------------------------------------------- clients


class _Client:
    _type = "?"
    _service = "?"
    _native_key = "name"

    def __init__(self, name, spec=None, function_config=None, environ=None, client=None):
        self._name = name
        self._spec = spec if isinstance(spec, dict) else {}
        self._environ = os.environ if environ is None else environ
        self._injected = client  # a service client (tests); else the process-wide one
        self._native = None

    def native(self, op=None):
        """The native name (app setting, else function.json ``native``)."""
        if self._native is None:
            var = env_var(self._name)
            value = self._environ.get(var)
            if not value:
                fallback = (self._spec.get("native") or {}).get(self._native_key)
                value = fallback if isinstance(fallback, str) and fallback else None
            if not value:
                raise ResourceError(
                    "%s %r has no Azure name: app setting %s is not set (nimbus deploy sets it for "
                    "every resource a function uses)" % (self._type, self._name, var), "NotConfigured",
                    self._name, op)
            self._native = value
        return self._native

    def _svc(self, op):
        if self._injected is not None:
            return self._injected
        try:
            return service(self._service, with_resource_endpoint(self._service, self._name, self._environ))
        except KeyError as e:
            raise ResourceError(
                "%s %r: app setting %s is not set (nimbus deploy sets it)" % (self._type, self._name, e.args[0]),
                "NotConfigured", self._name, op) from None
        except ValueError as e:  # a malformed connection string
            raise ResourceError("%s %r: %s" % (self._type, self._name, e), "NotConfigured", self._name, op) from None
        except ImportError as e:
            raise core.ResourceUnavailableError(
                "the Nimbus Azure %s client needs %s (nimbus build -p azure installs it)" % (self._type, e.name)
            ) from None

    def _call(self, op, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as e:  # noqa: BLE001 - Azure errors become ResourceError, others pass
            err = _from_azure(e, self._name, op)
            if err is None:
                raise
            raise err from e

    def _get(self, op, fn, *a, **kw):
        """`_call` that gives None when Azure says the entity or blob does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return fn(*a, **kw)
        except ResourceNotFoundError as e:
            code = str(getattr(getattr(e, "error_code", None), "value", getattr(e, "error_code", "")) or "")
            if code not in ("TableNotFound", "ContainerNotFound"):  # the item or blob, not its home
                return None
            raise _from_azure(e, self._name, op) from e
        except Exception as e:  # noqa: BLE001
            err = _from_azure(e, self._name, op)
            if err is None:
                raise
            raise err from e

    def __repr__(self):
        return "<nimbus azure %s client %r>" % (self._type, self._name)


key_text = azure_cosmos.key_text


def unwrap_envelope(text):
    """A queue message's text -> (body, attributes): the envelope of a message sent with
    attributes, else the text itself and no attributes."""
    if isinstance(text, str) and text.startswith('{"' + ENVELOPE + '":'):
        try:
            doc = json.loads(text)
        except ValueError:
            return text, {}
        if (isinstance(doc, dict) and doc.get(ENVELOPE) == 1 and set(doc) == {ENVELOPE, "body", "attributes"}
                and isinstance(doc["body"], str) and isinstance(doc["attributes"], dict)):
            return doc["body"], {str(k): str(v) for k, v in doc["attributes"].items()}
    return text, {}


TableClient = azure_cosmos.table_client_class(_Client, ResourceError, _from_azure)


class QueueClient(_Client):
    _type = "queue"
    _service = "queue"
    _native_key = "queue"

    def send(self, body, attributes=None, delay_seconds=0):
        body = _args.body(body)
        attrs = _trace.with_trace(_args.attributes(attributes))
        delay_seconds = _args.delay_seconds(delay_seconds)
        text = body
        if attrs:
            text = json.dumps({ENVELOPE: 1, "body": body, "attributes": attrs}, separators=(",", ":"),
                              ensure_ascii=False)
        content = base64.b64encode(text.encode("utf-8")).decode("ascii")
        name = self.native("send")
        queue = self._svc("send").get_queue_client(name)
        kwargs = {"visibility_timeout": delay_seconds} if delay_seconds else {}
        msg = self._call("send", queue.send_message, content, **kwargs)
        return msg.id


class TopicClient(_Client):
    _type = "topic"
    _service = "servicebus"
    _native_key = "topic"

    def publish(self, body, attributes=None):
        body = _args.body(body)
        attrs = _trace.with_trace(_args.attributes(attributes))
        from azure.servicebus import ServiceBusMessage

        message_id = str(uuid.uuid4())
        msg = ServiceBusMessage(body, application_properties=attrs or None, message_id=message_id)
        topic = self.native("publish")
        bus = self._svc("publish")

        def send():
            with bus.get_topic_sender(topic_name=topic) as sender:
                sender.send_messages(msg)

        self._call("publish", send)
        return message_id


class BucketClient(_Client):
    _type = "bucket"
    _service = "blob"
    _native_key = "container"

    def _container(self, op):
        name = self.native(op)
        return self._svc(op).get_container_client(name)

    def get(self, key):
        key = _args.bucket_key(key)
        blob = self._container("get").get_blob_client(key)
        return self._get("get", lambda: blob.download_blob().readall())

    def put(self, key, data, content_type=None):
        key = _args.bucket_key(key)
        raw = _args.bucket_data(data)
        content_type = _args.content_type(content_type)
        from azure.storage.blob import ContentSettings

        blob = self._container("put").get_blob_client(key)
        kwargs = {"content_settings": ContentSettings(content_type=content_type)} if content_type else {}
        self._call("put", blob.upload_blob, raw, overwrite=True, **kwargs)
        return None

    def delete(self, key):
        key = _args.bucket_key(key)
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._container("delete").get_blob_client(key)
        try:
            self._call("delete", blob.delete_blob)
        except ResourceError as e:
            if e.type != "NotFound" or not isinstance(e.__cause__, ResourceNotFoundError):
                raise
        return None

    def list(self, prefix=""):
        prefix = _args.prefix(prefix)
        container = self._container("list")

        def names():
            return [b.name for b in container.list_blobs(name_starts_with=prefix or None)]

        return self._call("list", names)


CLIENTS = {"table": TableClient, "queue": QueueClient, "topic": TopicClient, "bucket": BucketClient}


def make_client(name, spec, function_config=None, environ=None, client=None):
    """The neutral Azure client of resource ``name`` (``spec`` from function.json)."""
    cls = CLIENTS.get((spec or {}).get("type"))
    return cls(name, spec, function_config, environ, client) if cls is not None else None


def factory(name, spec, function_config=None):
    """``core.register_resource_factory`` hook for provider ``"azure"``."""
    return make_client(name, spec, function_config)


def register():
    core.register_resource_factory(PROVIDER, factory)


register()
