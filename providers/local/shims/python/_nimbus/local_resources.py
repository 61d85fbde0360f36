"""Nimbus local resource clients (Python): ``context.resources[name]`` in the local runtime.

Every method is one request to the local runtime over the worker's protocol pipes:
the worker sends ``{"rpc": n, "resource", "op", "args"}`` on fd 4 and gets back
``{"rpc": n, "ok": true, "result"}`` or ``{"rpc": n, "ok": false, "error": {"type",
"message"}}`` on fd 3 (the worker module's ``rpc(resource, op, args)`` does that and
returns the result or raises).

The clients are written against an injectable transport ``call(resource, op, args)``
(returns the result, or raises) so that they can be used and tested without a runtime;
``make_client(name, spec, call)`` builds one. On import this module registers the
factory of provider ``"local"`` with ``core.register_resource_factory``; its transport
is the running local worker's ``rpc``, looked up at call time.

Ops (args) -> result:
  table:  get {key} -> item|None; put {item}; delete {key}; query {key, limit} -> [item];
          scan {limit} -> [item]
  queue:  send {body, attributes, delay_seconds} -> message id
  topic:  publish {body, attributes} -> message id
  bucket: get {key} -> {"data_b64", "content_type"}|None; put {key, data_b64, content_type};
          delete {key}; list {prefix} -> [key]

Standard library only. See docs/function-contract.md, "Resource clients".
"""

from __future__ import annotations

import base64
import binascii
import importlib
import os
import sys

from . import core
from . import args as _args  # argument checks shared by every provider's clients

PROVIDER = "local"


# The error every resource client raises; defined once in the shared core.
ResourceError = core.ResourceError


def result_of(reply, resource=None, op=None):
    """A reply frame ``{"ok": true, "result"}`` -> the result; ``{"ok": false, "error"}`` ->
    raises ``ResourceError``. (For transports that see raw replies.)"""
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ResourceError("malformed reply from the local runtime: %r" % (reply,), "ProtocolError", resource, op)
    if reply.get("ok") is True:
        return reply.get("result")
    err = reply.get("error")
    if not isinstance(err, dict):
        err = {"message": err}
    raise ResourceError(err.get("message"), err.get("type") or "ResourceError", resource, op)


def _as_resource_error(exc, resource, op):
    """An error raised by a transport -> the error the handler sees.

    A shim error (``core.NimbusError``: this module's ``ResourceError``, the worker's own
    ``ResourceError`` or a core class such as ``ResourceAccessError`` that the runtime named)
    passes unchanged, with ``resource``/``op`` filled in when missing; another error that carries
    the runtime's error (``.error = {"type", "message"}`` or a string ``.type``) becomes a
    ``ResourceError``; anything else (e.g. ``OSError``) gives None and passes as it is."""
    if isinstance(exc, core.NimbusError):
        if getattr(exc, "resource", None) is None:
            try:
                exc.resource, exc.op = resource, op
            except AttributeError:
                pass
        return exc
    err = getattr(exc, "error", None)
    if isinstance(err, dict) and ("type" in err or "message" in err):
        return ResourceError(err.get("message"), err.get("type") or "ResourceError", resource, op)
    rtype = getattr(exc, "type", None)
    if isinstance(rtype, str) and rtype:
        msg = getattr(exc, "message", None)
        return ResourceError(msg if isinstance(msg, str) else str(exc), rtype, resource, op)
    return None


# --------------------------------------------------------------------------- clients


class _Client:
    _type = "?"

    def __init__(self, name, spec=None, call=None):
        if call is None or not callable(call):
            raise TypeError("call must be a function call(resource, op, args)")
        self._name = name
        self._spec = spec if isinstance(spec, dict) else {}
        self._call = call

    def _rpc(self, op, args):
        try:
            return self._call(self._name, op, args)
        except Exception as e:  # noqa: BLE001 - runtime errors become ResourceError, others pass
            err = _as_resource_error(e, self._name, op)
            if err is None or err is e:
                raise
            raise err from e

    def __repr__(self):
        return "<nimbus local %s client %r>" % (self._type, self._name)


