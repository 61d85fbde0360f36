"""Provider-independent part of the Nimbus Python shim.

Loads ``_nimbus/function.json`` and the user's handler at cold start, builds the
neutral ``context`` (with ``context.resources``), invokes the handler (plain or
coroutine function) and normalizes its result. Provider adapters
(``_nimbus/aws.py``, ``gcp.py``, ``azure.py``, ``local_worker.py``) only convert
native events to neutral ones and neutral results to native responses.

Standard library only. The contract is documented in docs/function-contract.md.
"""

from __future__ import annotations

import _thread
import base64
import datetime as _dt
import importlib
import importlib.util
import json
import os
import re
import sys
import time
import types
from collections.abc import Awaitable, Mapping

# Imported where they are needed, not here: every cold start pays for what this module imports
# (inspect alone costs several milliseconds): decimal, inspect, threading, traceback, uuid and
# urllib.parse.

EVENT_TYPES = ("http", "queue", "topic", "schedule", "bucket", "table")
RESOURCE_TYPES = ("table", "queue", "topic", "bucket")


# --------------------------------------------------------------------------- errors


class NimbusError(Exception):
    """Base class of every error raised by the shim itself (not by the handler)."""


class ResourceError(NimbusError):
    """A provider refused or failed a resource operation of a handler.

    ``type`` is the neutral error type (e.g. ``"NotFound"``, ``"AccessDenied"``), ``message``
    the provider's message; ``resource`` and ``op`` name the call. Every provider's resource
    clients raise this class (the AWS clients a subclass that also keeps AWS's error code)."""

    def __init__(self, message, type="ResourceError", resource=None, op=None):  # noqa: A002 - contract name
        self.type = str(type or "ResourceError")
        self.message = str(message if message is not None else "")
        self.resource = resource
        self.op = op
        where = "%s.%s: " % (resource, op) if resource is not None and op is not None else ""
        super().__init__("%s%s: %s" % (where, self.type, self.message) if self.type != "ResourceError"
                         else "%s%s" % (where, self.message))


class ConfigError(NimbusError):
    """``_nimbus/function.json`` is missing or malformed."""


class HandlerLoadError(NimbusError):
    """The handler file could not be found, imported, or does not export the function."""


class EventError(NimbusError):
    """A native event could not be converted to a neutral event."""


class ResultError(NimbusError):
    """The handler returned a value the contract does not allow."""


class ResourceAccessError(NimbusError, PermissionError):
    """The function's ``uses`` does not grant the resource (or the method's access level)."""


class ResourceUnavailableError(NimbusError):
    """No client implementation for this resource type exists yet on this provider."""


class BatchItemFailure(NimbusError):
    """Raised on providers that deliver one message per invocation when the handler
    reported that message in ``{"failed": [...]}``: the platform then retries it."""

    def __init__(self, failed):
        self.failed = list(failed)
        super().__init__(
            "handler reported failed message(s) %s; failing the invocation so that the "
            "platform retries them" % ", ".join(repr(f) for f in self.failed)
        )


# --------------------------------------------------------------------------- package & config


