"""A discovery-validated control-plane double for the Google Cloud APIs Nimbus's GCP driver calls.

Google publishes no emulator for Cloud Functions, Cloud Scheduler, API Gateway, Eventarc, IAM,
Resource Manager, Cloud Run's IAM or Cloud Logging. This is a *test double* of them, and only
trustworthy because every request it accepts is checked against Google's own published API
reference: the discovery documents that ship in PyPI's ``google-api-python-client``
(``googleapiclient/discovery_cache/documents``), read where pip installed them.

For every request it finds the discovery method by HTTP method and path (``flatPath`` first,
then ``path``), and rejects — with Google's error shape, and in its list of violations — what the
published reference does not allow:

- a path or HTTP method that no method of the API has;
- a query parameter the method does not declare (or the document's global parameters), of the
  wrong type or outside its enum; a field mask (``updateMask``) naming a field the resource
  does not have;
- a body on a method that takes none; a body field the request schema does not have (Google's
  "Unknown name ... Cannot find field"), of the wrong JSON type, outside its enum, in the wrong
  format (durations ``"60s"``, int64, bytes as base64, RFC 3339 times), or a field the reference
  marks ``Required.`` missing from a create;

and then what the services document beyond the schema: names already taken (409), service
accounts, topics, buckets, package objects, Cloud Run services and API configs that must exist
before something refers to them, IAM policy etags (409 on a stale one), policy version 3 for
conditions, immutable API configs, an API config or API still in use (400
``FAILED_PRECONDITION``), cron and time-zone syntax, Scheduler's attempt deadline range.

Resources are kept in memory. Cloud Functions, Eventarc and API Gateway writes are long-running
operations as those APIs document them: the call returns an ``Operation`` (``name``
``projects/P/locations/L/operations/operation-N``, ``metadata``, ``done: false``), which is
``done`` after ``--op-polls`` reads of it (or half a second after it started, read or not, as
Google's go on without the caller), with ``response`` (the resource, ``@type`` set) or
``error`` (a ``google.rpc.Status``). Until then a function is ``DEPLOYING``; a function whose
create fails is left ``FAILED``, as Cloud Functions does. Server-side defaults the services add
are added here too (a function's ``LOG_EXECUTION_ID``, ``availableCpu``, ``url``, its Cloud Run
service), so that reading back is tested against what Google returns, not what was sent.

Pub/Sub, Cloud Storage and Firestore are real emulators; this double fronts them (``--proxy
api=URL``): requests are validated the same way, then forwarded, except the IAM methods the
emulators lack (topics', subscriptions' and buckets' ``getIamPolicy``/``setIamPolicy``), which
are served here; fake-gcs-server keeps no bucket location, labels or IAM configuration, so the
double keeps them from the insert and patches and adds them to the emulator's answers. So every
request of a deploy passes through one log.

Test control, under ``/_double/`` (never a Google path): ``GET requests`` (every request: API,
method id, HTTP method, path, query, body, status, ``write``), ``GET violations``, ``POST reset``
(clears the logs), ``POST faults`` (``{"method": id, "mode": "operation_error" | "http_500" |
"http_500_after_write", "match": [texts the path, query or body all contain], "count": n}``), ``POST mutate`` (``{"name": resource,
"set": {"a.b": value}}``: a change made outside Nimbus), ``GET resources``, ``POST logs`` (log
entries for ``entries.list``), ``GET invocations``. A function's URL is served under ``/_fn/``:
requests to it are recorded and answered with a JSON echo of what arrived.

Usage: ``python control_plane_double.py --port 0 [--proxy pubsub=http://…] [--op-polls 1]``;
prints ``{"url": …}`` as one line on stdout when it listens; stops on SIGTERM or when stdin closes
(``--stdin-eof``).

``POST /_double/oauth2/token`` stands for Google's OAuth token endpoint, for tests whose service
account key names it as ``token_uri`` (see ``Handler.token``); requests carry the token it gave in
the log's ``authorization``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The API (the first path segment of a request to the double) -> its discovery document.
DOCUMENTS = {
    "cloudfunctions": "cloudfunctions.v2.json",
    "cloudscheduler": "cloudscheduler.v1.json",
    "apigateway": "apigateway.v1.json",
    "iam": "iam.v1.json",
    "cloudresourcemanager": "cloudresourcemanager.v1.json",
    "run": "run.v2.json",
    "eventarc": "eventarc.v1.json",
    "logging": "logging.v2.json",
    "pubsub": "pubsub.v1.json",
    "storage": "storage.v1.json",
    "firestore": "firestore.v1.json",
    "secretmanager": "secretmanager.v1.json",
}

# Methods that read (everything else that is not a GET writes).
READ_SUFFIXES = (".get", ".list", ".getIamPolicy", ".testIamPermissions", ".listDocuments", ".access")
READ_METHODS = {"logging.entries.list"}

# Served here although the API is proxied: the emulators have no IAM.
SERVED_ON_PROXIED = {
    "pubsub.projects.topics.getIamPolicy",
    "pubsub.projects.topics.setIamPolicy",
    "pubsub.projects.subscriptions.getIamPolicy",
    "pubsub.projects.subscriptions.setIamPolicy",
    "storage.buckets.getIamPolicy",
    "storage.buckets.setIamPolicy",
}

# Bucket fields fake-gcs-server drops and the double keeps (see `Handler.bucket_metadata`).
BUCKET_METADATA_METHODS = {"storage.buckets.insert", "storage.buckets.get", "storage.buckets.patch",
                           "storage.buckets.delete"}
BUCKET_KEPT = ("location", "storageClass", "iamConfiguration", "versioning", "labels")

# Runtimes Cloud Functions (2nd gen) offers (the ones Nimbus maps to and their neighbours).
RUNTIMES = {"python310", "python311", "python312", "python313", "nodejs18", "nodejs20", "nodejs22"}

# Domains of Google-managed service accounts (service agents): they exist without being created.
AGENT_DOMAINS = ("gcp-sa-", "gs-project-accounts.", "cloudservices.", "developer.", "cloudbuild.")


class ApiError(Exception):
    """An error answered in Google's shape: ``{"error": {"code", "message", "status"}}``."""

    STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 500: "INTERNAL",
              412: "FAILED_PRECONDITION", 403: "PERMISSION_DENIED"}

    def __init__(self, code: int, message: str, status: str | None = None, violation: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or self.STATUS.get(code, "UNKNOWN")
        # A request the published reference does not allow (a bug of the client, not a state).
        self.violation = violation

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT", violation=True)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------------------ discovery


class Method:
    def __init__(self, api: str, doc: dict, raw: dict):
        self.api = api
        self.doc = doc
        self.id = raw["id"]
        self.http = raw["httpMethod"]
        self.params = raw.get("parameters") or {}
        self.request = (raw.get("request") or {}).get("$ref")
        self.response = (raw.get("response") or {}).get("$ref")
        service_path = doc.get("servicePath") or ""
        self.patterns = []  # (regex, names, from_flat, literal length)
        templates = []
        if raw.get("flatPath"):
            templates.append((service_path + raw["flatPath"], True))
        templates.append((service_path + raw["path"], False))
        for proto in ((raw.get("mediaUpload") or {}).get("protocols") or {}).values():
            templates.append((proto["path"].lstrip("/"), True))
        for template, flat in templates:
            names = []

            def group(m):
                names.append(m.group(2))
                return "(.+)" if m.group(1) == "+" else "([^/:]+)"

            literal = re.sub(r"\{(\+?)([^}]+)\}", "", template)
            pattern = re.sub(r"\{(\+?)([^}]+)\}", group, re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
            self.patterns.append((re.compile("^/" + pattern + "$"), names, flat, len(literal)))
        # Path parameters bound to the body's fields (HTTP transcoding of `{+name}`).
        self.path_fields = set(re.findall(r"\{\+?([^}]+)\}", raw["path"]))

    def match(self, path: str):
        best = None
        for regex, names, flat, literal in self.patterns:
            m = regex.match(path)
            if m:
                rank = (flat, literal)
                if best is None or rank > best[0]:
                    best = (rank, {n: urllib.parse.unquote(v) for n, v in zip(names, m.groups())})
        return best

    @property
    def writes(self) -> bool:
        return not (self.id.endswith(READ_SUFFIXES) or self.id in READ_METHODS)


class Discovery:
    """Google's discovery documents of the APIs, and request validation against them."""

    def __init__(self, directory: str):
        self.docs = {}
        self.methods: dict[str, list[Method]] = {}
        for api, file in DOCUMENTS.items():
            with open(os.path.join(directory, file), encoding="utf-8") as f:
                doc = json.load(f)
            self.docs[api] = doc
            methods = []

            def walk(resource):
                for raw in (resource.get("methods") or {}).values():
                    methods.append(Method(api, doc, raw))
                for sub in (resource.get("resources") or {}).values():
                    walk(sub)

            walk(doc)
            self.methods[api] = methods

    def resolve(self, api: str, http_method: str, path: str) -> tuple[Method, dict]:
        if api not in self.methods:
            raise invalid("no API `%s` in the double (known: %s)" % (api, ", ".join(sorted(DOCUMENTS))))
        found = []
        for m in self.methods[api]:
            hit = m.match(path)
            if hit:
                found.append((hit[0], m, hit[1]))
        if not found:
            raise invalid("%s %s: no method of %s has this path (discovery document %s)"
                          % (http_method, path, api, DOCUMENTS[api]))
        same = [f for f in found if f[1].http == http_method]
        if not same:
            raise invalid("%s %s: the path is %s's %s, which takes %s, not %s"
                          % (http_method, path, api, found[0][1].id,
                             "/".join(sorted({f[1].http for f in found})), http_method))
        same.sort(key=lambda f: f[0], reverse=True)
        return same[0][1], same[0][2]

    def schema(self, api: str, ref: str) -> dict:
        return self.docs[api]["schemas"][ref]

    # ------------------------------------------------------------------ query

    def check_query(self, method: Method, query: dict[str, list[str]]):
        glob = self.docs[method.api].get("parameters") or {}
        for key, values in query.items():
            spec = method.params.get(key) or glob.get(key)
            if spec is None or spec.get("location") == "path":
                raise invalid("%s: unknown query parameter `%s` (the method takes: %s)" % (
                    method.id, key, ", ".join(sorted(k for k, v in method.params.items()
                                                     if v.get("location") == "query")) or "none"))
            if len(values) > 1 and not spec.get("repeated"):
                raise invalid("%s: query parameter `%s` given %d times" % (method.id, key, len(values)))
            for v in values:
                self.check_scalar(method.api, spec, v, "query parameter `%s`" % key, from_text=True,
                                  mask_of=method.request or method.response)
        for key, spec in method.params.items():
            if spec.get("location") == "query" and spec.get("required") and key not in query:
                raise invalid("%s: required query parameter `%s` is missing" % (method.id, key))

    # ------------------------------------------------------------------ bodies

    def check_body(self, method: Method, body, path_params: dict, partial: bool):
        if method.request is None:
            if body not in (None, b"", {}):
                raise invalid("%s takes no request body, but one was sent" % method.id)
            return
        if not isinstance(body, dict):
            raise invalid("%s: the request body must be a JSON object of type %s" % (method.id, method.request))
        bound = {camel(p) for p in method.path_fields}
        self.check_object(method.api, method.request, body, snake(method.request[0].lower() + method.request[1:]),
                          required=not partial, bound=bound)

    def check_object(self, api, ref, value, where, required=True, bound=frozenset()):
        schema = self.schema(api, ref)
        props = schema.get("properties") or {}
        if not isinstance(value, dict):
            raise invalid("Invalid value at '%s' (type.googleapis.com/%s), expected an object" % (where, ref))
        for key, v in value.items():
            name = key if key in props else camel(key)
            if name not in props:
                raise invalid('Invalid JSON payload received. Unknown name "%s" at \'%s\': Cannot find field.'
                              % (key, where))
            self.check_value(api, props[name], v, "%s.%s" % (where, snake(name)), required)
            if (props[name].get("format") == "google-fieldmask" and isinstance(v, str)):
                others = [p for p in props if p != name and props[p].get("$ref")]
                if len(others) == 1:
                    self.check_mask(api, props[others[0]]["$ref"], v, "%s.%s" % (where, snake(name)))
        if required:
            for name, p in props.items():
                described = (p.get("description") or "").lstrip()
                if described.startswith("Required") and not p.get("readOnly") \
                        and name not in value and snake(name) not in value and name not in bound:
                    raise invalid("%s: required field `%s` is missing" % (where, name))

    def check_value(self, api, spec, v, where, required):
        if v is None:
            return  # proto3 JSON: null is the default value
        if "$ref" in spec:
            return self.check_object(api, spec["$ref"], v, where, required)
        t = spec.get("type")
        if t == "object":
            if not isinstance(v, dict):
                raise invalid("Invalid value at '%s', expected a JSON object" % where)
            if "additionalProperties" in spec:
                for k, x in v.items():
                    self.check_value(api, spec["additionalProperties"], x, "%s[%s]" % (where, k), required)
            elif "properties" in spec:
                for k in v:
                    if k not in spec["properties"] and camel(k) not in spec["properties"]:
                        raise invalid('Invalid JSON payload received. Unknown name "%s" at \'%s\'' % (k, where))
            return
        if t == "array":
            if not isinstance(v, list):
                raise invalid("Invalid value at '%s', expected a JSON array" % where)
            for i, x in enumerate(v):
                self.check_value(api, spec.get("items") or {}, x, "%s[%d]" % (where, i), required)
            return
        if t == "any" or t is None:
            return
        self.check_scalar(api, spec, v, "'%s'" % where)

    def check_scalar(self, api, spec, v, where, from_text=False, mask_of=None):
        t, fmt = spec.get("type"), spec.get("format")
        if t == "boolean":
            ok = v in ("true", "false") if from_text else isinstance(v, bool)
            if not ok:
                raise invalid("Invalid value at %s (TYPE_BOOL), %r" % (where, v))
            return
        if t in ("integer", "number"):
            if isinstance(v, bool):
                raise invalid("Invalid value at %s, %r is not a number" % (where, v))
            try:
                n = float(v) if t == "number" else int(v)
            except (TypeError, ValueError):
                raise invalid("Invalid value at %s (TYPE_%s), %r" % (where, (fmt or t).upper(), v)) from None
            if fmt == "int32" and not -2**31 <= n < 2**31:
                raise invalid("Invalid value at %s: %r is out of range for int32" % (where, v))
            return
        if t == "string":
            if not isinstance(v, str):
                # proto3 JSON takes 64-bit integers as numbers too
                if fmt in ("int64", "uint64") and isinstance(v, int) and not isinstance(v, bool):
                    return
                raise invalid("Invalid value at %s (TYPE_STRING), %r" % (where, v))
            if spec.get("enum") and v not in spec["enum"]:
                raise invalid("Invalid value at %s (TYPE_ENUM), %r (one of %s)" % (where, v, ", ".join(spec["enum"])))
            if fmt in ("int64", "uint64") and not re.fullmatch(r"-?\d+", v):
                raise invalid("Invalid value at %s (TYPE_INT64), %r" % (where, v))
            if fmt == "google-duration" and not re.fullmatch(r"-?\d+(\.\d{1,9})?s", v):
                raise invalid("Invalid value at %s (type.googleapis.com/google.protobuf.Duration), %r" % (where, v))
            if fmt == "google-datetime":
                try:
                    datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
                except ValueError:
                    raise invalid("Invalid value at %s (type.googleapis.com/google.protobuf.Timestamp), %r"
                                  % (where, v)) from None
            if fmt == "byte":
                try:
                    base64.b64decode(v.replace("-", "+").replace("_", "/") + "=" * (-len(v) % 4), validate=True)
                except ValueError:
                    raise invalid("Invalid value at %s (TYPE_BYTES), not base64" % where) from None
            if fmt == "google-fieldmask" and mask_of:
                self.check_mask(api, mask_of, v, where)

    def check_mask(self, api, ref, mask, where):
        for path in filter(None, mask.split(",")):
            schema_ref, spec = ref, None
            for part in path.strip().split("."):
                if schema_ref is None:
                    if spec is not None and spec.get("type") == "object" and "additionalProperties" in spec:
                        break  # a map key
                    raise invalid("%s: field mask path `%s`: `%s` is not a message" % (where, path, part))
                props = self.schema(api, schema_ref).get("properties") or {}
                name = part if part in props else camel(part)
                if name not in props:
                    raise invalid("%s: field mask path `%s` names no field of %s" % (where, path, schema_ref))
                spec = props[name]
                if spec.get("readOnly"):
                    raise invalid("%s: field mask path `%s` is output only" % (where, path))
                schema_ref = spec.get("$ref")


# ------------------------------------------------------------------------------------ the state


def get_path(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def set_path(obj, dotted, value):
    parts = dotted.split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    if value is None:
        obj.pop(parts[-1], None)
    else:
        obj[parts[-1]] = value


def apply_mask(stored: dict, body: dict, mask: str | None, immutable=("name",)):
    """A PATCH: the fields in the mask (every field of the body without one) from the body."""
    if not mask:
        for k, v in body.items():
            if k not in immutable:
                stored[k] = copy.deepcopy(v)
        return
    for path in mask.split(","):
        path = ".".join(camel(p) for p in path.strip().split("."))
        set_path(stored, path, copy.deepcopy(get_path(body, path)))


class State:
    def __init__(self, base_url: str, op_polls: int, op_seconds: float = 0.5):
        self.lock = threading.RLock()
        self.base_url = base_url
        self.op_polls = op_polls
        # An operation nobody polls (its answer was lost) still completes, as Google's do.
        self.op_seconds = op_seconds
        self.projects: dict[str, dict] = {}
        self.accounts: dict[str, dict] = {}  # by email
        self.functions: dict[str, dict] = {}
        self.services: dict[str, dict] = {}  # Cloud Run services of functions
        self.triggers: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        self.apis: dict[str, dict] = {}
        self.configs: dict[str, dict] = {}
        self.gateways: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.secrets: dict[str, dict] = {}  # Secret Manager secrets by full name
        self.versions: dict[str, list[dict]] = {}  # their versions (with the payload) by secret
        self.buckets: dict[str, dict] = {}  # what fake-gcs-server does not keep
        self.operations: dict[str, dict] = {}
        self.log_entries: list[dict] = []
        self.invocations: list[dict] = []
        self.requests: list[dict] = []
        self.violations: list[dict] = []
        self.faults: list[dict] = []
        self.counter = 0

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def project(self, pid: str) -> dict:
        """Every project exists, with a number derived from its id."""
        if not re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", pid):
            raise ApiError(404, "project `%s` not found (not a valid project id)" % pid)
        with self.lock:
            if pid not in self.projects:
                number = str(int(hashlib.sha256(pid.encode()).hexdigest()[:10], 16) % 10**12)
                self.projects[pid] = {"projectNumber": number, "projectId": pid, "name": pid,
                                      "lifecycleState": "ACTIVE", "createTime": now()}
            return self.projects[pid]

    def settle(self):
        """Completes the operations that are due, polled or not."""
        with self.lock:
            for op in self.operations.values():
                if not op["done"] and op["_due"] <= time.monotonic():
                    API.finish(op)

    def take_fault(self, method_id: str, target: str) -> dict | None:
        with self.lock:
            for f in self.faults:
                wanted = f.get("match") or []
                wanted = [wanted] if isinstance(wanted, str) else wanted
                if f["method"] == method_id and all(w in target for w in wanted) and f["count"] > 0:
                    f["count"] -= 1
                    return f
        return None


# ------------------------------------------------------------------------------------ the APIs


def account_exists(state: State, email: str, where: str):
    if not email:
        return
    domain = email.split("@", 1)[-1]
    if domain.startswith(AGENT_DOMAINS) or domain.endswith(".gserviceaccount.com") and \
            not domain.endswith(".iam.gserviceaccount.com"):
        return
    if email not in state.accounts:
        raise ApiError(400, "%s: service account %s does not exist" % (where, email), "INVALID_ARGUMENT")


def member_exists(state: State, member: str, where: str):
    kind, _, who = member.partition(":")
    if kind not in ("user", "serviceAccount", "group", "domain", "principal", "principalSet") \
            and member not in ("allUsers", "allAuthenticatedUsers"):
        raise invalid("%s: invalid member `%s`" % (where, member))
    if kind == "serviceAccount":
        account_exists(state, who, where)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "control-plane-double"

    # The server's collaborators (set on the class by `serve`).
    discovery: Discovery
    state: State
    proxies: dict[str, str]

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK hold every answer ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ plumbing

    def send_json(self, code: int, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json; charset=UTF-8")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def dispatch(self):
        raw = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        segments = url.path.split("/", 2)
        api = segments[1] if len(segments) > 1 else ""
        rest = "/" + (segments[2] if len(segments) > 2 else "")
        self.state.settle()
        if api == "_double":
            return self.control(rest, raw)
        if api == "_fn":
            return self.invocation(rest, url.query, raw)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        record = {"api": api, "http": self.command, "path": rest, "query": url.query,
                  "method": None, "write": self.command != "GET", "status": None, "body": None,
                  "authorization": self.headers.get("authorization")}
        try:
            body = self.parse_body(raw)
            record["body"] = body if not isinstance(body, bytes) else "<%d bytes>" % len(body)
            method, params = self.discovery.resolve(api, self.command, rest)
            record["method"], record["write"] = method.id, method.writes
            self.discovery.check_query(method, query)
            partial = "updateMask" in query or method.id.endswith(".patch")
            if method.id == "storage.objects.insert":
                record["body"] = self.check_upload(method, raw)
            else:
                self.discovery.check_body(method, body, params, partial)
            fault = self.state.take_fault(method.id, rest + "?" + url.query + json.dumps(record["body"]))
            if fault and fault["mode"] == "http_500":
                raise ApiError(500, "injected by the double: internal error before %s" % method.id)
            if api in self.proxies and method.id not in SERVED_ON_PROXIED:
                status, headers, data = self.forward(api, rest, url.query, raw)
                if method.id in BUCKET_METADATA_METHODS:
                    data = self.bucket_metadata(method.id, params, body, status, data)
                if fault and fault["mode"] == "http_500_after_write":
                    raise ApiError(500, "injected by the double: the answer to %s was lost" % method.id)
                record["status"] = status
                self.log(record)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            handler = getattr(API, method.id.replace(".", "_"), None)
            if handler is None:
                raise invalid("%s is valid but not implemented by the double" % method.id)
            code, answer = handler(self.state, params, query, body, fault)
            if fault and fault["mode"] == "http_500_after_write":
                raise ApiError(500, "injected by the double: the answer to %s was lost" % method.id)
            record["status"] = code
            self.log(record)
            self.send_json(code, answer)
        except ApiError as e:
            record["status"] = e.code
            record["error"] = e.message
            self.log(record)
            if e.violation:
                with self.state.lock:
                    self.state.violations.append(record)
            self.send_json(e.code, e.body())
        except Exception as e:  # a bug of the double: loud
            record["status"] = 500
            record["error"] = "double crashed: %r" % e
            self.log(record)
            with self.state.lock:
                self.state.violations.append(record)
            self.send_json(500, ApiError(500, record["error"]).body())

    def log(self, record):
        with self.state.lock:
            self.state.requests.append(record)

    def bucket_metadata(self, method_id: str, params: dict, body, status: int, data: bytes) -> bytes:
        """fake-gcs-server keeps a bucket's name only: keep what Cloud Storage would keep (its
        location, storage class, IAM configuration, versioning and labels) from the insert and
        patches, and answer reads with it."""
        if status != 200:
            return data
        answer = json.loads(data)
        name = params.get("bucket") or answer.get("name")
        s = self.state
        with s.lock:
            if method_id == "storage.buckets.insert":
                meta = {"location": "US", "storageClass": "STANDARD",
                        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": False},
                                             "publicAccessPrevention": "inherited"}}
                meta.update({k: copy.deepcopy(v) for k, v in body.items() if k in BUCKET_KEPT})
                meta["location"] = meta["location"].upper()
                s.buckets[name] = meta
            elif method_id == "storage.buckets.patch" and name in s.buckets:
                for k, v in body.items():
                    if k in BUCKET_KEPT:
                        s.buckets[name][k] = copy.deepcopy(v)
            elif method_id == "storage.buckets.delete":
                s.buckets.pop(name, None)
                return data
            answer.update(copy.deepcopy(s.buckets.get(name, {})))
        return json.dumps(answer).encode()

    def parse_body(self, raw: bytes):
        if not raw:
            return None
        ctype = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype.startswith("multipart/"):
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            raise invalid("Invalid JSON payload received: the body is not JSON") from None

    def check_upload(self, method: Method, raw: bytes):
        """A multipart upload: its first part is the object's metadata (an `Object`)."""
        ctype = self.headers.get("content-type") or ""
        m = re.search(r"boundary=\"?([^\";]+)", ctype)
        if not m:
            return {"bytes": len(raw)}  # a media upload: bytes only
        parts = raw.split(b"--" + m.group(1).encode())
        head = parts[1] if len(parts) > 1 else b""
        meta = head.split(b"\r\n\r\n", 1)[1].strip() if b"\r\n\r\n" in head else b"{}"
        try:
            meta = json.loads(meta or b"{}")
        except ValueError:
            raise invalid("the first part of a multipart upload must be the object's JSON metadata") from None
        self.discovery.check_object("storage", "Object", meta, "object", required=False)
        return {"metadata": meta, "bytes": len(raw)}

    def forward(self, api: str, path: str, query: str, raw: bytes):
        target = urllib.parse.urlsplit(self.proxies[api])
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "accept", "x-goog-api-client")}
        headers["content-length"] = str(len(raw))
        conn.request(self.command, path + ("?" + query if query else ""), body=raw, headers=headers)
        res = conn.getresponse()
        data = res.read()
        out = [(k, v) for k, v in res.getheaders() if k.lower() in ("content-type", "etag")]
        conn.close()
        return res.status, out, data

    # ------------------------------------------------------------------ /_fn and /_double

    def invocation(self, rest: str, query: str, raw: bytes):
        service, _, path = rest.lstrip("/").partition("/")
        record = {"service": service, "method": self.command, "path": "/" + path, "query": query,
                  "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": raw.decode("utf-8", "replace")}
        with self.state.lock:
            self.state.invocations.append(record)
        known = any(s["name"].rsplit("/", 1)[-1] == service for s in self.state.services.values())
        if not known:
            return self.send_json(404, {"error": "no Cloud Run service `%s`" % service})
        self.send_json(200, {"received": record}, headers=[("x-cloud-trace-context", "double/1")])

    def token(self, raw: bytes):
        """Google's OAuth token endpoint for a service account key: a JWT bearer assertion (RS256,
        ``iss``, ``aud`` this URL, ``iat``/``exp``) gives an access token (``scope``) or an ID
        token (``target_audience``). The signature is not checked (the double has no key); the
        claims are."""
        form = urllib.parse.parse_qs(raw.decode())
        record = {"api": "oauth2", "http": "POST", "path": "/token", "query": "", "method": "oauth2.token",
                  "write": False, "status": 400, "body": None}
        try:
            if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                raise invalid("grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer")
            parts = (form.get("assertion") or [""])[0].split(".")
            if len(parts) != 3:
                raise invalid("the assertion is not a JWT")
            pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
            header = json.loads(base64.urlsafe_b64decode(pad(parts[0])))
            claims = json.loads(base64.urlsafe_b64decode(pad(parts[1])))
            record["body"] = claims
            if header.get("alg") != "RS256":
                raise invalid("the assertion must be signed with RS256")
            if claims.get("aud") != self.state.base_url + "/_double/oauth2/token":
                raise invalid("the assertion's aud must be the token URL, not %r" % claims.get("aud"))
            if not claims.get("iss") or claims.get("exp", 0) <= claims.get("iat", 0):
                raise invalid("the assertion needs iss, iat and a later exp")
            if claims.get("target_audience"):
                payload = base64.urlsafe_b64encode(json.dumps(
                    {"aud": claims["target_audience"], "email": claims["iss"]}).encode()).decode().rstrip("=")
                answer = {"id_token": "double." + payload + ".sig"}
            elif claims.get("scope"):
                answer = {"access_token": "double-access-%d" % self.state.next_id(), "expires_in": 3600,
                          "token_type": "Bearer"}
            else:
                raise invalid("the assertion has neither scope nor target_audience")
            record["status"] = 200
            self.log(record)
            return self.send_json(200, answer)
        except ApiError as e:
            record["error"] = e.message
            self.log(record)
            with self.state.lock:
                self.state.violations.append(record)
            return self.send_json(400, {"error": "invalid_grant", "error_description": e.message})

    def control(self, rest: str, raw: bytes):
        if rest == "/oauth2/token":
            return self.token(raw)
        s = self.state
        body = json.loads(raw) if raw else {}
        with s.lock:
            if rest == "/requests":
                return self.send_json(200, s.requests)
            if rest == "/violations":
                return self.send_json(200, s.violations)
            if rest == "/invocations":
                return self.send_json(200, s.invocations)
            if rest == "/reset":
                s.requests.clear()
                s.invocations.clear()
                return self.send_json(200, {})
            if rest == "/faults":
                s.faults.append({"count": 1, "match": "", **body})
                return self.send_json(200, s.faults)
            if rest == "/logs":
                s.log_entries.extend(body.get("entries") or [])
                return self.send_json(200, {})
            if rest == "/resources":
                return self.send_json(200, {
                    "accounts": s.accounts, "functions": s.functions, "services": s.services,
                    "triggers": s.triggers, "jobs": s.jobs, "apis": s.apis, "configs": s.configs,
                    "gateways": s.gateways, "policies": s.policies, "secrets": s.secrets})
            if rest == "/mutate":
                name = body["name"]
                for table in (s.functions, s.triggers, s.jobs, s.apis, s.gateways, s.accounts):
                    if name in table:
                        for path, value in body.get("set", {}).items():
                            set_path(table[name], path, value)
                        return self.send_json(200, table[name])
                return self.send_json(404, {"error": "no resource %s" % name})
        self.send_json(404, {"error": "unknown control path %s" % rest})


class API:
    """One static method per discovery method id (dots as underscores):
    ``(state, path params, query, body, fault) -> (status, answer)``."""

    # ---------------------------------------------------------------- operations

    @staticmethod
    def operation(state: State, location: str, kind: str, verb: str, target: str, complete, fault):
        """A long-running operation; ``complete()`` runs when it is done and returns the response."""
        name = "%s/operations/operation-%d" % (location, state.next_id())
        op = {"name": name, "done": False,
              "metadata": {"@type": kind, "createTime": now(), "target": target, "verb": verb},
              "_complete": complete, "_polls": state.op_polls, "_due": time.monotonic() + state.op_seconds,
              "_fail": fault is not None and fault["mode"] == "operation_error"}
        with state.lock:
            state.operations[name] = op
        return 200, API.public(op)

    @staticmethod
    def public(op):
        return {k: v for k, v in op.items() if not k.startswith("_")}

    @staticmethod
    def finish(op):
        """Completes `op`: runs its change; `response`, or `error` as a `google.rpc.Status`."""
        op["done"] = True
        op["metadata"]["endTime"] = now()
        try:
            op["response"] = op["_complete"](op["_fail"])
        except ApiError as e:
            op["error"] = {"code": {400: 3, 404: 5, 409: 6, 500: 13}.get(e.code, 2), "message": e.message}

    @staticmethod
    def get_operation(state: State, params, query, body, fault):
        name = "projects/%s/locations/%s/operations/%s" % (params["projectsId"], params["locationsId"],
                                                            params["operationsId"])
        with state.lock:
            op = state.operations.get(name)
            if op is None:
                raise ApiError(404, "operation %s not found" % name)
            if not op["done"]:
                if op["_polls"] > 0:
                    op["_polls"] -= 1
                    op["metadata"]["stage"] = "in progress"
                else:
                    API.finish(op)
            return 200, API.public(op)

    cloudfunctions_projects_locations_operations_get = get_operation
    eventarc_projects_locations_operations_get = get_operation
    apigateway_projects_locations_operations_get = get_operation

    # ---------------------------------------------------------------- resource manager

    @staticmethod
    def cloudresourcemanager_projects_get(state, params, query, body, fault):
        return 200, state.project(params["projectId"])

    @staticmethod
    def policy_of(state: State, key: str):
        with state.lock:
            return state.policies.setdefault(key, {"version": 1, "etag": "BwAAAA==", "bindings": []})

    @staticmethod
    def get_policy(state: State, key: str, requested):
        policy = copy.deepcopy(API.policy_of(state, key))
        if not policy["bindings"]:
            del policy["bindings"]
        return 200, policy

    @staticmethod
    def set_policy(state: State, key: str, policy: dict, where: str):
        with state.lock:
            current = API.policy_of(state, key)
            if policy.get("etag") is not None and policy["etag"] != current["etag"]:
                raise ApiError(409, "%s: there were concurrent policy changes (stale etag)" % where, "ABORTED")
            bindings = policy.get("bindings") or []
            conditions = any(b.get("condition") for b in bindings)
            if conditions and int(policy.get("version") or 1) < 3:
                raise invalid("%s: a policy with conditions must have version 3" % where)
            for b in bindings:
                if not (b.get("role") or "").startswith(("roles/", "projects/", "organizations/")):
                    raise invalid("%s: invalid role `%s`" % (where, b.get("role")))
                for m in b.get("members") or []:
                    member_exists(state, m, where)
            seen = set()
            for b in bindings:
                k = (b["role"], json.dumps(b.get("condition"), sort_keys=True))
                if k in seen:
                    raise invalid("%s: role %s has two bindings with the same condition" % (where, b["role"]))
                seen.add(k)
            n = int.from_bytes(base64.b64decode(current["etag"]), "big") + 1
            new = {"version": 3 if conditions else int(policy.get("version") or 1),
                   "etag": base64.b64encode(n.to_bytes(5, "big")).decode(),
                   "bindings": copy.deepcopy(bindings)}
            state.policies[key] = new
            return 200, copy.deepcopy(new)

    @staticmethod
    def cloudresourcemanager_projects_getIamPolicy(state, params, query, body, fault):
        state.project(params["resource"])
        requested = ((body or {}).get("options") or {}).get("requestedPolicyVersion")
        return API.get_policy(state, "project:" + params["resource"], requested)

    @staticmethod
    def cloudresourcemanager_projects_setIamPolicy(state, params, query, body, fault):
        state.project(params["resource"])
        return API.set_policy(state, "project:" + params["resource"], body["policy"], "project " + params["resource"])

    # ---------------------------------------------------------------- IAM service accounts

    @staticmethod
    def find_account(state: State, project: str, ident: str) -> dict:
        with state.lock:
            for email, sa in state.accounts.items():
                if ident in (email, sa["uniqueId"]) and project in ("-", sa["projectId"]):
                    return sa
        raise ApiError(404, "Unknown service account %s" % ident)

    @staticmethod
    def iam_projects_serviceAccounts_create(state, params, query, body, fault):
        project = params["projectsId"]
        state.project(project)
        account_id = body["accountId"]
        if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])", account_id) or not 6 <= len(account_id) <= 30:
            raise invalid("accountId `%s` must be 6-30 characters of [a-z0-9-], starting with a letter"
                          % account_id)
        sa_in = body.get("serviceAccount") or {}
        if len(sa_in.get("displayName") or "") > 100:
            raise invalid("serviceAccount.displayName is longer than 100 characters")
        if len(sa_in.get("description") or "") > 256:
            raise invalid("serviceAccount.description is longer than 256 characters")
        email = "%s@%s.iam.gserviceaccount.com" % (account_id, project)
        with state.lock:
            if email in state.accounts:
                raise ApiError(409, "Service account %s already exists within project projects/%s."
                               % (account_id, project))
            unique = str(10**20 + state.next_id())
            sa = {"name": "projects/%s/serviceAccounts/%s" % (project, email), "projectId": project,
                  "uniqueId": unique, "email": email, "displayName": sa_in.get("displayName") or "",
                  "description": sa_in.get("description") or "", "etag": "MDEwMjE5MjA=",
                  "oauth2ClientId": unique}
            state.accounts[email] = sa
        return 200, copy.deepcopy(sa)

    @staticmethod
    def iam_projects_serviceAccounts_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.find_account(state, params["projectsId"], params["serviceAccountsId"]))

    @staticmethod
    def iam_projects_serviceAccounts_patch(state, params, query, body, fault):
        sa = API.find_account(state, params["projectsId"], params["serviceAccountsId"])
        mask = body.get("updateMask")
        if not mask:
            raise invalid("updateMask is required")
        with state.lock:
            apply_mask(sa, body.get("serviceAccount") or {}, mask)
        return 200, copy.deepcopy(sa)

    @staticmethod
    def iam_projects_serviceAccounts_delete(state, params, query, body, fault):
        sa = API.find_account(state, params["projectsId"], params["serviceAccountsId"])
        with state.lock:
            del state.accounts[sa["email"]]
        return 200, {}

    # ---------------------------------------------------------------- Cloud Functions

    @staticmethod
    def check_function(state: State, fn: dict, name: str):
        project, region, fid = name.split("/")[1], name.split("/")[3], name.split("/")[-1]
        if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", fid) or len(fid) > 63:
            raise invalid("function id `%s` must match [a-z]([-a-z0-9]*[a-z0-9])? (at most 63)" % fid)
        build = fn.get("buildConfig") or {}
        service = fn.get("serviceConfig") or {}
        if build.get("runtime") not in RUNTIMES:
            raise invalid("buildConfig.runtime `%s` is not a Cloud Functions runtime" % build.get("runtime"))
        if not build.get("entryPoint"):
            raise invalid("buildConfig.entryPoint is required")
        src = (build.get("source") or {}).get("storageSource") or {}
        if not src.get("bucket") or not src.get("object"):
            raise invalid("buildConfig.source.storageSource needs a bucket and an object")
        if not Handler.object_exists(src["bucket"], src["object"]):
            raise ApiError(400, "buildConfig.source: object gs://%s/%s does not exist (upload it first)"
                           % (src["bucket"], src["object"]), "FAILED_PRECONDITION")
        mem = service.get("availableMemory")
        if mem is not None and not re.fullmatch(r"\d+(k|M|G|Mi|Gi)?", mem):
            raise invalid("serviceConfig.availableMemory `%s`: supported units are k, M, G, Mi, Gi" % mem)
        timeout = int(service.get("timeoutSeconds") or 60)
        limit = 540 if fn.get("eventTrigger") else 3600
        if not 1 <= timeout <= limit:
            raise invalid("serviceConfig.timeoutSeconds %d is outside 1-%d" % (timeout, limit))
        for key in (service.get("environmentVariables") or {}):
            if key.startswith("X_GOOGLE_") or key in ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"):
                raise invalid("serviceConfig.environmentVariables: `%s` is reserved" % key)
        account_exists(state, service.get("serviceAccountEmail"), "serviceConfig.serviceAccountEmail")
        API.check_secret_env(state, service, project)
        return project, region, fid

    @staticmethod
    def check_secret_env(state: State, service: dict, project: str):
        """What Cloud Functions checks of ``secretEnvironmentVariables`` at deploy: each names an
        existing secret and version, no variable is also a plain one, and the function's own
        service account may access the secret (else the revision fails to start)."""
        plain = service.get("environmentVariables") or {}
        member = "serviceAccount:%s" % service.get("serviceAccountEmail")
        for i, v in enumerate(service.get("secretEnvironmentVariables") or []):
            where = "serviceConfig.secretEnvironmentVariables[%d]" % i
            for field in ("key", "secret", "version"):
                if not v.get(field):
                    raise invalid("%s.%s is required" % (where, field))
            if v["key"] in plain:
                raise invalid("%s: `%s` is also a plain environment variable" % (where, v["key"]))
            name = "projects/%s/secrets/%s" % (v.get("projectId") or project, v["secret"])
            with state.lock:
                if name not in state.secrets:
                    raise ApiError(400, "%s: secret %s does not exist" % (where, name), "FAILED_PRECONDITION")
                policy = state.policies.get("secret:" + name) or {}
            if not any(b["role"] in ("roles/secretmanager.secretAccessor", "roles/owner")
                       and member in (b.get("members") or []) for b in policy.get("bindings") or []):
                raise ApiError(403, "%s: %s has no roles/secretmanager.secretAccessor on %s"
                               % (where, member, name), "PERMISSION_DENIED")

    @staticmethod
    def served(state: State, fn: dict, project: str, region: str, fid: str):
        """The output-only fields and server-side defaults Cloud Functions adds."""
        number = state.project(project)["projectNumber"]
        service = fn.setdefault("serviceConfig", {})
        svc_name = "projects/%s/locations/%s/services/%s" % (project, region, fid)
        service["service"] = svc_name
        service["uri"] = "%s/_fn/%s" % (state.base_url, fid)
        service["revision"] = "%s-%05d-abc" % (fid, state.next_id())
        service.setdefault("availableMemory", "256M")
        service.setdefault("availableCpu", "0.1666")
        service.setdefault("timeoutSeconds", 60)
        service.setdefault("maxInstanceRequestConcurrency", 1)
        service.setdefault("ingressSettings", "ALLOW_ALL")
        service.setdefault("serviceAccountEmail", "%s-compute@developer.gserviceaccount.com" % number)
        service.setdefault("environmentVariables", {})["LOG_EXECUTION_ID"] = "true"
        build = fn.setdefault("buildConfig", {})
        build["build"] = "projects/%s/locations/%s/builds/%d" % (number, region, state.next_id())
        build.setdefault("dockerRepository", "projects/%s/locations/%s/repositories/gcf-artifacts" % (project, region))
        src = (build.get("source") or {}).get("storageSource")
        if src is not None:
            src.setdefault("generation", "1")
        fn["environment"] = fn.get("environment") or "GEN_2"
        fn["url"] = "https://%s-%s.cloudfunctions.net/%s" % (region, project, fid)
        fn["updateTime"] = now()
        fn.setdefault("createTime", fn["updateTime"])
        state.services[svc_name] = {"name": svc_name, "uri": service["uri"]}

    @staticmethod
    def cloudfunctions_projects_locations_functions_create(state, params, query, body, fault):
        fid = query.get("functionId", [None])[0]
        parent = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        if not fid:
            raise invalid("functionId is required")
        name = "%s/functions/%s" % (parent, fid)
        if body.get("name") not in (None, name):
            raise invalid("function name `%s` does not match the parent and functionId (%s)" % (body["name"], name))
        fn = copy.deepcopy(body)
        fn["name"] = name
        project, region, _ = API.check_function(state, fn, name)
        with state.lock:
            if name in state.functions:
                raise ApiError(409, "Function %s already exists" % fid)
            fn["state"] = "DEPLOYING"
            state.functions[name] = fn

        def complete(fail):
            with state.lock:
                if fail:
                    fn["state"] = "FAILED"
                    fn["stateMessages"] = [{"severity": "ERROR", "type": "BuildFailed",
                                            "message": "Build failed (injected by the double)"}]
                    raise ApiError(400, "Build failed: injected by the double")
                API.served(state, fn, project, region, fid)
                fn["state"] = "ACTIVE"
                fn.pop("stateMessages", None)
                return {"@type": "type.googleapis.com/google.cloud.functions.v2.Function", **copy.deepcopy(fn)}

        return API.operation(state, parent, "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
                             "create", name, complete, fault)

    @staticmethod
    def function(state: State, params) -> tuple[str, dict]:
        name = "projects/%s/locations/%s/functions/%s" % (params["projectsId"], params["locationsId"],
                                                           params["functionsId"])
        with state.lock:
            fn = state.functions.get(name)
        if fn is None:
            raise ApiError(404, "Resource '%s' was not found" % name)
        return name, fn

    @staticmethod
    def cloudfunctions_projects_locations_functions_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.function(state, params)[1])

    @staticmethod
    def cloudfunctions_projects_locations_functions_patch(state, params, query, body, fault):
        name, fn = API.function(state, params)
        if body.get("name") not in (None, name):
            raise invalid("the body's name `%s` is not the function's" % body["name"])
        mask = query.get("updateMask", [None])[0]
        updated = copy.deepcopy(fn)
        for k in ("state", "stateMessages"):
            updated.pop(k, None)
        apply_mask(updated, body, mask)
        parent = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        project, region, fid = API.check_function(state, updated, name)
        with state.lock:
            fn["state"] = "DEPLOYING"

        def complete(fail):
            with state.lock:
                if fail:
                    fn["state"] = "FAILED"
                    raise ApiError(400, "Build failed: injected by the double")
                updated["state"] = "ACTIVE"
                API.served(state, updated, project, region, fid)
                state.functions[name] = updated
                return {"@type": "type.googleapis.com/google.cloud.functions.v2.Function", **copy.deepcopy(updated)}

        return API.operation(state, parent, "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
                             "update", name, complete, fault)

    @staticmethod
    def cloudfunctions_projects_locations_functions_delete(state, params, query, body, fault):
        name, fn = API.function(state, params)
        parent = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        with state.lock:
            fn["state"] = "DELETING"

        def complete(fail):
            with state.lock:
                if fail:
                    fn["state"] = "FAILED"
                    raise ApiError(500, "Delete failed: injected by the double")
                state.functions.pop(name, None)
                svc = (fn.get("serviceConfig") or {}).get("service")
                state.services.pop(svc, None)
                state.policies.pop("run:" + str(svc), None)
                return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return API.operation(state, parent, "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
                             "delete", name, complete, fault)

    # ---------------------------------------------------------------- Cloud Run (IAM only)

    @staticmethod
    def run_service(state: State, params) -> str:
        name = "projects/%s/locations/%s/services/%s" % (params["projectsId"], params["locationsId"],
                                                          params["servicesId"])
        if name not in state.services:
            raise ApiError(404, "Resource '%s' was not found" % name)
        return name

    @staticmethod
    def run_projects_locations_services_getIamPolicy(state, params, query, body, fault):
        name = API.run_service(state, params)
        return API.get_policy(state, "run:" + name, query.get("options.requestedPolicyVersion"))

    @staticmethod
    def run_projects_locations_services_setIamPolicy(state, params, query, body, fault):
        name = API.run_service(state, params)
        return API.set_policy(state, "run:" + name, body["policy"], name)

    # ---------------------------------------------------------------- Pub/Sub and Storage IAM

    @staticmethod
    def upstream_exists(api: str, path: str) -> bool:
        target = urllib.parse.urlsplit(Handler.proxies[api])
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        conn.request("GET", path)
        res = conn.getresponse()
        res.read()
        conn.close()
        return res.status == 200

    @staticmethod
    def pubsub_resource(params, kind):
        name = "projects/%s/%s/%s" % (params["projectsId"], kind, params[kind + "Id"])
        if not API.upstream_exists("pubsub", "/v1/" + name):
            raise ApiError(404, "Resource not found (resource=%s)." % name.rsplit("/", 1)[-1])
        return name

    @staticmethod
    def pubsub_projects_topics_getIamPolicy(state, params, query, body, fault):
        return API.get_policy(state, "pubsub:" + API.pubsub_resource(params, "topics"), None)

    @staticmethod
    def pubsub_projects_topics_setIamPolicy(state, params, query, body, fault):
        name = API.pubsub_resource(params, "topics")
        return API.set_policy(state, "pubsub:" + name, body["policy"], name)

    @staticmethod
    def pubsub_projects_subscriptions_getIamPolicy(state, params, query, body, fault):
        return API.get_policy(state, "pubsub:" + API.pubsub_resource(params, "subscriptions"), None)

    @staticmethod
    def pubsub_projects_subscriptions_setIamPolicy(state, params, query, body, fault):
        name = API.pubsub_resource(params, "subscriptions")
        return API.set_policy(state, "pubsub:" + name, body["policy"], name)

    @staticmethod
    def bucket(params) -> str:
        b = params["bucket"]
        if not API.upstream_exists("storage", "/storage/v1/b/" + urllib.parse.quote(b, safe="")):
            raise ApiError(404, "The specified bucket does not exist.")
        return b

    @staticmethod
    def storage_buckets_getIamPolicy(state, params, query, body, fault):
        b = API.bucket(params)
        code, policy = API.get_policy(state, "storage:" + b, None)
        policy.update({"kind": "storage#policy", "resourceId": "projects/_/buckets/" + b})
        return code, policy

    @staticmethod
    def storage_buckets_setIamPolicy(state, params, query, body, fault):
        b = API.bucket(params)
        if not body.get("bindings") is None and any(m in ("allUsers", "allAuthenticatedUsers")
                                                    for x in body["bindings"] for m in x.get("members", [])):
            raise ApiError(412, "public access prevention is enforced on bucket %s" % b, "FAILED_PRECONDITION")
        code, policy = API.set_policy(state, "storage:" + b, body, "bucket " + b)
        policy.update({"kind": "storage#policy", "resourceId": "projects/_/buckets/" + b})
        return code, policy

    # ---------------------------------------------------------------- Eventarc

    @staticmethod
    def check_trigger(state: State, t: dict, location: str):
        filters = t.get("eventFilters") or []
        types = [f.get("value") for f in filters if f.get("attribute") == "type"]
        if len(types) != 1:
            raise invalid("eventFilters must have exactly one `type` filter")
        attrs = {f.get("attribute"): f for f in filters}
        if len(attrs) != len(filters):
            raise invalid("eventFilters name an attribute twice")
        event = types[0]
        run = ((t.get("destination") or {}).get("cloudRun") or {})
        svc = "projects/%s/locations/%s/services/%s" % (location.split("/")[1], run.get("region"), run.get("service"))
        if svc not in state.services:
            raise ApiError(400, "destination.cloudRun: service %s does not exist" % svc, "INVALID_ARGUMENT")
        account_exists(state, t.get("serviceAccount"), "serviceAccount")
        if event == "google.cloud.pubsub.topic.v1.messagePublished":
            topic = (((t.get("transport") or {}).get("pubsub") or {}).get("topic"))
            if not topic or not API.upstream_exists("pubsub", "/v1/" + topic):
                raise ApiError(400, "transport.pubsub.topic `%s` does not exist" % topic, "INVALID_ARGUMENT")
        elif event.startswith("google.cloud.storage.object.v1."):
            if event.rsplit(".", 1)[-1] not in ("finalized", "deleted", "archived", "metadataUpdated"):
                raise invalid("unknown Cloud Storage event type %s" % event)
            bucket = (attrs.get("bucket") or {}).get("value")
            if not bucket or not API.upstream_exists("storage", "/storage/v1/b/" + bucket):
                raise ApiError(400, "the `bucket` filter names no existing bucket (%s)" % bucket, "INVALID_ARGUMENT")
            if t.get("transport"):
                raise invalid("a Cloud Storage trigger takes no transport")
        elif event.startswith("google.cloud.firestore.document.v1."):
            if event.rsplit(".", 1)[-1] not in ("created", "updated", "deleted", "written") and \
                    not event.endswith(".withAuthContext"):
                raise invalid("unknown Firestore event type %s" % event)
            if "database" not in attrs or "document" not in attrs:
                raise invalid("a Firestore trigger needs `database` and `document` filters")
            if attrs["document"].get("operator") not in (None, "match-path-pattern"):
                raise invalid("the `document` filter's operator must be match-path-pattern")
        else:
            raise invalid("event type %s is not one Eventarc offers here" % event)
        ctype = t.get("eventDataContentType")
        if ctype not in (None, "application/json", "application/protobuf"):
            raise invalid("eventDataContentType `%s` must be application/json or application/protobuf" % ctype)

    @staticmethod
    def trigger(state, params):
        name = "projects/%s/locations/%s/triggers/%s" % (params["projectsId"], params["locationsId"],
                                                          params["triggersId"])
        with state.lock:
            t = state.triggers.get(name)
        if t is None:
            raise ApiError(404, "Resource '%s' was not found" % name)
        return name, t

    @staticmethod
    def eventarc_served(state, t, location):
        project = location.split("/")[1]
        event = next(f["value"] for f in t["eventFilters"] if f["attribute"] == "type")
        t.setdefault("eventDataContentType", "application/json")
        if event != "google.cloud.pubsub.topic.v1.messagePublished":
            short = t["name"].rsplit("/", 1)[-1]
            t["transport"] = {"pubsub": {"topic": "projects/%s/topics/eventarc-%s" % (project, short),
                                         "subscription": "projects/%s/subscriptions/eventarc-%s-sub"
                                                         % (project, short)}}
        else:
            topic = t["transport"]["pubsub"]["topic"]
            t["transport"]["pubsub"]["subscription"] = "projects/%s/subscriptions/eventarc-%s" % (
                project, topic.rsplit("/", 1)[-1])
        t["uid"] = hashlib.sha256(t["name"].encode()).hexdigest()[:32]
        t["etag"] = str(state.next_id())
        t["updateTime"] = now()
        t.setdefault("createTime", t["updateTime"])

    @staticmethod
    def eventarc_projects_locations_triggers_create(state, params, query, body, fault):
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        tid = query.get("triggerId", [None])[0]
        if not tid or not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", tid) or len(tid) > 63:
            raise invalid("triggerId `%s` must match [a-z]([-a-z0-9]*[a-z0-9])? (at most 63)" % tid)
        name = "%s/triggers/%s" % (location, tid)
        if body.get("name") != name:
            raise invalid("the trigger's name `%s` is not %s" % (body.get("name"), name))
        API.check_trigger(state, body, location)
        with state.lock:
            if name in state.triggers:
                raise ApiError(409, "Resource '%s' already exists" % name)
        t = copy.deepcopy(body)

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "Trigger creation failed: injected by the double")
                if name in state.triggers:
                    raise ApiError(409, "Resource '%s' already exists" % name)
                API.eventarc_served(state, t, location)
                state.triggers[name] = t
                return {"@type": "type.googleapis.com/google.cloud.eventarc.v1.Trigger", **copy.deepcopy(t)}

        return API.operation(state, location, "type.googleapis.com/google.cloud.eventarc.v1.OperationMetadata",
                             "create", name, complete, fault)

    @staticmethod
    def eventarc_projects_locations_triggers_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.trigger(state, params)[1])

    @staticmethod
    def eventarc_projects_locations_triggers_patch(state, params, query, body, fault):
        name, t = API.trigger(state, params)
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        mask = query.get("updateMask", [None])[0]
        for path in (mask or "").split(","):
            if path.strip() in ("transport", "eventDataContentType", "name"):
                raise invalid("trigger field `%s` cannot be updated" % path)
        updated = copy.deepcopy(t)
        apply_mask(updated, body, mask, immutable=("name", "transport", "eventDataContentType"))
        API.check_trigger(state, updated, location)

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "Trigger update failed: injected by the double")
                updated["etag"] = str(state.next_id())
                updated["updateTime"] = now()
                state.triggers[name] = updated
                return {"@type": "type.googleapis.com/google.cloud.eventarc.v1.Trigger", **copy.deepcopy(updated)}

        return API.operation(state, location, "type.googleapis.com/google.cloud.eventarc.v1.OperationMetadata",
                             "update", name, complete, fault)

    @staticmethod
    def eventarc_projects_locations_triggers_delete(state, params, query, body, fault):
        name, _ = API.trigger(state, params)
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(500, "Trigger deletion failed: injected by the double")
                t = state.triggers.pop(name, None)
                return {"@type": "type.googleapis.com/google.cloud.eventarc.v1.Trigger", **(t or {})}

        return API.operation(state, location, "type.googleapis.com/google.cloud.eventarc.v1.OperationMetadata",
                             "delete", name, complete, fault)

    # ---------------------------------------------------------------- Cloud Scheduler

    @staticmethod
    def check_job(state: State, job: dict):
        fields = (job.get("schedule") or "").split()
        if len(fields) != 5:
            raise invalid("schedule `%s` is not a unix-cron expression of 5 fields" % job.get("schedule"))
        for f in fields:
            if not re.fullmatch(r"[\d*/,\-A-Za-z?LW#]+", f):
                raise invalid("schedule field `%s` is not cron syntax" % f)
        tz = job.get("timeZone") or "UTC"
        try:
            import zoneinfo
            zoneinfo.ZoneInfo(tz)
        except Exception:
            raise invalid("timeZone `%s` is not a tz database time zone" % tz) from None
        target = job.get("httpTarget")
        if not target:
            raise invalid("the job has no target (Nimbus uses httpTarget)")
        if not re.match(r"https?://", target.get("uri") or ""):
            raise invalid("httpTarget.uri `%s` is not an http(s) URL" % target.get("uri"))
        deadline = job.get("attemptDeadline")
        if deadline is not None and not 15 <= float(deadline[:-1]) <= 1800:
            raise invalid("attemptDeadline %s is outside 15s-1800s for HTTP targets" % deadline)
        oidc = target.get("oidcToken") or {}
        account_exists(state, oidc.get("serviceAccountEmail"), "httpTarget.oidcToken.serviceAccountEmail")

    @staticmethod
    def job(state, params):
        name = "projects/%s/locations/%s/jobs/%s" % (params["projectsId"], params["locationsId"], params["jobsId"])
        with state.lock:
            job = state.jobs.get(name)
        if job is None:
            raise ApiError(404, "Job not found.")
        return name, job

    @staticmethod
    def job_served(job):
        target = job["httpTarget"]
        target.setdefault("headers", {})["User-Agent"] = "Google-Cloud-Scheduler"
        job.setdefault("timeZone", "Etc/UTC")
        job.setdefault("attemptDeadline", "180s")
        job["state"] = "ENABLED"
        job["userUpdateTime"] = now()
        job["retryConfig"] = {"maxRetryDuration": "0s", "minBackoffDuration": "5s",
                              "maxBackoffDuration": "3600s", "maxDoublings": 5}

    @staticmethod
    def cloudscheduler_projects_locations_jobs_create(state, params, query, body, fault):
        parent = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        name = body.get("name") or ""
        if not re.fullmatch(re.escape(parent) + r"/jobs/[A-Za-z0-9_-]{1,500}", name):
            raise invalid("job name `%s` must be %s/jobs/[A-Za-z0-9_-]{1,500}" % (name, parent))
        API.check_job(state, body)
        job = copy.deepcopy(body)
        with state.lock:
            if name in state.jobs:
                raise ApiError(409, "Job %s already exists." % name)
            API.job_served(job)
            state.jobs[name] = job
        return 200, copy.deepcopy(job)

    @staticmethod
    def cloudscheduler_projects_locations_jobs_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.job(state, params)[1])

    @staticmethod
    def cloudscheduler_projects_locations_jobs_patch(state, params, query, body, fault):
        name, job = API.job(state, params)
        updated = copy.deepcopy(job)
        apply_mask(updated, body, query.get("updateMask", [None])[0])
        API.check_job(state, updated)
        with state.lock:
            API.job_served(updated)
            state.jobs[name] = updated
        return 200, copy.deepcopy(updated)

    @staticmethod
    def cloudscheduler_projects_locations_jobs_delete(state, params, query, body, fault):
        name, _ = API.job(state, params)
        with state.lock:
            state.jobs.pop(name, None)
        return 200, {}

    # ---------------------------------------------------------------- API Gateway

    @staticmethod
    def api_op(state, location, verb, target, complete, fault):
        return API.operation(state, location, "type.googleapis.com/google.cloud.apigateway.v1.OperationMetadata",
                             verb, target, complete, fault)

    @staticmethod
    def gw_id(value, what):
        if not value or not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", value) or len(value) > 63:
            raise invalid("%s `%s` must match [a-z]([-a-z0-9]*[a-z0-9])? (at most 63)" % (what, value))

    @staticmethod
    def apigateway_projects_locations_apis_create(state, params, query, body, fault):
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        if params["locationsId"] != "global":
            raise invalid("APIs live in location `global`")
        api_id = query.get("apiId", [None])[0]
        API.gw_id(api_id, "apiId")
        name = "%s/apis/%s" % (location, api_id)
        with state.lock:
            if name in state.apis:
                raise ApiError(409, "Resource '%s' already exists" % name)
        api = {k: copy.deepcopy(v) for k, v in body.items() if k in ("displayName", "labels", "managedService")}

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "API creation failed: injected by the double")
                api.update({"name": name, "state": "ACTIVE", "createTime": now(), "updateTime": now(),
                            "managedService": "%s-%s.apigateway.%s.cloud.goog" % (
                                api_id, hashlib.sha256(name.encode()).hexdigest()[:14], params["projectsId"])})
                state.apis[name] = api
                return {"@type": "type.googleapis.com/google.cloud.apigateway.v1.Api", **copy.deepcopy(api)}

        return API.api_op(state, location, "create", name, complete, fault)

    @staticmethod
    def gw_get(state, table, name):
        with state.lock:
            obj = table.get(name)
        if obj is None:
            raise ApiError(404, "Resource '%s' was not found" % name)
        return obj

    @staticmethod
    def api_name(params):
        return "projects/%s/locations/%s/apis/%s" % (params["projectsId"], params["locationsId"], params["apisId"])

    @staticmethod
    def apigateway_projects_locations_apis_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.gw_get(state, state.apis, API.api_name(params)))

    @staticmethod
    def apigateway_projects_locations_apis_patch(state, params, query, body, fault):
        name = API.api_name(params)
        api = API.gw_get(state, state.apis, name)
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        mask = query.get("updateMask", [None])[0]
        updated = copy.deepcopy(api)
        apply_mask(updated, {k: v for k, v in body.items() if k in ("displayName", "labels")}, mask)

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "API update failed: injected by the double")
                updated["updateTime"] = now()
                state.apis[name] = updated
                return {"@type": "type.googleapis.com/google.cloud.apigateway.v1.Api", **copy.deepcopy(updated)}

        return API.api_op(state, location, "update", name, complete, fault)

    @staticmethod
    def apigateway_projects_locations_apis_delete(state, params, query, body, fault):
        name = API.api_name(params)
        API.gw_get(state, state.apis, name)
        if any(c.startswith(name + "/configs/") for c in state.configs):
            raise ApiError(400, "API %s still has API configs: delete them first" % name, "FAILED_PRECONDITION")
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(500, "API deletion failed: injected by the double")
                state.apis.pop(name, None)
                return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return API.api_op(state, location, "delete", name, complete, fault)

    @staticmethod
    def apigateway_projects_locations_apis_configs_create(state, params, query, body, fault):
        api = API.api_name(params)
        API.gw_get(state, state.apis, api)
        cid = query.get("apiConfigId", [None])[0]
        API.gw_id(cid, "apiConfigId")
        name = "%s/configs/%s" % (api, cid)
        with state.lock:
            if name in state.configs:
                raise ApiError(409, "Resource '%s' already exists" % name)
        account_exists(state, body.get("gatewayServiceAccount"), "gatewayServiceAccount")
        docs = body.get("openapiDocuments") or []
        if not docs and not body.get("grpcServices"):
            raise invalid("an API config needs openapiDocuments or grpcServices")
        for d in docs:
            f = d.get("document") or {}
            try:
                spec = json.loads(base64.b64decode(f.get("contents") or ""))
            except ValueError:
                raise invalid("openapiDocuments[].document.contents is not base64 of a JSON document") from None
            if spec.get("swagger") != "2.0":
                raise invalid("API Gateway takes OpenAPI 2.0 documents (`swagger: \"2.0\"`)")
            for path, ops in (spec.get("paths") or {}).items():
                for verb, op in ops.items():
                    backend = (op.get("x-google-backend") or {}).get("address")
                    if not backend or not backend.startswith(("https://", "http://")):
                        raise invalid("%s %s: x-google-backend.address `%s` is not a URL" % (verb, path, backend))
                    if not op.get("operationId"):
                        raise invalid("%s %s has no operationId" % (verb, path))
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        config = copy.deepcopy({k: v for k, v in body.items() if k not in ("name", "state", "createTime")})

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "API config creation failed: injected by the double")
                config.update({"name": name, "state": "ACTIVE", "createTime": now(), "updateTime": now(),
                               "serviceConfigId": "%s-0" % cid})
                state.configs[name] = config
                return {"@type": "type.googleapis.com/google.cloud.apigateway.v1.ApiConfig",
                        **API.config_view(config, "BASIC")}

        return API.api_op(state, location, "create", name, complete, fault)

    @staticmethod
    def config_view(config, view):
        out = copy.deepcopy(config)
        if view != "FULL":
            out.pop("openapiDocuments", None)
        return out

    @staticmethod
    def config_name(params):
        return API.api_name(params) + "/configs/" + params["configsId"]

    @staticmethod
    def apigateway_projects_locations_apis_configs_get(state, params, query, body, fault):
        config = API.gw_get(state, state.configs, API.config_name(params))
        return 200, API.config_view(config, query.get("view", ["BASIC"])[0])

    @staticmethod
    def apigateway_projects_locations_apis_configs_delete(state, params, query, body, fault):
        name = API.config_name(params)
        API.gw_get(state, state.configs, name)
        users = [g for g, gw in state.gateways.items() if gw.get("apiConfig") == name]
        if users:
            raise ApiError(400, "API config %s is in use by gateway %s" % (name, users[0]), "FAILED_PRECONDITION")
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(500, "API config deletion failed: injected by the double")
                state.configs.pop(name, None)
                return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return API.api_op(state, location, "delete", name, complete, fault)

    @staticmethod
    def apigateway_projects_locations_apis_configs_patch(state, params, query, body, fault):
        mask = query.get("updateMask", [""])[0]
        if any(p.strip() not in ("labels", "displayName") for p in mask.split(",")):
            raise invalid("an API config is immutable but for its labels and display name")
        raise invalid("the double does not expect API configs to be patched")

    @staticmethod
    def gateway_name(params):
        return "projects/%s/locations/%s/gateways/%s" % (params["projectsId"], params["locationsId"],
                                                          params["gatewaysId"])

    @staticmethod
    def check_gateway(state, gw):
        config = gw.get("apiConfig") or ""
        if config not in state.configs:
            raise ApiError(400, "apiConfig `%s` does not exist" % config, "INVALID_ARGUMENT")

    @staticmethod
    def apigateway_projects_locations_gateways_create(state, params, query, body, fault):
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        gid = query.get("gatewayId", [None])[0]
        API.gw_id(gid, "gatewayId")
        if len(gid) > 49:
            raise invalid("gatewayId `%s` is longer than 49" % gid)
        name = "%s/gateways/%s" % (location, gid)
        with state.lock:
            if name in state.gateways:
                raise ApiError(409, "Resource '%s' already exists" % name)
        API.check_gateway(state, body)
        gw = {k: copy.deepcopy(v) for k, v in body.items() if k in ("apiConfig", "displayName", "labels")}

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "Gateway creation failed: injected by the double")
                gw.update({"name": name, "state": "ACTIVE", "createTime": now(), "updateTime": now(),
                           "defaultHostname": "%s-%s.%s.gateway.dev" % (
                               gid, hashlib.sha256(name.encode()).hexdigest()[:8], params["locationsId"])})
                state.gateways[name] = gw
                return {"@type": "type.googleapis.com/google.cloud.apigateway.v1.Gateway", **copy.deepcopy(gw)}

        return API.api_op(state, location, "create", name, complete, fault)

    @staticmethod
    def apigateway_projects_locations_gateways_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.gw_get(state, state.gateways, API.gateway_name(params)))

    @staticmethod
    def apigateway_projects_locations_gateways_patch(state, params, query, body, fault):
        name = API.gateway_name(params)
        gw = API.gw_get(state, state.gateways, name)
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])
        updated = copy.deepcopy(gw)
        apply_mask(updated, {k: v for k, v in body.items() if k in ("apiConfig", "displayName", "labels")},
                   query.get("updateMask", [None])[0])
        API.check_gateway(state, updated)

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(400, "Gateway update failed: injected by the double")
                updated["updateTime"] = now()
                state.gateways[name] = updated
                return {"@type": "type.googleapis.com/google.cloud.apigateway.v1.Gateway", **copy.deepcopy(updated)}

        return API.api_op(state, location, "update", name, complete, fault)

    @staticmethod
    def apigateway_projects_locations_gateways_delete(state, params, query, body, fault):
        name = API.gateway_name(params)
        API.gw_get(state, state.gateways, name)
        location = "projects/%s/locations/%s" % (params["projectsId"], params["locationsId"])

        def complete(fail):
            with state.lock:
                if fail:
                    raise ApiError(500, "Gateway deletion failed: injected by the double")
                state.gateways.pop(name, None)
                return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return API.api_op(state, location, "delete", name, complete, fault)

    # ---------------------------------------------------------------- Cloud Logging

    # ---------------------------------------------------------------- Secret Manager

    @staticmethod
    def secret_name(params) -> str:
        return "projects/%s/secrets/%s" % (params["projectsId"], params["secretsId"])

    @staticmethod
    def find_secret(state: State, params) -> tuple[str, dict]:
        name = API.secret_name(params)
        with state.lock:
            secret = state.secrets.get(name)
        if secret is None:
            raise ApiError(404, "Secret [%s] not found." % name)
        return name, secret

    @staticmethod
    def secretmanager_projects_secrets_create(state, params, query, body, fault):
        sid = query.get("secretId", [None])[0] or ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", sid):
            raise invalid("secretId `%s` must be 1-255 of [A-Za-z0-9_-]" % sid)
        if not (body or {}).get("replication"):
            raise invalid("Secret.replication is required")
        state.project(params["projectsId"])
        name = "projects/%s/secrets/%s" % (params["projectsId"], sid)
        with state.lock:
            if name in state.secrets:
                raise ApiError(409, "Secret [%s] already exists." % name)
            secret = {**copy.deepcopy(body), "name": name, "createTime": now(), "etag": '"1"'}
            state.secrets[name] = secret
            state.versions[name] = []
            return 200, copy.deepcopy(secret)

    @staticmethod
    def secretmanager_projects_secrets_get(state, params, query, body, fault):
        return 200, copy.deepcopy(API.find_secret(state, params)[1])

    @staticmethod
    def secretmanager_projects_secrets_list(state, params, query, body, fault):
        prefix = "projects/%s/secrets/" % params["projectsId"]
        with state.lock:
            found = [copy.deepcopy(v) for k, v in sorted(state.secrets.items()) if k.startswith(prefix)]
        return 200, ({"secrets": found, "totalSize": len(found)} if found else {})

    @staticmethod
    def secretmanager_projects_secrets_patch(state, params, query, body, fault):
        _, secret = API.find_secret(state, params)
        mask = query.get("updateMask", [None])[0]
        if not mask:
            raise invalid("updateMask is required")
        with state.lock:
            apply_mask(secret, body, mask, immutable=("name", "replication"))
            return 200, copy.deepcopy(secret)

    @staticmethod
    def secretmanager_projects_secrets_delete(state, params, query, body, fault):
        name, _ = API.find_secret(state, params)
        with state.lock:
            del state.secrets[name]
            state.versions.pop(name, None)
            state.policies.pop("secret:" + name, None)
        return 200, {}

    @staticmethod
    def secretmanager_projects_secrets_getIamPolicy(state, params, query, body, fault):
        name, _ = API.find_secret(state, params)
        return API.get_policy(state, "secret:" + name, None)

    @staticmethod
    def secretmanager_projects_secrets_setIamPolicy(state, params, query, body, fault):
        name, _ = API.find_secret(state, params)
        return API.set_policy(state, "secret:" + name, body["policy"], "secret " + name)

    @staticmethod
    def secretmanager_projects_secrets_addVersion(state, params, query, body, fault):
        name, _ = API.find_secret(state, params)
        data = ((body or {}).get("payload") or {}).get("data")
        if data is None:
            raise invalid("SecretVersion.payload.data is required")
        raw = base64.b64decode(data)
        if len(raw) > 65536:
            raise invalid("SecretVersion.payload.data is %d bytes; the limit is 65536" % len(raw))
        with state.lock:
            versions = state.versions[name]
            version = {"name": "%s/versions/%d" % (name, len(versions) + 1), "createTime": now(),
                       "state": "ENABLED"}
            versions.append({**version, "_data": data})
            return 200, version

    @staticmethod
    def secretmanager_projects_secrets_versions_list(state, params, query, body, fault):
        name, _ = API.find_secret(state, params)
        with state.lock:
            found = [{k: v for k, v in ver.items() if k != "_data"} for ver in reversed(state.versions[name])]
        return 200, ({"versions": found, "totalSize": len(found)} if found else {})

    @staticmethod
    def secretmanager_projects_secrets_versions_access(state, params, query, body, fault):
        name, _ = API.find_secret(state, params)
        with state.lock:
            versions = [v for v in state.versions[name] if v["state"] == "ENABLED"]
        wanted = params["versionsId"]
        found = versions[-1:] if wanted == "latest" else [v for v in versions if v["name"].endswith("/" + wanted)]
        if not found:
            raise ApiError(404, "Secret Version [%s/versions/%s] not found." % (name, wanted))
        return 200, {"name": found[0]["name"], "payload": {"data": found[0]["_data"]}}

    @staticmethod
    def logging_entries_list(state, params, query, body, fault):
        names = body.get("resourceNames") or []
        if not names:
            raise invalid("resourceNames is required")
        for n in names:
            if not re.fullmatch(r"(projects|organizations|folders|billingAccounts)/[^/]+(/locations/.+)?", n):
                raise invalid("resourceNames: `%s` is not a project, organization, folder or billing account" % n)
        order = body.get("orderBy") or "timestamp asc"
        if order not in ("timestamp asc", "timestamp desc"):
            raise invalid("orderBy must be `timestamp asc` or `timestamp desc`")
        size = int(body.get("pageSize") or 50)
        if not 1 <= size <= 1000:
            raise invalid("pageSize must be 1-1000")
        match = LogFilter(body.get("filter") or "")
        projects = {n.split("/")[1] for n in names if n.startswith("projects/")}
        with state.lock:
            entries = [e for e in state.log_entries
                       if e.get("logName", "").split("/")[1] in projects and match(e)]
        entries.sort(key=lambda e: e.get("timestamp", ""), reverse=order.endswith("desc"))
        start = int(body.get("pageToken") or 0)
        page = entries[start:start + size]
        answer = {"entries": page} if page else {}
        if start + size < len(entries):
            answer["nextPageToken"] = str(start + size)
        return 200, answer