class TableClient(_Client):
    _type = "table"

    def _fields(self):
        return _args.key_fields(self._spec)

    def get(self, key):
        key = _args.check_key("table key", key, self._fields(), lambda f: f)
        return self._rpc("get", {"key": key})

    def put(self, item):
        item = _args.check_key("table item", item, self._fields(), lambda f: f)
        self._rpc("put", {"item": item})
        return None

    def delete(self, key):
        key = _args.check_key("table key", key, self._fields(), lambda f: f)
        self._rpc("delete", {"key": key})
        return None

    def query(self, key, limit=None):
        key = _args.check_key("query key", key, self._fields(), lambda f: f[:1])
        items = self._rpc("query", {"key": key, "limit": _args.limit(limit)})
        return list(items or [])

    def scan(self, limit=None):
        items = self._rpc("scan", {"limit": _args.limit(limit)})
        return list(items or [])


class QueueClient(_Client):
    _type = "queue"

    def send(self, body, attributes=None, delay_seconds=0):
        body = _args.body(body)
        attrs = _args.attributes(attributes)
        delay_seconds = _args.delay_seconds(delay_seconds)
        return self._rpc("send", {"body": body, "attributes": attrs, "delay_seconds": delay_seconds})


class TopicClient(_Client):
    _type = "topic"

    def publish(self, body, attributes=None):
        return self._rpc("publish", {"body": _args.body(body), "attributes": _args.attributes(attributes)})


class BucketClient(_Client):
    _type = "bucket"

    def get(self, key):
        key = _args.bucket_key(key)
        obj = self._rpc("get", {"key": key})
        if obj is None:
            return None
        data = obj.get("data_b64") if isinstance(obj, dict) else None
        if not isinstance(data, str):
            raise ResourceError("malformed bucket get reply from the local runtime: %r" % (obj,),
                                "ProtocolError", self._name, "get")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ResourceError("bucket get reply holds invalid base64: %s" % e, "ProtocolError",
                                self._name, "get") from None

    def put(self, key, data, content_type=None):
        key = _args.bucket_key(key)
        raw = _args.bucket_data(data)
        content_type = _args.content_type(content_type)
        self._rpc("put", {"key": key, "data_b64": base64.b64encode(raw).decode("ascii"),
                          "content_type": content_type})
        return None

    def delete(self, key):
        self._rpc("delete", {"key": _args.bucket_key(key)})
        return None

    def list(self, prefix=""):
        prefix = _args.prefix(prefix)
        keys = self._rpc("list", {"prefix": prefix})
        return list(keys or [])


CLIENTS = {"table": TableClient, "queue": QueueClient, "topic": TopicClient, "bucket": BucketClient}


def make_client(name, spec, call):
    """The neutral client of resource ``name`` (``spec`` from function.json) over ``call``."""
    cls = CLIENTS.get((spec or {}).get("type"))
    return cls(name, spec, call) if cls is not None else None


# --------------------------------------------------------------------------- the worker's transport


def _worker_module():
    """The running local worker module. Started as ``python -m _nimbus.local_worker`` or as a
    file, it is ``__main__`` (a fresh import of ``_nimbus.local_worker`` would be a second copy
    that is not connected to the runtime); otherwise ``_nimbus.local_worker``."""
    main = sys.modules.get("__main__")
    if main is not None and callable(getattr(main, "rpc", None)):
        spec = getattr(main, "__spec__", None)
        if (getattr(spec, "name", None) == __package__ + ".local_worker"
                or os.path.basename(getattr(main, "__file__", "") or "") == "local_worker.py"):
            return main
    mod = sys.modules.get(__package__ + ".local_worker")
    if mod is None:
        mod = importlib.import_module(__package__ + ".local_worker")
    return mod


def worker_rpc(resource, op, args):
    """Transport of the registered factory: the local worker's ``rpc(resource, op, args)``."""
    rpc = getattr(_worker_module(), "rpc", None)
    if not callable(rpc):
        raise core.ResourceUnavailableError(
            "resource %r: this Nimbus local worker has no rpc() to reach the local runtime" % (resource,))
    return rpc(resource, op, args)


def factory(name, spec, function_config=None):
    """``core.register_resource_factory`` hook for provider ``"local"``."""
    return make_client(name, spec, worker_rpc)


def register():
    core.register_resource_factory(PROVIDER, factory)


register()