def package_root() -> str:
    """Directory that holds ``_nimbus/`` (the unpacked package root)."""
    env = os.environ.get("NIMBUS_PACKAGE_ROOT")
    if env:
        return os.path.abspath(env)
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(root: str | None = None) -> dict:
    root = root or package_root()
    path = os.path.join(root, "_nimbus", "function.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise ConfigError("Nimbus shim: %s not found (is this a Nimbus package?)" % path) from None
    except (OSError, ValueError) as e:
        raise ConfigError("Nimbus shim: cannot read %s: %s" % (path, e)) from None
    if not isinstance(cfg, dict):
        raise ConfigError("Nimbus shim: %s must hold a JSON object" % path)
    handler = cfg.get("handler")
    if not isinstance(handler, dict) or not handler.get("file"):
        raise ConfigError('Nimbus shim: %s needs "handler": {"file": ..., "export": ...}' % path)
    cfg.setdefault("resources", {})
    cfg.setdefault("triggers", [])
    if not isinstance(cfg["resources"], dict) or not isinstance(cfg["triggers"], list):
        raise ConfigError('Nimbus shim: %s: "resources" must be an object and "triggers" a list' % path)
    return cfg


def parse_target(target: str) -> tuple[str, str]:
    """``"orders/place.py:handler"`` -> ``("orders/place.py", "handler")``."""
    if not isinstance(target, str) or not target.strip():
        raise HandlerLoadError("Nimbus shim: empty handler reference")
    file, sep, export = target.strip().rpartition(":")
    if not sep:
        return target.strip(), "handler"
    if not file:
        raise HandlerLoadError("Nimbus shim: handler reference %r has no file part" % target)
    return file, export or "handler"


# --------------------------------------------------------------------------- handler loading


def _module_name_for(rel: str) -> str | None:
    parts = rel[:-3].split("/") if rel.endswith(".py") else None
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def load_handler(root: str, file: str, export: str):
    rel = file.replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    if os.path.isabs(rel) or ".." in rel.split("/"):
        raise HandlerLoadError("Nimbus shim: handler file %r must be relative to the package root" % file)
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        raise HandlerLoadError(
            "Nimbus shim: handler file %r not found in the package (root %s)" % (rel, root)
        )
    if root not in sys.path:
        sys.path.insert(0, root)
    modname = _module_name_for(rel)
    try:
        if modname is not None:
            existing = sys.modules.get(modname)
            if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") != os.path.abspath(path):
                del sys.modules[modname]
            module = importlib.import_module(modname)
        else:
            name = "_nimbus_user_" + re.sub(r"\W", "_", rel)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    except BaseException as e:  # noqa: BLE001 - report anything raised at import, even SystemExit
        if isinstance(e, KeyboardInterrupt):
            raise
        err = HandlerLoadError(
            "Nimbus shim: importing handler file %r failed: %s: %s" % (rel, type(e).__name__, e)
        )
        err.__cause__ = e
        err.user_traceback = user_traceback(e)
        raise err from e
    fn = getattr(module, export, None)
    if fn is None:
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise HandlerLoadError(
            "Nimbus shim: %r has no function %r (callables found: %s)"
            % (rel, export, ", ".join(names) or "none")
        )
    if not callable(fn):
        raise HandlerLoadError("Nimbus shim: %s:%s is a %s, not a function" % (rel, export, type(fn).__name__))
    return fn


# --------------------------------------------------------------------------- resources

# Access levels: which neutral methods each one allows, per resource type.
_READ = {"table": {"get", "query", "scan"}, "bucket": {"get", "list"}, "queue": set(), "topic": set()}
_WRITE = {"table": {"put", "delete"}, "bucket": {"put", "delete"}, "queue": {"send"}, "topic": {"publish"}}
METHODS = {t: _READ[t] | _WRITE[t] for t in RESOURCE_TYPES}
# The manifest's access levels (`uses: [{resource, access}]`): `write` is write/delete without reads.
ACCESS_LEVELS = {
    "table": {"read": _READ["table"], "write": _WRITE["table"], "read_write": METHODS["table"]},
    "bucket": {"read": _READ["bucket"], "write": _WRITE["bucket"], "read_write": METHODS["bucket"]},
    "queue": {"send": METHODS["queue"]},
    "topic": {"publish": METHODS["topic"]},
}

# provider -> factory(name, spec, function_config) -> client object with the neutral methods.
_FACTORIES: dict = {}


def register_resource_factory(provider: str, factory) -> None:
    """Install the client factory of a provider (called by the provider's client module)."""
    _FACTORIES[provider] = factory


class _GuardedClient:
    """Wraps a provider client: only the neutral methods the access level allows pass."""

    def __init__(self, name, rtype, access, function_name, client):
        self._name, self._type, self._access, self._fn, self._client = name, rtype, access, function_name, client

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        if method not in METHODS.get(self._type, ()):
            raise AttributeError(
                "%s resource %r has no method %r (methods: %s)"
                % (self._type, self._name, method, ", ".join(sorted(METHODS.get(self._type, ()))))
            )
        allowed = ACCESS_LEVELS.get(self._type, {}).get(self._access, set())
        if method not in allowed:
            raise ResourceAccessError(
                "function %r has %r access to %s %r, which does not allow %s(); "
                "grant more in its `uses` in nimbus.yaml" % (self._fn, self._access, self._type, self._name, method)
            )
        return getattr(self._client, method)

    def __repr__(self):
        return "<nimbus %s resource %r (%s)>" % (self._type, self._name, self._access)


class Resources(Mapping):
    """``context.resources``: resource name -> neutral client, for granted resources only.

    Clients are created lazily (first access) by the provider's factory and then
    kept for the life of the process (warm invocations reuse them)."""

    def __init__(self, config: dict, provider: str):
        self._config = config
        self._provider = provider
        self._fn = config.get("function", "?")
        self._specs = config.get("resources") or {}
        self._clients: dict = {}
        self._lock = _thread.allocate_lock()

    def _granted(self):
        return [n for n, s in self._specs.items() if isinstance(s, dict) and s.get("access")]

    def __iter__(self):
        return iter(sorted(self._granted()))

    def __len__(self):
        return len(self._granted())

    def __contains__(self, name):
        return name in self._granted()

    def __getitem__(self, name):
        spec = self._specs.get(name)
        if not isinstance(spec, dict) or not spec.get("access"):
            granted = ", ".join(sorted(self._granted())) or "none"
            raise ResourceAccessError(
                "resource %r is not granted to function %r: add `- { resource: %s, access: ... }` "
                "to its `uses` in nimbus.yaml (granted: %s)" % (name, self._fn, name, granted)
            )
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                rtype, access = spec.get("type"), spec.get("access")
                if rtype not in RESOURCE_TYPES:
                    raise ResourceUnavailableError("resource %r has unknown type %r" % (name, rtype))
                if access not in ACCESS_LEVELS[rtype]:
                    raise ResourceAccessError(
                        "resource %r (%s) has unknown access level %r (one of: %s)"
                        % (name, rtype, access, ", ".join(sorted(ACCESS_LEVELS[rtype])))
                    )
                factory = _FACTORIES.get(self._provider)
                if factory is None:
                    raise ResourceUnavailableError(
                        "resource %r (%s): no %s client for provider %r in this version of the "
                        "Nimbus Python shim yet" % (name, rtype, rtype, self._provider)
                    )
                raw = factory(name, spec, self._config)
                if raw is None:
                    raise ResourceUnavailableError(
                        "resource %r (%s): provider %r has no %s client yet" % (name, rtype, self._provider, rtype)
                    )
                client = _GuardedClient(name, rtype, access, self._fn, raw)
                self._clients[name] = client
            return client

    def __repr__(self):
        return "<nimbus resources %s>" % ", ".join(self)


# --------------------------------------------------------------------------- context


def now_ms() -> int:
    return int(time.time() * 1000)


class Context:
    """The neutral ``context`` passed to handlers."""

    __slots__ = ("function_name", "request_id", "service", "stage", "provider", "deadline_ms", "resources",
                 "traceparent")

    def __init__(self, *, function_name, request_id, service, stage, provider, deadline_ms, resources):
        self.traceparent = None  # the W3C trace context of the running invocation (trace.py)
        self.function_name = function_name
        self.request_id = request_id
        self.service = service
        self.stage = stage
        self.provider = provider
        self.deadline_ms = int(deadline_ms)
        self.resources = resources

    def remaining_ms(self) -> int:
        return max(0, self.deadline_ms - now_ms())

    def __repr__(self):
        return "<nimbus context %s %s>" % (self.function_name, self.request_id)


# --------------------------------------------------------------------------- the loaded function


_loop = None
_loop_lock = _thread.allocate_lock()


def _run_coroutine(coro):
    """Run a coroutine to completion; one event loop per process is reused so that
    clients bound to it survive across warm invocations. asyncio is imported here, not at the
    top: it costs ~35 ms of every cold start and only async handlers need it."""
    import asyncio

    global _loop
    try:
        asyncio.get_running_loop()
        running = True
    except RuntimeError:
        running = False
    if running:  # called from inside a running loop (unusual): use a helper thread
        box = {}

        def runner():
            try:
                box["r"] = asyncio.run(coro)
            except BaseException as e:  # noqa: BLE001
                box["e"] = e

        import threading

        t = threading.Thread(target=runner)
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        return box.get("r")
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
        return _loop.run_until_complete(coro)


class Function:
    """A function package, loaded once per process (cold start)."""

    def __init__(self, root: str | None = None, target: str | None = None, provider: str | None = None,
                 config: dict | None = None):
        t0 = time.perf_counter()
        self.root = os.path.abspath(root or package_root())
        self.config = config if config is not None else load_config(self.root)
        self.provider = provider or self.config.get("provider") or "unknown"
        if target:
            file, export = parse_target(target)
        else:
            h = self.config["handler"]
            file, export = h["file"], h.get("export") or "handler"
        self.file, self.export = file, export
        self.name = self.config.get("function") or os.path.splitext(os.path.basename(file))[0]
        self.timeout_ms = int(self.config.get("timeout_ms") or 10000)
        self.resources = Resources(self.config, self.provider)
        self.handler = load_handler(self.root, file, export)
        self.load_ms = (time.perf_counter() - t0) * 1000.0

    def context(self, request_id: str | None = None, deadline_ms: int | None = None) -> Context:
        return Context(
            function_name=self.name,
            request_id=request_id or _new_request_id(),
            service=self.config.get("service"),
            stage=self.config.get("stage"),
            provider=self.provider,
            deadline_ms=deadline_ms if deadline_ms is not None else now_ms() + self.timeout_ms,
            resources=self.resources,
        )

    def invoke(self, event: dict, context: Context):
        from . import trace

        # The event's trace context (a message's is taken out of its attributes) is continued.
        context.traceparent, token = trace.enter(event)
        try:
            result = self.handler(event, context)
            if _isawaitable(result):
                result = _run_coroutine(_await(result))
            return result
        finally:
            trace.leave(token)

    # -- convenience for adapters

    def triggers(self, *types):
        return [t for t in self.config.get("triggers") or [] if isinstance(t, dict) and t.get("type") in types]

    def resource_spec(self, name):
        spec = (self.config.get("resources") or {}).get(name)
        return spec if isinstance(spec, dict) else {}


async def _await(aw):
    return await aw


def _new_request_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _isawaitable(obj) -> bool:
    """``inspect.isawaitable``, without importing inspect."""
    return (isinstance(obj, types.CoroutineType)
            or isinstance(obj, types.GeneratorType) and bool(obj.gi_code.co_flags & 0x100)  # CO_ITERABLE_COROUTINE
            or isinstance(obj, Awaitable))


_functions: dict = {}
_functions_lock = _thread.allocate_lock()


def get_function(target: str | None = None, provider: str | None = None, root: str | None = None) -> Function:
    """The process-wide loaded function for ``target`` (default: function.json's handler)."""
    key = (os.path.abspath(root or package_root()), target, provider)
    fn = _functions.get(key)
    if fn is None:
        with _functions_lock:
            fn = _functions.get(key)
            if fn is None:
                fn = Function(root=key[0], target=target, provider=provider)
                _functions[key] = fn
    return fn


# --------------------------------------------------------------------------- JSON & time helpers


def _json_default(o):
    decimal = sys.modules.get("decimal")  # no Decimal can exist unless decimal was imported
    if decimal is not None and isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    if isinstance(o, (_dt.datetime, _dt.date, _dt.time)):
        return o.isoformat()
    if isinstance(o, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(o)).decode("ascii")
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


# One encoder for every call: `json.dumps` with options builds a new encoder each time.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default).encode


def dumps(obj) -> str:
    """Compact JSON, the same bytes as Node's JSON.stringify for plain data."""
    return _encode(obj)


def rfc3339(value=None) -> str:
    """RFC 3339 UTC with a ``Z`` suffix; fractional seconds kept only when non-zero."""
    if value is None:
        d = _dt.datetime.now(_dt.timezone.utc)
    elif isinstance(value, _dt.datetime):
        d = value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        d = d.astimezone(_dt.timezone.utc)
    elif isinstance(value, (int, float)):
        d = _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    else:
        s = str(value).strip()
        if s.endswith("Z") or s.endswith("z"):
            s = s[:-1] + "+00:00"
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", s)
        if m:  # Python < 3.11-safe handling of long fractions
            s = "%s.%s%s" % (m.group(1), (m.group(2) + "000000")[:6], m.group(3))
        d = _dt.datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=_dt.timezone.utc)
        d = d.astimezone(_dt.timezone.utc)
    if d.microsecond:
        ms = d.microsecond // 1000
        if ms:
            return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def b64decode_text(data) -> str:
    """base64 -> str (UTF-8; undecodable bytes become U+FFFD)."""
    if data is None:
        return ""
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
    return raw.decode("utf-8", errors="replace")