class LogFilter:
    """The subset of the Logging query language Nimbus sends: comparisons (``=``, ``!=``, ``>=``,
    ``<=``, ``>``, ``<``, ``:``) of dotted fields with quoted or bare values, ``AND``, ``OR``,
    ``NOT``, parentheses; ``OR`` binds tighter than ``AND``, as the language defines. Anything
    else is an invalid filter (400), as it would be for Google."""

    TOKEN = re.compile(r'\s*(?:(\()|(\))|(AND\b|OR\b|NOT\b)|("(?:[^"\\]|\\.)*")|(>=|<=|!=|=|>|<|:)|([^\s()"=<>!:]+))')

    def __init__(self, text: str):
        self.tokens = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise invalid("invalid filter at %r" % text[pos:])
            pos = m.end()
            kind = ["(", ")", "op", "str", "cmp", "word"][m.lastindex - 1]
            self.tokens.append((kind, m.group(m.lastindex)))
        self.i = 0
        self.tree = self.conj() if self.tokens else ("true",)
        if self.i != len(self.tokens):
            raise invalid("invalid filter near %r" % (self.tokens[self.i][1],))

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None)

    def take(self):
        t = self.peek()
        self.i += 1
        return t

    def conj(self):
        items = [self.disj()]
        while self.peek()[0] is not None and self.peek() != (")", ")"):
            if self.peek() == ("op", "AND"):
                self.take()
            items.append(self.disj())
        return ("and", items)

    def disj(self):
        items = [self.unary()]
        while self.peek() == ("op", "OR"):
            self.take()
            items.append(self.unary())
        return ("or", items)

    def unary(self):
        if self.peek() == ("op", "NOT"):
            self.take()
            return ("not", self.unary())
        if self.peek()[0] == "(":
            self.take()
            inner = self.conj()
            if self.take()[0] != ")":
                raise invalid("invalid filter: unbalanced parenthesis")
            return inner
        kind, field = self.take()
        if kind != "word":
            raise invalid("invalid filter: expected a field, got %r" % field)
        kind, op = self.take()
        if kind != "cmp":
            raise invalid("invalid filter: expected a comparison after %s" % field)
        kind, value = self.take()
        if kind == "str":
            value = json.loads(value)
        elif kind != "word":
            raise invalid("invalid filter: expected a value after %s%s" % (field, op))
        return ("cmp", field, op, value)

    def __call__(self, entry):
        return self.eval(self.tree, entry)

    def eval(self, node, e):
        tag = node[0]
        if tag == "true":
            return True
        if tag == "and":
            return all(self.eval(n, e) for n in node[1])
        if tag == "or":
            return any(self.eval(n, e) for n in node[1])
        if tag == "not":
            return not self.eval(node[1], e)
        _, field, op, value = node
        have = get_path(e, field)
        if have is None:
            return op == "!="
        have = str(have)
        if field == "timestamp":
            have, value = have.replace("Z", "+00:00"), value.replace("Z", "+00:00")
            have = datetime.datetime.fromisoformat(have).timestamp()
            value = datetime.datetime.fromisoformat(value).timestamp()
        return {"=": lambda: have == value, "!=": lambda: have != value, ">=": lambda: have >= value,
                "<=": lambda: have <= value, ">": lambda: have > value, "<": lambda: have < value,
                ":": lambda: str(value) in str(have)}[op]()