def text_of(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    return bytes(raw).decode("utf-8", errors="replace")


def body_of(raw) -> tuple:
    """Raw request bytes -> (body, is_base64): text when valid UTF-8, else base64; empty -> None."""
    if raw is None:
        return None, False
    if isinstance(raw, str):
        return (raw if raw != "" else None), False
    raw = bytes(raw)
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


def join_headers(pairs) -> dict:
    """Iterable of (name, value) -> {lower-cased name: values joined with ", "}."""
    out: dict = {}
    for k, v in pairs:
        if v is None:
            continue
        k = str(k).lower()
        v = str(v)
        out[k] = out[k] + ", " + v if k in out else v
    return out


def join_query(pairs) -> dict:
    """Iterable of (key, value) -> {key: values joined with ","}."""
    out: dict = {}
    for k, v in pairs:
        v = "" if v is None else str(v)
        out[k] = out[k] + "," + v if k in out else v
    return out


def query_from_string(qs: str) -> dict:
    from urllib.parse import parse_qsl

    return join_query(parse_qsl(qs or "", keep_blank_values=True))


def first_ip(value) -> str | None:
    """First address of an X-Forwarded-For value, without an IPv4 ``:port`` suffix."""
    if not value:
        return None
    ip = str(value).split(",")[0].strip()
    if re.match(r"^\d+\.\d+\.\d+\.\d+:\d+$", ip):
        ip = ip.rsplit(":", 1)[0]
    elif ip.startswith("[") and "]" in ip:
        ip = ip[1:ip.index("]")]
    return ip or None


# --------------------------------------------------------------------------- routes


def _route_segments(template: str):
    """``/files/{path+}`` -> [("lit", "files"), ("greedy", "path")]; Azure's ``{*path}`` is greedy too."""
    out = []
    for seg in (s for s in str(template).split("/") if s):
        m = re.fullmatch(r"\{(\*?)([A-Za-z_][A-Za-z0-9_-]*)(\+?)\}", seg)
        if m:
            out.append(("greedy" if (m.group(1) or m.group(3)) else "param", m.group(2)))
        else:
            out.append(("lit", seg))
    return out


_RANK = {"lit": 0, "param": 1, "greedy": 2}


def route_order(template: str, method: str):
    """The neutral precedence key of a route (smaller wins): segment by segment from the left a
    literal beats a ``{param}``, which beats a greedy ``{rest+}``; then the longer template; then
    a named method beats ``ANY``. The local router (``nimbus-local/src/router.rs``) sorts alike."""
    segs = _route_segments(template)
    return ([_RANK[k] for k, _ in segs], -len(segs), str(method or "ANY").upper() in ("ANY", "*"))


def match_template(template: str, raw_path: str):
    """Path parameters of ``raw_path`` (percent-encoded, as sent) under ``template``, or ``None``.

    Empty segments are ignored (``/a//b/`` is ``/a/b``); each segment is percent-decoded on its
    own, so an encoded ``/`` (``%2F``) stays inside its segment; a greedy parameter takes one or
    more segments, decoded one by one and joined with ``/`` (``a/b/c``, no leading ``/``)."""
    from urllib.parse import unquote

    parts = [p for p in str(raw_path or "/").split("?", 1)[0].split("/") if p]
    params = {}
    segs = _route_segments(template)
    for i, (kind, value) in enumerate(segs):
        if kind == "greedy":
            if i >= len(parts):
                return None
            params[value] = "/".join(unquote(p) for p in parts[i:])
            return params
        if i >= len(parts):
            return None
        if kind == "lit":
            if unquote(parts[i]) != value:
                return None
        else:
            params[value] = unquote(parts[i])
    return params if len(segs) == len(parts) else None


def match_route(triggers, method: str, raw_path: str):
    """Match ``raw_path`` (percent-encoded) against the function's http trigger paths, the most
    specific route first (:func:`route_order`); ``HEAD`` is served by a ``GET`` route.

    Returns ``(route, path_params)``; ``(None, {})`` when nothing matches."""
    method = (method or "").upper()
    http = [t for t in triggers if isinstance(t, dict) and t.get("type") == "http" and t.get("path")]
    http.sort(key=lambda t: route_order(t["path"], t.get("method")))
    head_by_get = None
    for t in http:
        tm = (t.get("method") or "ANY").upper()
        head = method == "HEAD" and tm == "GET"
        if tm not in ("ANY", "*", method) and not head:
            continue
        params = match_template(t["path"], raw_path)
        if params is None:
            continue
        if not head:
            return t["path"], params
        # HEAD falls back to a GET route only when no route takes HEAD itself
        head_by_get = head_by_get or (t["path"], params)
    return head_by_get or (None, {})


# --------------------------------------------------------------------------- resource names


def env_var_part(name: str) -> str:
    """``order-events`` -> ``ORDER_EVENTS``: a neutral name inside a deployment's variable names
    (the providers' ``env.rs`` ``var_part``)."""
    return str(name).upper().replace("-", "_")


def with_env_natives(config: dict, resource_fields, schedule_field: str, env=None) -> dict:
    """function.json with the deployment's native names merged into ``native``, for providers
    whose packaging leaves ``native`` empty: ``NIMBUS_RESOURCE_<R>_<FIELD>`` for each of
    ``resource_fields`` (set as ``{field.lower(): value}`` on resource R) and
    ``NIMBUS_SCHEDULE_<T>_<schedule_field>`` for each schedule trigger T. With them,
    ``resolve_resource`` / ``resolve_schedule`` map a native source to its neutral name exactly,
    also for two triggers of the same type. Returns a copy; ``config`` itself is unchanged."""
    env = os.environ if env is None else env
    out = config
    resources = config.get("resources")
    if isinstance(resources, dict):
        merged = {}
        for name, spec in resources.items():
            if isinstance(spec, dict) and isinstance(name, str):
                extra = {}
                for field in resource_fields:
                    v = env.get("NIMBUS_RESOURCE_%s_%s" % (env_var_part(name), field))
                    if v:
                        extra[field.lower()] = v
                if extra:
                    spec = dict(spec, native=[spec.get("native"), extra])
            merged[name] = spec
        out = dict(out, resources=merged)
    triggers = config.get("triggers")
    if isinstance(triggers, list):
        merged = []
        for t in triggers:
            if isinstance(t, dict) and t.get("type") == "schedule" and isinstance(t.get("name"), str):
                v = env.get("NIMBUS_SCHEDULE_%s_%s" % (env_var_part(t["name"]), schedule_field))
                if v:
                    t = dict(t, native=[t.get("native"), {schedule_field.lower(): v}])
            merged.append(t)
        out = dict(out, triggers=merged)
    return out


def _native_strings(native):
    if isinstance(native, str):
        yield native
    elif isinstance(native, dict):
        for v in native.values():
            yield from _native_strings(v)
    elif isinstance(native, list):
        for v in native:
            yield from _native_strings(v)


def resolve_resource(config: dict, types, candidates, fallback=None):
    """Neutral resource name for a native source.

    1. a resource of one of ``types`` whose ``native`` holds one of ``candidates``;
    2. else the resource of the function's only trigger of one of ``types``;
    3. else ``fallback`` (the native name).
    Returns ``(name, type)``."""
    types = tuple(types)
    cands = {c for c in candidates if c}
    for name, spec in (config.get("resources") or {}).items():
        if isinstance(spec, dict) and spec.get("type") in types:
            if cands & set(_native_strings(spec.get("native"))):
                return name, spec.get("type")
    trig = [t for t in config.get("triggers") or [] if isinstance(t, dict) and t.get("type") in types]
    if len(trig) == 1 and trig[0].get("resource"):
        return trig[0]["resource"], trig[0]["type"]
    ttype = trig[0]["type"] if trig and all(t["type"] == trig[0]["type"] for t in trig) else types[0]
    return fallback, ttype


def resolve_schedule(config: dict, candidates, fallback=None) -> str:
    """Neutral schedule name: the schedule trigger whose ``native`` holds a candidate,
    else the only schedule trigger's name, else ``fallback``, else the function name."""
    cands = {c for c in candidates if c}
    trig = [t for t in config.get("triggers") or [] if isinstance(t, dict) and t.get("type") == "schedule"]
    for t in trig:
        native = set(_native_strings(t.get("native")))
        native |= {n.rsplit("/", 1)[-1] for n in native}  # a job/rule path also matches its short name
        if t.get("name") and cands & native:
            return t["name"]
    if len(trig) == 1 and trig[0].get("name"):
        return trig[0]["name"]
    return fallback or config.get("function")


# --------------------------------------------------------------------------- results


def _is_bytes(v):
    return isinstance(v, (bytes, bytearray, memoryview))


def _header_get(headers: dict, name: str):
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def unrouted(event: dict, config: dict) -> bool:
    """Whether an HTTP ``event`` reached a function none of whose routes matches it: a platform
    whose catch-all also takes an empty tail (GCP's ``{x=**}``, Azure's ``{*x}``) calls it for
    ``/files/`` where the neutral ``/files/{x+}`` needs one segment. The shim answers
    :data:`NOT_FOUND` then, as AWS and the local gateway do, and the handler never runs."""
    http = [t for t in config.get("triggers") or [] if isinstance(t, dict) and t.get("type") == "http"]
    return bool(http) and event.get("route") is None


# The answer to a request no route serves: API Gateway HTTP API's own 404.
NOT_FOUND = {"status": 404, "headers": {"content-type": "application/json"},
             "body": '{"message":"Not Found"}', "is_base64": False}


def normalize_http(result) -> dict:
    """Handler result -> ``{"status", "headers", "body", "is_base64"}``.

    ``headers`` values are strings, or lists of strings for repeated headers
    (e.g. several ``set-cookie``); ``body`` is a string or None."""
    if result is None:
        return {"status": 204, "headers": {}, "body": None, "is_base64": False}
    if isinstance(result, str):
        return {"status": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": result, "is_base64": False}
    if _is_bytes(result):
        return {"status": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(result)).decode("ascii"), "is_base64": True}
    if isinstance(result, dict) and "status" in result:
        status = result.get("status")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ResultError("http result status must be an integer 100..599, got %r" % (status,))
        headers = {}
        raw_headers = result.get("headers") or {}
        if not isinstance(raw_headers, dict):
            raise ResultError("http result headers must be an object, got %s" % type(raw_headers).__name__)
        for k, v in raw_headers.items():
            if v is None:
                continue
            if isinstance(v, (list, tuple)):
                headers[str(k)] = [str(x) for x in v]
            elif isinstance(v, bool):
                headers[str(k)] = "true" if v else "false"
            else:
                headers[str(k)] = str(v)
        body = result.get("body")
        is_b64 = bool(result.get("is_base64", False))
        if body is None:
            pass
        elif isinstance(body, str):
            if _header_get(headers, "content-type") is None:
                headers["content-type"] = "application/octet-stream" if is_b64 else "text/plain; charset=utf-8"
        elif _is_bytes(body):
            body = base64.b64encode(bytes(body)).decode("ascii")
            is_b64 = True
            if _header_get(headers, "content-type") is None:
                headers["content-type"] = "application/octet-stream"
        else:
            body = dumps(body)
            is_b64 = False
            if _header_get(headers, "content-type") is None:
                headers["content-type"] = "application/json"
        return {"status": status, "headers": headers, "body": body, "is_base64": is_b64}
    if isinstance(result, (dict, list, int, float, bool)):
        return {"status": 200, "headers": {"content-type": "application/json"}, "body": dumps(result), "is_base64": False}
    raise ResultError("http handler returned unsupported %s" % type(result).__name__)


def http_body_bytes(res: dict) -> bytes:
    body = res.get("body")
    if body is None:
        return b""
    return base64.b64decode(body) if res.get("is_base64") else body.encode("utf-8")


def header_pairs(headers: dict):
    """Normalized headers -> list of (name, value), repeated names expanded."""
    out = []
    for k, v in headers.items():
        if isinstance(v, list):
            out.extend((k, x) for x in v)
        else:
            out.append((k, v))
    return out


def normalize_batch(result, event: dict) -> list:
    """Queue/topic handler result -> list of failed message ids (in batch order)."""
    if result is None or not isinstance(result, dict) or "failed" not in result:
        return []
    failed = result.get("failed")
    if failed is None:
        return []
    if isinstance(failed, (str, bytes)) or not isinstance(failed, (list, tuple, set)):
        raise ResultError('"failed" must be a list of message ids, got %s' % type(failed).__name__)
    ids = [m.get("id") for m in event.get("messages") or []]
    wanted = set()
    for f in failed:
        if not isinstance(f, str):
            raise ResultError('"failed" must hold message ids (strings), got %r' % (f,))
        if f not in ids:
            raise ResultError('"failed" names %r, which is not a message of this batch' % f)
        wanted.add(f)
    return [i for i in ids if i in wanted]


def normalize_result(event: dict, result):
    """Normalized result as the local worker protocol carries it."""
    t = event.get("type")
    if t == "http":
        return normalize_http(result)
    if t in ("queue", "topic"):
        return {"failed": normalize_batch(result, event)}
    return None


def user_traceback(exc: BaseException, _seen=None) -> str:
    """The traceback of ``exc`` as the user wrote it: the shim's own frames (and the import
    machinery's) are dropped, so the first frame is the user's file:line; paths below the working
    directory (the package root, for the local worker) are made relative to it. A cause or
    context comes first, as Python prints it."""
    import traceback

    seen = _seen if _seen is not None else set()
    seen.add(id(exc))
    before = ""
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        before = (user_traceback(cause, seen)
                  + "\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        before = (user_traceback(context, seen)
                  + "\nDuring handling of the above exception, another exception occurred:\n\n")
    shim = os.path.dirname(os.path.abspath(__file__)) + os.sep
    cwd = os.getcwd() + os.sep
    frames = []
    for f in traceback.extract_tb(exc.__traceback__):
        name = f.filename
        if name.startswith("<frozen") or os.path.abspath(name).startswith(shim):
            continue
        if name.startswith(cwd):
            f.filename = name[len(cwd):]
        frames.append(f)
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return before + "".join(lines)


def error_info(exc: BaseException) -> dict:
    """What the local worker reports of a failure: type, message and the user's traceback (the
    local runtime only; the cloud shims let the provider report errors)."""
    tb = getattr(exc, "user_traceback", None) or user_traceback(exc)
    return {"type": type(exc).__name__, "message": str(exc), "stack": tb}