def object_exists(bucket: str, obj: str) -> bool:
    if "storage" not in Handler.proxies:
        return True
    return API.upstream_exists("storage", "/storage/v1/b/%s/o/%s" % (
        urllib.parse.quote(bucket, safe=""), urllib.parse.quote(obj, safe="")))


Handler.object_exists = staticmethod(object_exists)


def discovery_dir() -> str:
    import googleapiclient
    return os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")


def serve(port: int = 0, proxies: dict | None = None, op_polls: int = 1):
    """Starts the double in a thread; returns ``(server, url)``."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    url = "http://127.0.0.1:%d" % server.server_address[1]
    Handler.discovery = Discovery(discovery_dir())
    Handler.state = State(url, op_polls)
    Handler.proxies = dict(proxies or {})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--proxy", action="append", default=[], help="api=URL of an emulator to front")
    p.add_argument("--op-polls", type=int, default=1, help="reads of an operation before it is done")
    p.add_argument("--stdin-eof", action="store_true", help="stop when stdin closes")
    args = p.parse_args()
    proxies = dict(x.split("=", 1) for x in args.proxy)
    server, url = serve(args.port, proxies, args.op_polls)
    print(json.dumps({"url": url}), flush=True)
    if args.stdin_eof:
        sys.stdin.read()
    else:
        threading.Event().wait()
    server.shutdown()


if __name__ == "__main__":
    main()
