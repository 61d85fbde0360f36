"""ARM test double: an HTTP server on 127.0.0.1 standing in for the part of Azure Resource
Manager that nimbus uses, which validates every request before it answers.

It is NOT Azure: it runs no code and creates nothing; it records what a deployment would create
and answers as ARM documents it. What it checks:

- every request carries `Authorization: Bearer <token>` (the token given with --token) and the
  `api-version` query parameter;
- request bodies against Microsoft's published models on PyPI (not copied here; `MODELS` maps
  each resource type to its model, of the api-version the template uses where a release
  publishes it): `azure-mgmt-resource-deployments` (Deployment, DeploymentWhatIf),
  `azure-mgmt-storage` (StorageAccountCreateParameters, BlobServiceProperties, BlobContainer,
  StorageQueue, Table), `azure-mgmt-web` (Site, AppServicePlan), `azure-mgmt-msi` (Identity),
  `azure-mgmt-authorization` (RoleAssignmentCreateParameters), `azure-mgmt-servicebus`
  (SBNamespace, SBTopic, SBSubscription), `azure-mgmt-eventgrid` (SystemTopic,
  EventSubscription, its destinations and filters chosen by their discriminators),
  `azure-mgmt-applicationinsights` (ApplicationInsightsComponent), `azure-mgmt-loganalytics`
  (Workspace), `azure-mgmt-cosmosdb` (DatabaseAccountCreateUpdateParameters,
  SqlDatabaseCreateUpdateParameters, SqlContainerCreateUpdateParameters,
  SqlRoleAssignmentCreateUpdateParameters; plus the rules the models do not carry: a SQL role
  assignment's `roleDefinitionId` is a role definition of the same account and its `scope` that
  account or a database or container of it), `azure-mgmt-keyvault` (VaultCreateOrUpdateParameters
  of 2024-11-01; plus what the model does not carry: the vault name's rule, 3-24 letters, digits
  and single `-` starting with a letter, and `tenantId` the subscription's tenant): unknown properties, missing required ones, wrong JSON types and malformed ISO 8601
  durations and date-times are rejected with ARM's `InvalidRequestContent` error. Both model
  generations are read: the newer ones' rest fields and the older (msrest) ones' attribute maps.
  Not validated: `Microsoft.Web/sites/extensions` (the `onedeploy` body has no published model);
- the template against the deploymentTemplate schema's structure (`$schema`, `contentVersion`,
  `parameters` with types and defaults, `variables`, `resources` with `type`/`apiVersion`/`name`,
  `outputs`), every `[...]` expression parsed and evaluated (parameters, variables, concat,
  format, resourceId, subscriptionResourceId, extensionResourceId, guid, reference, listKeys,
  resourceGroup, subscription), every `dependsOn` naming a resource of the template, and every
  `reference()`/`listKeys()` of a template resource covered by `dependsOn` (ARM would otherwise
  read it before it exists); each evaluated resource body is then checked against its model.

Long-running operations follow the documented protocol: PUT deployment -> 201 with
`Azure-AsyncOperation` (status `Running`, then `Succeeded` or `Failed` on the next polls); storage
account PUT, what-if and DELETE -> 202 with `Location` (202 once, then 200 with the result) and
`Retry-After: 0`.

Functions host stand-in (for `nimbus invoke`): `/_apps/<app>/<path>` runs a deployed Python app's
package — downloaded from the blob its `onedeploy` extension names (Azurite), unpacked, and
run with `tests/apps/inspect_app.py`, i.e. Microsoft's `azure-functions` library — with the app's
settings plus `NIMBUS_AZURE_STORAGE_CONNECTION_STRING` and `NIMBUS_AZURE_COSMOS_CONNECTION_STRING`
(local development storage and a local Cosmos DB API server instead of the app's managed identity). HTTP routes check the function key when the route's auth level is
`function`; `POST /_apps/<app>/admin/functions/<name>` (master key, body `{"input"}`) runs a
queue, Service Bus or timer function and answers 202, as the admin API does. Node apps: 501.

Changes made outside nimbus, through ARM as a user would make them: `DELETE` of any resource
(with what is under it), and a site's app settings (`PUT <site>/config/appsettings`, body
`StringDictionary`, replacing them all; `POST <site>/config/appsettings/list`).

Key Vault: the data plane of every vault the resource groups hold is served under
`/_keyvault/<vault>/...` by `keyvault_double.py` (what it checks is said there); with
`--keyvault-tls-port` the same server also listens with TLS (a self-signed certificate for
127.0.0.1 written to `--tls-cert`), because Microsoft's `azure-keyvault-secrets` SDK sends tokens
over https only. A deleted vault is soft-deleted: its name is refused (409 `ConflictError`) until it is purged
(`POST /subscriptions/<s>/providers/Microsoft.KeyVault/locations/<l>/deletedVaults/<name>/purge`,
202 then the operation), which also drops its secrets. A role assignment scoped to a Key Vault secret
(`<vault id>/secrets/<name>`) is accepted only when that secret exists (has a value): the scope
must exist. The Functions host stand-in resolves an app setting that is a Key Vault reference,
`@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>/)`, as the platform
does: only when the app's `keyVaultReferenceIdentity` holds Key Vault Secrets User on that secret
(or its vault); otherwise the setting keeps the reference text.

Test hooks: `GET /_double/calls` (every request as `[method, path]`), `GET /_double/resources`
(what the resource group holds), `POST /_double/fail-next-deployment` (the next deployment fails
with the given body's `message`, and `code`, by default `Conflict`, as its failed resource's).

Usage: python arm_double.py --port N --token T --blob-endpoint URL
"""

import argparse
import atexit
import functools
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
import threading
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import azure.mgmt.applicationinsights.v2020_02_02.models as aim
import azure.mgmt.authorization.v2022_04_01.models as am
import azure.mgmt.cosmosdb.models as cdbm  # 9.7.0: 2024-11-15
import azure.mgmt.eventgrid.models as egm  # 10.2.0: 2022-06-15 only
import azure.mgmt.keyvault.v2024_11_01.models as kvm
import azure.mgmt.loganalytics.models as lam
import azure.mgmt.msi.v2023_01_31.models as msim
import azure.mgmt.resource.deployments.models as dm
import azure.mgmt.servicebus.models as sbm  # 10.0.0: 2026-01-01 only
import azure.mgmt.storage.models as sm
import azure.mgmt.web.models as wm
import isodate

from keyvault_double import KeyVaults

# The namespace of ARM's `guid()` (a version 5 UUID of its arguments joined with `-`).
ARM_GUID_NAMESPACE = uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830")

# The tenant of every subscription of the double.
TENANT = "00000000-0000-0000-0000-0000000000aa"
# Key Vault Secrets User.
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_REFERENCE = re.compile(r"@Microsoft\.KeyVault\(SecretUri=https://([^./]+)\.vault\.azure\.net/secrets/([^/]+)/?\)")

SCHEMA_PREFIX = "https://schema.management.azure.com/schemas/"


class Invalid(Exception):
    """A request ARM would reject: (status, code, message)."""

    def __init__(self, message, code="InvalidRequestContent", status=400):
        super().__init__(message)
        self.code, self.status = code, status


# --------------------------------------------------------------------------- model validation


def _shape(deser):
    """A model field's deserializer (functools.partial tree) -> a type description."""
    if not isinstance(deser, functools.partial):
        return ("any",)
    name = deser.func.__name__
    if name == "_deserialize_with_optional":
        return _shape(deser.args[0])
    if name == "_deserialize_model":
        return ("model", deser.args[0])
    if name == "_deserialize_sequence":
        return ("list", _shape(deser.args[0]))
    if name == "_deserialize_dict":
        return ("dict", _shape(deser.args[0]))
    if name == "_deserialize_with_union":
        return ("union", [_shape(d) for d in deser.args[0]])
    if name == "_deserialize_default":
        t = deser.args[0]
        if t in (str, int, float, bool):
            return ("prim", t)
        if isinstance(t, type) and issubclass(t, str):  # an extensible enum
            return ("prim", str)
        if getattr(t, "__name__", "") == "_deserialize_duration":
            return ("time", "duration")
        if getattr(t, "__name__", "") == "_deserialize_datetime":
            return ("time", "iso-8601")
        return ("any",)
    return ("any",)


def _check_time(t, value, path):
    """An ISO 8601 date-time (`iso-8601`) or duration (`duration`) string."""
    if not isinstance(value, str):
        raise Invalid("%s: expected a string (%s), got %s" % (path, t, type(value).__name__))
    try:
        (isodate.parse_datetime if t == "iso-8601" else isodate.parse_duration)(value)
    except (ValueError, isodate.ISO8601Error):
        raise Invalid("%s: `%s` is not an ISO 8601 %s" % (path, value, "date-time" if t == "iso-8601" else "duration")) from None


def _fields(cls):
    if not hasattr(cls, "_attr_to_rest_field"):
        cls()  # the model computes its fields on first use
    return {f._rest_name: f for f in cls._attr_to_rest_field.values()}


def _check_type(shape, value, path):
    kind = shape[0]
    if kind == "any" or value is None:
        return
    if kind == "prim":
        t = shape[1]
        ok = isinstance(value, t) and not (t is int and isinstance(value, bool))
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise Invalid("%s: expected %s, got %s" % (path, t.__name__, type(value).__name__))
    elif kind == "time":
        _check_time(shape[1], value, path)
    elif kind == "model":
        validate_model(shape[1], value, path)
    elif kind == "list":
        if not isinstance(value, list):
            raise Invalid("%s: expected an array" % path)
        for i, v in enumerate(value):
            _check_type(shape[1], v, "%s[%d]" % (path, i))
    elif kind == "dict":
        if not isinstance(value, dict):
            raise Invalid("%s: expected an object" % path)
        for k, v in value.items():
            _check_type(shape[1], v, "%s.%s" % (path, k))
    elif kind == "union":
        errors = []
        for s in shape[1]:
            try:
                _check_type(s, value, path)
                return
            except Invalid as e:
                errors.append(str(e))
        raise Invalid("; ".join(errors))


def validate_model(cls, data, path, read_only_ok=False):
    """`data` (a REST JSON body) against the published model `cls`."""
    if hasattr(cls, "_attribute_map"):
        return validate_msrest(cls, data, path)
    if not isinstance(data, dict):
        raise Invalid("%s: expected an object for %s" % (path, cls.__name__))
    fields = _fields(cls)
    for key, value in data.items():
        f = fields.get(key)
        if f is None:
            raise Invalid("%s: `%s` is not a property of %s" % (path, key, cls.__name__))
        _check_type(_shape(f._type), value, "%s.%s" % (path, key))
    for name, f in fields.items():
        writable = any(v in f._visibility for v in ("create", "update"))
        if not f._is_optional and writable and name not in data:
            raise Invalid("%s: %s requires `%s`" % (path, cls.__name__, name))


# Older packages (msrest models): each attribute names its REST key, flattened ones as a dotted
# path (`properties.principalId`), and its type as a string: `str`, `int`, `bool`, `float`,
# `object`, `iso-8601`, `duration`, `[T]`, `{T}` or a model of the same module; `_validation`
# says which are required or read-only, and a base model's `_subtype_map` names the subclass of
# each discriminator value.


def _msrest_tree(cls):
    """A model's attributes as a tree of REST keys: {key: (attr, type) | {key: ...}}."""
    tree = {}
    for attr, info in cls._attribute_map.items():
        parts = [k.replace("\\.", ".") for k in re.split(r"(?<!\\)\.", info["key"])]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = (attr, info["type"])
    return tree


def _msrest_class(cls, name):
    module = sys.modules[cls.__module__]
    model = getattr(module, name, None)
    if model is None:
        raise Invalid("the double cannot resolve model `%s` of %s" % (name, cls.__name__), "DoubleBug", 500)
    return model


def _msrest_subclass(cls, data, path):
    """The subclass a discriminator value in `data` selects (`cls` itself when it has none)."""
    for attr, mapping in (getattr(cls, "_subtype_map", None) or {}).items():
        key = cls._attribute_map[attr]["key"]
        value = data.get(key)
        if value is None:
            raise Invalid("%s: %s requires `%s`" % (path, cls.__name__, key))
        if value not in mapping:
            raise Invalid("%s.%s: `%s` is not one of %s" % (path, key, value, sorted(mapping)))
        sub = _msrest_class(cls, mapping[value])
        return cls if sub is cls else _msrest_subclass(sub, data, path)
    return cls


def _msrest_type(cls, t, value, path):
    if value is None:
        return
    if t.startswith("[") and t.endswith("]"):
        if not isinstance(value, list):
            raise Invalid("%s: expected an array" % path)
        for i, v in enumerate(value):
            _msrest_type(cls, t[1:-1], v, "%s[%d]" % (path, i))
    elif t.startswith("{") and t.endswith("}"):
        if not isinstance(value, dict):
            raise Invalid("%s: expected an object" % path)
        for k, v in value.items():
            _msrest_type(cls, t[1:-1], v, "%s.%s" % (path, k))
    elif t in ("str", "int", "bool", "float"):
        _check_type(("prim", {"str": str, "int": int, "bool": bool, "float": float}[t]), value, path)
    elif t in ("iso-8601", "duration"):
        _check_time(t, value, path)
    elif t == "object":
        return
    else:
        validate_msrest(_msrest_class(cls, t), value, path)


def validate_msrest(cls, data, path):
    if not isinstance(data, dict):
        raise Invalid("%s: expected an object for %s" % (path, cls.__name__))
    cls = _msrest_subclass(cls, data, path)
    _msrest_node(cls, _msrest_tree(cls), data, path)


def _msrest_node(cls, tree, data, path):
    if not isinstance(data, dict):
        raise Invalid("%s: expected an object" % path)
    for key, value in data.items():
        entry = tree.get(key)
        if entry is None:
            raise Invalid("%s: `%s` is not a property of %s" % (path, key, cls.__name__))
        if isinstance(entry, dict):
            _msrest_node(cls, entry, value, "%s.%s" % (path, key))
        else:
            _msrest_type(cls, entry[1], value, "%s.%s" % (path, key))
    for key, entry in tree.items():
        if isinstance(entry, tuple):
            rules = cls._validation.get(entry[0], {})
            if rules.get("required") and not rules.get("readonly") and key not in data:
                raise Invalid("%s: %s requires `%s`" % (path, cls.__name__, key))
        elif key not in data and _msrest_requires(cls, entry):
            raise Invalid("%s: %s requires `%s`" % (path, cls.__name__, key))


def _msrest_requires(cls, tree):
    """Whether a flattened object holds a required attribute (then it is required itself)."""
    for entry in tree.values():
        if isinstance(entry, dict):
            if _msrest_requires(cls, entry):
                return True
        else:
            rules = cls._validation.get(entry[0], {})
            if rules.get("required") and not rules.get("readonly"):
                return True
    return False


# The published model of each resource type's PUT body, of the resource's api-version in the
# template where its package publishes that one (see MODEL_API_VERSIONS). No published model:
# `Microsoft.Web/sites/extensions` (the `onedeploy` PUT body is untyped in Microsoft's spec).
MODELS = {
    "Microsoft.Storage/storageAccounts": sm.StorageAccountCreateParameters,
    "Microsoft.Storage/storageAccounts/blobServices": sm.BlobServiceProperties,
    "Microsoft.Storage/storageAccounts/blobServices/containers": sm.BlobContainer,
    "Microsoft.Storage/storageAccounts/queueServices/queues": sm.StorageQueue,
    "Microsoft.Storage/storageAccounts/tableServices/tables": sm.Table,
    "Microsoft.Web/sites": wm.Site,
    "Microsoft.Web/serverfarms": wm.AppServicePlan,
    "Microsoft.Web/certificates": wm.Certificate,
    "Microsoft.Web/sites/hostNameBindings": wm.HostNameBinding,
    "Microsoft.ManagedIdentity/userAssignedIdentities": msim.Identity,
    "Microsoft.Authorization/roleAssignments": am.RoleAssignmentCreateParameters,
    "Microsoft.ServiceBus/namespaces": sbm.SBNamespace,
    "Microsoft.ServiceBus/namespaces/topics": sbm.SBTopic,
    "Microsoft.ServiceBus/namespaces/topics/subscriptions": sbm.SBSubscription,
    "Microsoft.EventGrid/systemTopics": egm.SystemTopic,
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": egm.EventSubscription,
    "Microsoft.Insights/components": aim.ApplicationInsightsComponent,
    "Microsoft.OperationalInsights/workspaces": lam.Workspace,
    "Microsoft.DocumentDB/databaseAccounts": cdbm.DatabaseAccountCreateUpdateParameters,
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases": cdbm.SqlDatabaseCreateUpdateParameters,
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers": cdbm.SqlContainerCreateUpdateParameters,
    "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments": cdbm.SqlRoleAssignmentCreateUpdateParameters,
    "Microsoft.KeyVault/vaults": kvm.VaultCreateOrUpdateParameters,
}
# Keys of a template resource that are not part of the REST body.
TEMPLATE_ONLY = {"type", "apiVersion", "name", "dependsOn", "scope", "condition", "copy", "comments"}


# --------------------------------------------------------------------------- ARM expressions

_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|(-?\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def tokenize(text):
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        s, n, ident, ch = m.groups()
        if s is not None:
            out.append(("str", s[1:-1].replace("''", "'")))
        elif n is not None:
            out.append(("num", int(n)))
        elif ident is not None:
            out.append(("id", ident))
        elif ch is not None and not ch.isspace():
            out.append(("p", ch))
    return out


class Parser:
    def __init__(self, text):
        self.t, self.i, self.text = tokenize(text), 0, text

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else ("end", None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise Invalid("invalid template expression `[%s]`: expected %s at %r" % (self.text, value or kind, tok[1]),
                          "InvalidTemplate")
        self.i += 1
        return tok

    def parse(self):
        e = self.expr()
        if self.peek()[0] != "end":
            raise Invalid("invalid template expression `[%s]`: trailing %r" % (self.text, self.peek()[1]),
                          "InvalidTemplate")
        return e

    def expr(self):
        tok = self.take()
        if tok[0] in ("str", "num"):
            node = ("lit", tok[1])
        elif tok[0] == "id":
            self.take("p", "(")
            args = []
            if self.peek() != ("p", ")"):
                args.append(self.expr())
                while self.peek() == ("p", ","):
                    self.take()
                    args.append(self.expr())
            self.take("p", ")")
            node = ("call", tok[1], args)
        else:
            raise Invalid("invalid template expression `[%s]`" % self.text, "InvalidTemplate")
        while self.peek() in (("p", "."), ("p", "[")):
            if self.take()[1] == ".":
                node = ("get", node, ("lit", self.take("id")[1]))
            else:
                index = self.expr()
                self.take("p", "]")
                node = ("get", node, index)
        return node


def is_expr(s):
    return isinstance(s, str) and s.startswith("[") and not s.startswith("[[") and s.endswith("]")


# --------------------------------------------------------------------------- the resource group


class Deployment:
    """One template deployment being evaluated."""

    def __init__(self, arm, sub, rg, template, parameters):
        self.arm, self.sub, self.rg = arm, sub, rg
        self.template, self.params = template, parameters
        self.vars_cache = {}
        self.current = None  # the resource whose body is being evaluated
        self.ids = {}  # template resource index -> id

    def rg_id(self):
        return "/subscriptions/%s/resourceGroups/%s" % (self.sub, self.rg)

    def call(self, name, args):
        lname = name.lower()
        if lname == "parameters":
            (n,) = args
            if n not in self.params:
                raise Invalid("the template parameter `%s` is not found" % n, "InvalidTemplate")
            return self.params[n]
        if lname == "variables":
            (n,) = args
            if n not in self.vars_cache:
                if n not in self.template.get("variables", {}):
                    raise Invalid("the template variable `%s` is not found" % n, "InvalidTemplate")
                self.vars_cache[n] = self.eval(self.template["variables"][n])
            return self.vars_cache[n]
        if lname == "concat":
            if args and isinstance(args[0], list):
                return [x for a in args for x in a]
            return "".join(str(a) for a in args)
        if lname == "format":
            fmt, rest = args[0], args[1:]
            return re.sub(r"\{(\d+)\}", lambda m: str(rest[int(m.group(1))]), fmt)
        if lname == "tolower":
            return str(args[0]).lower()
        if lname == "resourcegroup":
            return {"id": self.rg_id(), "name": self.rg, "location": self.arm.groups[(self.sub, self.rg.lower())]["location"]}
        if lname == "subscription":
            return {"id": "/subscriptions/" + self.sub, "subscriptionId": self.sub, "tenantId": TENANT}
        if lname == "resourceid":
            # resourceId([subscriptionId], [resourceGroupName], resourceType, names...)
            k = next((i for i, a in enumerate(args) if "/" in str(a)), 0)
            scope = {0: lambda: self.rg_id(),
                     1: lambda: "/subscriptions/%s/resourceGroups/%s" % (self.sub, args[0]),
                     2: lambda: "/subscriptions/%s/resourceGroups/%s" % (args[0], args[1])}.get(k)
            if scope is None:
                raise Invalid("resourceId() takes at most a subscription and a group before the type", "InvalidTemplate")
            return resource_id(scope(), args[k], args[k + 1:])
        if lname == "subscriptionresourceid":
            # subscriptionResourceId([subscriptionId], resourceType, names...)
            k = next((i for i, a in enumerate(args) if "/" in str(a)), 0)
            sub = args[0] if k == 1 else self.sub
            return resource_id("/subscriptions/" + sub, args[k], args[k + 1:])
        if lname == "extensionresourceid":
            return resource_id(args[0], args[1], args[2:])
        if lname == "guid":
            # ARM: a version 5 UUID of the arguments joined with `-`, in ARM's own namespace.
            return str(uuid.uuid5(ARM_GUID_NAMESPACE, "-".join(str(a) for a in args)))
        if lname in ("reference", "listkeys"):
            rid = args[0]
            self.require_dependency(rid, name)
            rec = self.arm.resources.get(rid.lower())
            if rec is None:
                raise Invalid("%s(): the resource `%s` does not exist" % (name, rid), "ResourceNotFound", 404)
            return rec["runtime"] if lname == "reference" else rec.get("keys", {})
        raise Invalid("the template function `%s` is not supported by the ARM test double" % name, "InvalidTemplate")

    def require_dependency(self, rid, fn):
        """A reference to a resource of this template must be covered by dependsOn."""
        target = next((i for i, x in self.ids.items() if x.lower() == rid.lower()), None)
        if target is None or self.current is None:
            return
        if not self.depends(self.current, target):
            raise Invalid("%s() of `%s` in resource `%s` without a dependsOn on it" % (
                fn, rid, self.ids[self.current]), "InvalidTemplate")

    def depends(self, a, b, seen=None):
        seen = seen or set()
        for d in self.dep_index.get(a, []):
            if d == b or (d not in seen and (seen.add(d) or self.depends(d, b, seen))):
                return True
        return False

    def node(self, n):
        kind = n[0]
        if kind == "lit":
            return n[1]
        if kind == "call":
            return self.call(n[1], [self.node(a) for a in n[2]])
        obj, key = self.node(n[1]), self.node(n[2])
        try:
            if isinstance(obj, dict):
                lower = {k.lower(): v for k, v in obj.items()}
                return lower[str(key).lower()]
            return obj[key]
        except (KeyError, IndexError, TypeError):
            raise Invalid("the property `%s` does not exist" % key, "InvalidTemplate") from None

    def eval(self, v):
        if is_expr(v):
            return self.node(Parser(v[1:-1]).parse())
        if isinstance(v, str) and v.startswith("[["):
            return v[1:]
        if isinstance(v, list):
            return [self.eval(x) for x in v]
        if isinstance(v, dict):
            return {self.eval(k): self.eval(x) for k, x in v.items()}
        return v


def resource_id(scope, rtype, names):
    parts = rtype.split("/")
    namespace, types = parts[0], parts[1:]
    names = [str(n) for n in names]
    if len(names) != len(types):
        raise Invalid("resourceId('%s', ...) takes %d names, got %d" % (rtype, len(types), len(names)),
                      "InvalidTemplate")
    tail = "/".join("%s/%s" % (t, n) for t, n in zip(types, names))
    return "%s/providers/%s/%s" % (scope, namespace, tail)


def id_of(scope_rg, rtype, name, scope=None):
    return resource_id(scope or scope_rg, rtype, name.split("/"))


class Arm:
    def __init__(self, token, blob_endpoint, storage_connection_string="", apps_dir="", cosmos_connection_string=""):
        self.token, self.blob_endpoint = token, blob_endpoint
        self.storage = storage_connection_string
        self.cosmos = cosmos_connection_string
        # Where the host stand-in unpacks apps: the caller's folder (removed by the caller), else
        # a temporary one removed when the double stops.
        self.apps_dir = apps_dir or tempfile.mkdtemp(prefix="arm-double-apps-")
        self.owns_apps_dir = not apps_dir
        self.lock = threading.Lock()
        self.groups = {}  # (sub, rg lower) -> {location}
        self.resources = {}  # id lower -> {id, type, body, runtime, keys}
        self.deployments = {}  # (sub, rg, name) -> record
        self.operations = {}  # op id -> {polls, status, error, then}
        self.calls = []
        self.fail_next = None
        self.traces = []  # Application Insights rows: {timestamp, cloud_RoleName, message}
        self.invocations = []  # admin API runs of the host stand-in
        self.keyvaults = KeyVaults(token, TENANT, validate_model)
        self.deleted_vaults = {}  # name lower -> location: soft-deleted vaults (the name stays taken)

    def check_vault_name_free(self, name):
        if name.lower() in self.deleted_vaults:
            raise Invalid("A vault with the same name already exists in deleted state. You need to either recover or purge existing key vault.",
                          "ConflictError", 409)

    def vault_exists(self, vault):
        return any(r["type"] == "Microsoft.KeyVault/vaults" and r["name"].lower() == vault.lower()
                   for r in self.resources.values())

    def can_read_secret(self, principal, vault, secret):
        """Whether `principal` holds Key Vault Secrets User on the secret or its vault."""
        for rid, r in self.resources.items():
            if r["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            props = r["body"].get("properties", {})
            scope = rid.split("/providers/microsoft.authorization/")[0]
            if (props.get("principalId") == principal and props.get("roleDefinitionId", "").lower().endswith(SECRETS_USER)
                    and re.search(r"/providers/microsoft\.keyvault/vaults/%s(/secrets/%s)?$" % (re.escape(vault.lower()), re.escape(secret.lower())), scope)):
                return True
        return False

    # ----------------------------------------------------------------- helpers

    def runtime_of(self, rtype, name, body):
        last = name.split("/")[-1]
        if rtype == "Microsoft.ManagedIdentity/userAssignedIdentities":
            return {"principalId": str(uuid.uuid5(uuid.NAMESPACE_DNS, "p-" + name)),
                    "clientId": str(uuid.uuid5(uuid.NAMESPACE_DNS, "c-" + name))}
        if rtype == "Microsoft.Storage/storageAccounts":
            base = self.blob_endpoint if self.blob_endpoint else "https://%s.blob.core.windows.net/" % last
            return {"primaryEndpoints": {"blob": base.rstrip("/") + "/",
                                         "queue": "https://%s.queue.core.windows.net/" % last,
                                         "table": "https://%s.table.core.windows.net/" % last}}
        if rtype == "Microsoft.Insights/components":
            app = str(uuid.uuid5(uuid.NAMESPACE_DNS, "ai-" + name))
            return {"AppId": app, "ConnectionString": "InstrumentationKey=%s;IngestionEndpoint=https://ingest.example" % app}
        if rtype == "Microsoft.Web/sites":
            # App Service's domain verification id: 64 hex digits, one per subscription
            return {"defaultHostName": "%s.azurewebsites.net" % last,
                    "customDomainVerificationId": hashlib.sha256(("asuid-" + TENANT).encode()).hexdigest().upper()}
        if rtype == "Microsoft.Web/certificates":
            # the imported certificate's SHA-1 thumbprint
            props = body.get("properties") or {}
            source = "%s/%s" % (props.get("keyVaultId"), props.get("keyVaultSecretName"))
            return {"thumbprint": hashlib.sha1(source.encode()).hexdigest().upper()}
        if rtype == "Microsoft.DocumentDB/databaseAccounts":
            return {"documentEndpoint": "https://%s.documents.azure.com:443/" % last}
        if rtype == "Microsoft.KeyVault/vaults":
            return {"vaultUri": "https://%s.vault.azure.net/" % last}
        return {}

    def put_resource(self, rid, rtype, name, body):
        rec = {"id": rid, "type": rtype, "name": name, "body": body, "runtime": self.runtime_of(rtype, name, body)}
        if rtype == "Microsoft.Web/sites":
            self.resources[(rid + "/host/default").lower()] = {
                "id": rid + "/host/default", "type": "Microsoft.Web/sites/host", "name": name + "/default",
                "body": {}, "runtime": {}, "internal": True,
                "keys": {"masterKey": "master-" + name, "functionKeys": {"default": "fn-" + name},
                         "systemKeys": {"blobs_extension": "blobs-" + name}}}
        self.resources[rid.lower()] = rec

    def new_operation(self, result_status="Succeeded", error=None, result=None):
        op = uuid.uuid4().hex
        self.operations[op] = {"polls": 0, "status": result_status, "error": error, "result": result}
        return op

    # ----------------------------------------------------------------- deployments

    def check_template(self, t):
        if not isinstance(t, dict):
            raise Invalid("the template must be an object", "InvalidTemplate")
        if not str(t.get("$schema", "")).startswith(SCHEMA_PREFIX) or "deploymentTemplate.json" not in t["$schema"]:
            raise Invalid("the template's `$schema` is not a deploymentTemplate schema", "InvalidTemplate")
        if not re.fullmatch(r"\d+(\.\d+){3}", str(t.get("contentVersion", ""))):
            raise Invalid("the template needs a `contentVersion` like 1.0.0.0", "InvalidTemplate")
        allowed = {"$schema", "contentVersion", "metadata", "parameters", "variables", "resources", "outputs", "functions", "apiProfile"}
        extra = set(t) - allowed
        if extra:
            raise Invalid("the template has unknown top-level properties %s" % sorted(extra), "InvalidTemplate")
        for name, p in (t.get("parameters") or {}).items():
            if p.get("type", "").lower() not in ("string", "securestring", "int", "bool", "object", "secureobject", "array"):
                raise Invalid("parameter `%s` has an invalid type" % name, "InvalidTemplate")
        if not isinstance(t.get("resources"), list):
            raise Invalid("the template needs a `resources` array", "InvalidTemplate")
        for i, r in enumerate(t["resources"]):
            for k in ("type", "apiVersion", "name"):
                if not isinstance(r.get(k), str) or not r[k]:
                    raise Invalid("resources[%d] needs a string `%s`" % (i, k), "InvalidTemplate")
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", r["apiVersion"]):
                raise Invalid("resources[%d] has an invalid apiVersion `%s`" % (i, r["apiVersion"]), "InvalidTemplate")
        for name, o in (t.get("outputs") or {}).items():
            if "type" not in o or "value" not in o:
                raise Invalid("output `%s` needs `type` and `value`" % name, "InvalidTemplate")

    def parameters_of(self, t, given):
        out = {}
        declared = t.get("parameters") or {}
        for name in given:
            if name not in declared:
                raise Invalid("the parameter `%s` is not declared by the template" % name, "InvalidTemplate")
        for name, p in declared.items():
            if name in given:
                if "value" not in given[name]:
                    raise Invalid("parameter `%s` needs a `value`" % name, "InvalidTemplate")
                out[name] = given[name]["value"]
            elif "defaultValue" in p:
                out[name] = p["defaultValue"]
            else:
                raise Invalid("the template parameter `%s` has no value" % name, "InvalidTemplate")
        return out

    def evaluate(self, sub, rg, props):
        """Validates and evaluates a deployment's template: [(id, type, name, body, template index)]."""
        t = props["template"]
        self.check_template(t)
        d = Deployment(self, sub, rg, t, {})
        d.params = self.parameters_of(t, props.get("parameters") or {})
        for name, value in list(d.params.items()):  # parameter defaults may be expressions
            d.params[name] = d.eval(value)
        for name, p in (t.get("parameters") or {}).items():
            v = d.params[name]
            if p.get("minLength") is not None and len(v) < p["minLength"]:
                raise Invalid("parameter `%s` is shorter than %d" % (name, p["minLength"]), "InvalidTemplate")
            if p.get("maxLength") is not None and len(v) > p["maxLength"]:
                raise Invalid("parameter `%s` is longer than %d" % (name, p["maxLength"]), "InvalidTemplate")
        resources = t["resources"]
        for i, r in enumerate(resources):
            name = d.eval(r["name"])
            scope = d.eval(r["scope"]) if "scope" in r else None
            if r["type"] == "Microsoft.Resources/deployments" and "subscriptionId" in r:
                scope = "/subscriptions/%s" % d.eval(r["subscriptionId"])
                if "resourceGroup" in r:
                    scope += "/resourceGroups/%s" % d.eval(r["resourceGroup"])
            d.ids[i] = id_of(d.rg_id(), r["type"], name, scope)
        by_id = {v.lower(): i for i, v in d.ids.items()}
        if len(by_id) != len(resources):
            raise Invalid("the template defines a resource twice", "InvalidTemplate")
        d.dep_index = {}
        for i, r in enumerate(resources):
            deps = []
            for dep in r.get("dependsOn", []):
                did = d.eval(dep)
                if did.lower() not in by_id:
                    raise Invalid("resources[%d] depends on `%s`, which is not in the template" % (i, did), "InvalidTemplate")
                deps.append(by_id[did.lower()])
            d.dep_index[i] = deps
        order, state = [], {}

        def visit(i):
            if state.get(i) == 1:
                raise Invalid("circular dependency at `%s`" % d.ids[i], "InvalidTemplate")
            if state.get(i) == 2:
                return
            state[i] = 1
            for j in d.dep_index[i]:
                visit(j)
            state[i] = 2
            order.append(i)

        for i in range(len(resources)):
            visit(i)
        return d, order

    def create_in_order(self, d, order, apply):
        """Evaluates each resource's body in dependency order and records it (reference() reads
        what is recorded); without `apply` (what-if) the records are put back afterwards.
        Returns [(id, type, name, body)]."""
        out = []
        resources = d.template["resources"]
        saved = {}
        try:
            for i in order:
                r = resources[i]
                d.current = i
                if r["type"] == "Microsoft.Resources/deployments":
                    body, inner = self.nested(d, r)
                    out.extend(inner)
                    if not apply:
                        for rid, *_ in inner:
                            saved.setdefault(rid.lower(), self.resources.get(rid.lower()))
                    for rid, rtype, rname, rbody in inner:
                        self.put_resource(rid, rtype, rname, rbody)
                else:
                    body = {k: d.eval(v) for k, v in r.items() if k not in TEMPLATE_ONLY}
                d.current = None
                name = d.eval(r["name"])
                model = MODELS.get(r["type"])
                if model is not None:
                    validate_model(model, body, "%s `%s`" % (r["type"], name))
                if r["type"] == "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments":
                    check_sql_role_assignment(d.ids[i], body)
                if r["type"] == "Microsoft.KeyVault/vaults":
                    check_vault(name, body)
                    self.check_vault_name_free(name)
                m = re.search(r"/providers/Microsoft\.KeyVault/vaults/([^/]+)/secrets/([^/]+)/providers/", d.ids[i], re.I)
                if m and apply and not self.keyvaults.exists(m.group(1), m.group(2)):
                    raise Invalid("the scope `%s` of a role assignment does not exist: Key Vault secret `%s` has no value"
                                  % (d.ids[i].split("/providers/Microsoft.Authorization/")[0], m.group(2)), "ResourceNotFound", 404)
                rid = d.ids[i]
                out.append((rid, r["type"], name, body))
                if not apply:
                    for k in (rid.lower(), rid.lower() + "/host/default"):
                        saved.setdefault(k, self.resources.get(k))
                self.put_resource(rid, r["type"], name, body)
        finally:
            for k, old in saved.items():
                if old is None:
                    self.resources.pop(k, None)
                else:
                    self.resources[k] = old
        return out

    def nested(self, d, r):
        """A nested deployment (`Microsoft.Resources/deployments` with an inline template and
        inner expression evaluation), as ARM runs one at its `subscriptionId`/`resourceGroup`:
        its body checked against the published `Deployment` model, its parameters evaluated in
        the outer template, its inner template evaluated with them. Only role assignments, Cosmos DB
        SQL role assignments and Service Bus topic subscriptions are accepted inside (what nimbus
        nests), each against its published model, in `dependsOn` order. Returns (body, [(id, type, name, body)])."""
        props = r.get("properties") or {}
        if (props.get("expressionEvaluationOptions") or {}).get("scope", "").lower() != "inner":
            raise Invalid("a nested deployment must evaluate its expressions in the inner scope", "InvalidTemplate")
        t = props.get("template")
        if not isinstance(t, dict) or not re.search(r"/(subscriptionD|d)eploymentTemplate\.json#$", str(t.get("$schema", ""))):
            raise Invalid("a nested deployment needs an inline template with a deployment template `$schema`", "InvalidTemplate")
        sub = d.eval(r.get("subscriptionId", d.sub))
        rg = d.eval(r["resourceGroup"]) if "resourceGroup" in r else None
        if rg is None and "location" not in r:
            raise Invalid("a subscription-level nested deployment needs a `location`", "InvalidTemplate")
        if rg is not None and "subscriptionDeploymentTemplate" in t["$schema"]:
            raise Invalid("a resource group deployment cannot use the subscription template schema", "InvalidTemplate")
        params = {k: {"value": d.eval(v["value"])} for k, v in (props.get("parameters") or {}).items()}
        body = {"properties": {"mode": props.get("mode"), "template": t, "parameters": params,
                               "expressionEvaluationOptions": props["expressionEvaluationOptions"]}}
        if "location" in r:
            body["location"] = d.eval(r["location"])
        validate_model(dm.Deployment, body, "nested deployment `%s`" % d.eval(r["name"]))
        inner = Deployment(self, sub, rg or "", t, {})
        inner.params = self.parameters_of(t, params)
        scope_id = "/subscriptions/%s" % sub + ("/resourceGroups/%s" % rg if rg else "")
        out = []
        inner_ids = {}
        for ir in t.get("resources") or []:
            rtype = ir.get("type")
            if rtype not in NESTED_TYPES:
                raise Invalid("the ARM test double runs nested role assignments, Cosmos DB SQL role assignments and "
                              "Service Bus subscriptions only, not `%s`" % rtype, "InvalidTemplate")
            iname = inner.eval(ir["name"])
            iscope = inner.eval(ir["scope"]) if "scope" in ir else None
            if iscope is not None and not iscope.lower().startswith(scope_id.lower() + "/"):
                raise Invalid("the scope `%s` is outside the nested deployment's `%s`" % (iscope, scope_id), "InvalidTemplate")
            if rtype != "Microsoft.Authorization/roleAssignments" and rg is None:
                raise Invalid("`%s` is a resource group's resource: its nested deployment needs a `resourceGroup`" % rtype,
                              "InvalidTemplate")
            ibody = {k: inner.eval(v) for k, v in ir.items() if k not in TEMPLATE_ONLY}
            iid = id_of(scope_id, rtype, iname, iscope)
            # ARM runs a nested template's resources in parallel but for `dependsOn`: an assignment
            # on a resource created beside it must wait for it.
            deps = [inner.eval(x).lower() for x in ir.get("dependsOn", [])]
            for created in inner_ids:
                if iscope is not None and iscope.lower() == created and created not in deps:
                    raise Invalid("`%s` is scoped to `%s`, created in the same template, without `dependsOn` on it"
                                  % (iid, iscope), "InvalidTemplate")
            for dep in deps:
                if dep not in inner_ids:
                    raise Invalid("`%s` depends on `%s`, which is not in the nested template" % (iid, dep), "InvalidTemplate")
            if rtype == "Microsoft.Authorization/roleAssignments":
                validate_model(am.RoleAssignmentCreateParameters, ibody, "role assignment `%s`" % iname)
                definition = ibody["properties"]["roleDefinitionId"]
                if not re.fullmatch(r"/subscriptions/[^/]+/providers/Microsoft\.Authorization/roleDefinitions/[0-9a-fA-F-]{36}", definition):
                    raise Invalid("roleDefinitionId `%s` is not a role definition id" % definition)
            else:
                validate_model(MODELS[rtype], ibody, "%s `%s`" % (rtype, iname))
                if rtype == "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments":
                    check_sql_role_assignment(iid, ibody)
            inner_ids[iid.lower()] = True
            out.append((iid, rtype, iname, ibody))
        return body, out

    def outputs(self, d):
        out = {}
        for name, o in (d.template.get("outputs") or {}).items():
            out[name] = {"type": o["type"], "value": d.eval(o["value"])}
        return out


# What a nested deployment may hold (what nimbus nests for grants outside its resource group).
NESTED_TYPES = ("Microsoft.Authorization/roleAssignments",
                "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
                "Microsoft.ServiceBus/namespaces/topics/subscriptions")


def check_sql_role_assignment(rid, body):
    """What Cosmos DB requires of a SQL role assignment beyond its model: the role definition is
    one of the account's (`<account>/sqlRoleDefinitions/<guid>`), the scope is the account or a
    database (`/dbs/<db>`) or container (`/dbs/<db>/colls/<container>`) of it, and the name is a
    GUID."""
    account = rid.split("/sqlRoleAssignments/")[0]
    props = body.get("properties") or {}
    name = rid.rsplit("/", 1)[1]
    if not re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", name):
        raise Invalid("a SQL role assignment's name must be a GUID, not `%s`" % name)
    definition = props.get("roleDefinitionId", "")
    if not re.fullmatch(re.escape(account) + r"/sqlRoleDefinitions/[0-9a-fA-F-]{36}", definition, re.I):
        raise Invalid("roleDefinitionId `%s` is not a role definition of `%s`" % (definition, account))
    scope = props.get("scope", "")
    if not re.fullmatch(re.escape(account) + r"(/dbs/[^/]+(/colls/[^/]+)?)?", scope, re.I):
        raise Invalid("scope `%s` is not `%s` or a database or container of it" % (scope, account))
    if not props.get("principalId"):
        raise Invalid("a SQL role assignment needs a principalId")


def check_vault(name, body):
    """What Key Vault requires of a vault beyond its model."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]", name) or "--" in name:
        raise Invalid("vault name `%s` is invalid: 3-24 letters, digits and `-`, starting with a letter, ending with a letter or digit, no `--`" % name, "VaultNameNotValid")
    tenant = (body.get("properties") or {}).get("tenantId")
    if tenant != TENANT:
        raise Invalid("tenantId `%s` is not the subscription's tenant" % tenant, "BadRequest")


def changes(before, after, path=""):
    """What-if property changes between two bodies."""
    out = []
    keys = sorted(set(before or {}) | set(after or {})) if isinstance(before, dict) and isinstance(after, dict) else None
    if keys is None:
        if before != after:
            kind = "Create" if before is None else "Delete" if after is None else "Modify"
            out.append({"path": path, "propertyChangeType": kind, "before": before, "after": after})
        return out
    for k in keys:
        out.extend(changes(before.get(k), after.get(k), "%s.%s" % (path, k) if path else k))
    return out


# --------------------------------------------------------------------------- HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    arm = None

    def log_message(self, *a):
        pass

    def reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def base(self):
        scheme = getattr(self.server, "scheme", "http")
        return "%s://127.0.0.1:%d" % (scheme, self.server.server_address[1])

    def handle_any(self, method):
        arm = self.arm
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        query = parse_qs(url.query)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            with arm.lock:
                if path.startswith("/_double/") and not path.startswith("/_double/operations/"):
                    return self.hooks(method, path, raw)
                m = re.fullmatch(r"/_apps/([^/]+)(/.*)?", path)
                if m:
                    return self.app_host(method, m.group(1), m.group(2) or "/", raw)
                m = re.fullmatch(r"/_keyvault/([^/]+)(/.*)?", path)
                if m:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, out, extra = arm.keyvaults.handle(method, m.group(1), m.group(2) or "/", query, headers, raw,
                                                              self.base(), arm.vault_exists(m.group(1)))
                    return self.reply(status, out, extra)
                arm.calls.append([method, path])
                if self.headers.get("authorization") != "Bearer " + arm.token:
                    raise Invalid("the access token is missing or invalid", "InvalidAuthenticationToken", 401)
                m = re.fullmatch(r"/_double/operations/(\w+)", path)
                if m and method == "GET":
                    return self.poll(m.group(1))
                m = re.fullmatch(r"/v1/apps/([^/]+)/query", path)
                if m and method == "POST":
                    return self.query(m.group(1), raw)
                if "api-version" not in query:
                    raise Invalid("the api-version query parameter is required", "MissingApiVersionParameter")
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise Invalid("the request body is not JSON") from None
                return self.route(method, path, query, body)
        except Invalid as e:
            return self.reply(e.status, {"error": {"code": e.code, "message": str(e)}})
        except Exception as e:  # noqa: BLE001 - a bug in the double is a 500 with its trace
            return self.reply(500, {"error": {"code": "DoubleBug", "message": "%s\n%s" % (e, traceback.format_exc())}})

    def hooks(self, method, path, raw):
        arm = self.arm
        if path == "/_double/calls":
            return self.reply(200, arm.calls)
        if path == "/_double/resources":
            return self.reply(200, sorted(r["id"] for r in arm.resources.values() if not r.get("internal")))
        if path == "/_double/invocations":
            return self.reply(200, arm.invocations)
        if path == "/_double/keyvault":  # every vault's secrets, values included (test-only)
            return self.reply(200, {"vaults": arm.keyvaults.vaults, "calls": arm.keyvaults.calls})
        if path == "/_double/traces" and method == "POST":
            arm.traces.extend(json.loads(raw or b"[]"))
            return self.reply(204)
        if path == "/_double/fail-next-deployment" and method == "POST":
            given = json.loads(raw or b"{}")
            arm.fail_next = (given.get("code", "Conflict"), given.get("message", "injected failure"))
            return self.reply(204)
        return self.reply(404, {"error": {"code": "NotFound", "message": path}})

    def route(self, method, path, query, body):
        arm = self.arm
        m = re.fullmatch(r"/subscriptions/([^/]+)", path, re.I)
        if m and method == "GET":  # Subscriptions - Get
            return self.reply(200, {"id": path, "subscriptionId": m.group(1), "tenantId": TENANT,
                                    "displayName": "double", "state": "Enabled"})
        m = re.fullmatch(r"/subscriptions/([^/]+)/providers/Microsoft\.KeyVault/locations/([^/]+)/deletedVaults/([^/]+)/purge", path, re.I)
        if m and method == "POST":  # Vaults - Purge Deleted
            if arm.deleted_vaults.get(m.group(3).lower()) is None:
                raise Invalid("deleted vault `%s` was not found" % m.group(3), "ResourceNotFound", 404)
            if arm.deleted_vaults[m.group(3).lower()].lower() != m.group(2).lower():
                raise Invalid("deleted vault `%s` is not in location `%s`" % (m.group(3), m.group(2)), "ResourceNotFound", 404)
            del arm.deleted_vaults[m.group(3).lower()]
            arm.keyvaults.vaults.pop(m.group(3), None)
            op = arm.new_operation()
            return self.reply(202, None, {"Location": "%s/_double/operations/%s" % (self.base(), op), "Retry-After": "0"})
        m = re.fullmatch(r"/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/Microsoft\.KeyVault/vaults/([^/]+)", path, re.I)
        if m and method == "PUT":  # Vaults - Create Or Update
            if (m.group(1), m.group(2).lower()) not in arm.groups:
                raise Invalid("resource group `%s` could not be found" % m.group(2), "ResourceGroupNotFound", 404)
            validate_model(kvm.VaultCreateOrUpdateParameters, body, "key vault")
            check_vault(m.group(3), body)
            arm.check_vault_name_free(m.group(3))
            arm.put_resource(path, "Microsoft.KeyVault/vaults", m.group(3), body)
            return self.reply(200, {"id": path, "name": m.group(3), "type": "Microsoft.KeyVault/vaults",
                                    "location": body["location"], "properties": {**body["properties"], **arm.resources[path.lower()]["runtime"]}})
        m = re.fullmatch(r"/subscriptions/([^/]+)/resourcegroups/([^/]+)", path, re.I)
        if m:
            key = (m.group(1), m.group(2).lower())
            if method == "GET":
                g = arm.groups.get(key)
                if g is None:
                    raise Invalid("resource group `%s` could not be found" % m.group(2), "ResourceGroupNotFound", 404)
                return self.reply(200, {"id": path, "name": m.group(2), "location": g["location"],
                                        "properties": {"provisioningState": "Succeeded"}})
            if method == "PUT":
                if not isinstance(body, dict) or not isinstance(body.get("location"), str):
                    raise Invalid("a resource group needs a `location`")
                arm.groups[key] = {"location": body["location"]}
                return self.reply(201, {"id": path, "name": m.group(2), "location": body["location"]})
        m = re.fullmatch(r"/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/Microsoft\.Resources/deployments/([^/]+)(/whatIf)?", path, re.I)
        if m:
            sub, rg, name, what_if = m.groups()
            if (sub, rg.lower()) not in arm.groups:
                raise Invalid("resource group `%s` could not be found" % rg, "ResourceGroupNotFound", 404)
            if what_if and method == "POST":
                return self.what_if(sub, rg, body)
            key = (sub, rg.lower(), name)
            if method == "PUT":
                return self.deploy(sub, rg, name, body, path)
            if method == "GET":
                rec = arm.deployments.get(key)
                if rec is None:
                    raise Invalid("deployment `%s` could not be found" % name, "DeploymentNotFound", 404)
                return self.reply(200, rec)
            if method == "DELETE":
                arm.deployments.pop(key, None)
                return self.reply(204)
        m = re.fullmatch(r"(/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/.+)", path, re.I)
        if m:
            rid = m.group(1)
            if method == "PUT" and re.search(r"/providers/Microsoft\.Storage/storageAccounts/[^/]+$", rid, re.I):
                validate_model(sm.StorageAccountCreateParameters, body, "storage account")
                name = rid.rsplit("/", 1)[1]
                if not re.fullmatch(r"[a-z0-9]{3,24}", name):
                    raise Invalid("storage account name `%s` is invalid" % name, "AccountNameInvalid")
                arm.put_resource(rid, "Microsoft.Storage/storageAccounts", name, body)
                op = arm.new_operation(result={"id": rid, "name": name, "properties": {"provisioningState": "Succeeded", **arm.resources[rid.lower()]["runtime"]}})
                return self.reply(202, None, {"Location": "%s/_double/operations/%s" % (self.base(), op), "Retry-After": "0"})
            m = re.fullmatch(r"(.+/providers/Microsoft\.Web/sites/[^/]+)/config/appsettings(/list)?", rid, re.I)
            if m:  # Web Apps - Update Application Settings / List Application Settings
                site = arm.resources.get(m.group(1).lower())
                if site is None:
                    raise Invalid("resource `%s` was not found" % m.group(1), "ResourceNotFound", 404)
                config = site["body"].setdefault("properties", {}).setdefault("siteConfig", {})
                if method == "PUT" and not m.group(2):
                    validate_model(wm.StringDictionary, body, "app settings")
                    # A new body: the record of the deployment that created the site stays as it was.
                    site["body"] = json.loads(json.dumps(site["body"]))
                    site["body"]["properties"]["siteConfig"]["appSettings"] = [
                        {"name": k, "value": v} for k, v in (body.get("properties") or {}).items()]
                    return self.reply(200, {"id": m.group(1) + "/config/appsettings", "name": "appsettings",
                                            "properties": body.get("properties") or {}})
                if method == "POST" and m.group(2):
                    return self.reply(200, {"id": m.group(1) + "/config/appsettings", "name": "appsettings",
                                            "properties": {s["name"]: s["value"] for s in config.get("appSettings", [])}})
            if method == "GET":
                rec = arm.resources.get(rid.lower())
                if rec is None or rec.get("internal"):
                    raise Invalid("resource `%s` was not found" % rid, "ResourceNotFound", 404)
                return self.reply(200, {"id": rec["id"], "name": rec["name"], "type": rec["type"],
                                        "location": rec["body"].get("location"),
                                        "properties": {**rec["body"].get("properties", {}), **rec["runtime"], "provisioningState": "Succeeded"}})
            if method == "DELETE":
                gone = [k for k in arm.resources if k == rid.lower() or k.startswith(rid.lower() + "/")]
                for k in gone:
                    rec = arm.resources.pop(k)
                    if rec["type"] == "Microsoft.KeyVault/vaults":  # soft delete: the name stays taken
                        arm.deleted_vaults[rec["name"].lower()] = rec["body"].get("location", "")
                if not gone:
                    return self.reply(204)
                op = arm.new_operation()
                return self.reply(202, None, {"Location": "%s/_double/operations/%s" % (self.base(), op), "Retry-After": "0"})
            if method == "POST" and rid.lower().endswith("/host/default/listkeys"):
                rec = arm.resources.get(rid[: -len("/listkeys")].lower())
                if rec is None:
                    raise Invalid("resource `%s` was not found" % rid, "ResourceNotFound", 404)
                return self.reply(200, rec["keys"])
        raise Invalid("the ARM test double does not implement %s %s" % (method, path), "NotImplemented", 501)

    def deploy(self, sub, rg, name, body, path):
        arm = self.arm
        validate_model(dm.Deployment, body, "deployment")
        props = body["properties"]
        if props.get("mode") not in ("Incremental", "Complete"):
            raise Invalid("properties.mode must be Incremental or Complete")
        if "template" not in props:
            raise Invalid("properties.template is required (templateLink is not supported by the double)")
        d, order = arm.evaluate(sub, rg, props)
        failure = arm.fail_next
        arm.fail_next = None
        if failure:
            op = arm.new_operation("Failed", {"code": "DeploymentFailed", "message": "At least one resource deployment operation failed.",
                                              "details": [{"code": failure[0], "message": failure[1]}]})
            state = "Failed"
            created = []
        else:
            created = arm.create_in_order(d, order, apply=True)
            op = arm.new_operation()
            state = "Succeeded"
        rec = {"id": path, "name": name, "properties": {
            "provisioningState": state, "mode": props["mode"],
            "parameters": {k: {"value": v} for k, v in d.params.items()},
            "outputs": arm.outputs(d) if state == "Succeeded" else {},
            "outputResources": [{"id": rid} for rid, *_ in created],
            "correlationId": op}}
        arm.deployments[(sub, rg.lower(), name)] = rec
        running = json.loads(json.dumps(rec))
        running["properties"]["provisioningState"] = "Accepted"
        return self.reply(201, running, {"Azure-AsyncOperation": "%s/_double/operations/%s?api-version=2024-03-01" % (self.base(), op),
                                         "Retry-After": "0"})

    def what_if(self, sub, rg, body):
        arm = self.arm
        validate_model(dm.DeploymentWhatIf, body, "what-if")
        d, order = arm.evaluate(sub, rg, body["properties"])
        planned = arm.create_in_order(d, order, apply=False)
        result = []
        in_template = set()
        for rid, rtype, name, new in planned:
            in_template.add(rid.lower())
            old = arm.resources.get(rid.lower())
            if old is None:
                result.append({"resourceId": rid, "changeType": "Create", "after": new})
            else:
                delta = changes(old["body"], new)
                result.append({"resourceId": rid, "changeType": "Modify" if delta else "NoChange",
                               "before": old["body"], "after": new, "delta": delta})
        rg_prefix = ("/subscriptions/%s/resourceGroups/%s/" % (sub, rg)).lower()
        for k, rec in arm.resources.items():
            if k not in in_template and k.startswith(rg_prefix) and not rec.get("internal"):
                result.append({"resourceId": rec["id"], "changeType": "Ignore", "before": rec["body"]})
        op = arm.new_operation(result={"status": "Succeeded", "properties": {"changes": result}})
        return self.reply(202, None, {"Location": "%s/_double/operations/%s" % (self.base(), op), "Retry-After": "0"})

    def app_package(self, app):
        """The unpacked package of site `app` (downloaded from its onedeploy packageUri)."""
        arm = self.arm
        site = next((r for r in arm.resources.values() if r["type"] == "Microsoft.Web/sites" and r["name"] == app), None)
        if site is None:
            raise Invalid("app `%s` not found" % app, "NotFound", 404)
        ext = arm.resources.get((site["id"] + "/extensions/onedeploy").lower())
        if ext is None:
            raise Invalid("app `%s` has no code deployed" % app, "NotFound", 404)
        uri = ext["body"]["properties"]["packageUri"]
        parts = urlsplit(uri).path.strip("/").split("/")
        container, blob = parts[-2], parts[-1]
        target = os.path.join(arm.apps_dir, app, blob)
        if not os.path.isdir(target):
            from azure.storage.blob import BlobServiceClient

            data = BlobServiceClient.from_connection_string(arm.storage).get_blob_client(container, blob).download_blob().readall()
            zipfile.ZipFile(io.BytesIO(data)).extractall(target)
        settings = {s["name"]: s["value"] for s in site["body"]["properties"]["siteConfig"]["appSettings"]}
        identity = arm.resources.get(str(site["body"]["properties"].get("keyVaultReferenceIdentity", "")).lower())
        principal = identity["runtime"]["principalId"] if identity else None
        for k, v in list(settings.items()):
            ref = KEY_VAULT_REFERENCE.fullmatch(str(v))
            if ref and principal and arm.can_read_secret(principal, ref.group(1), ref.group(2)):
                value = arm.keyvaults.value_of(ref.group(1), ref.group(2))
                if value is not None:
                    settings[k] = value
        keys = arm.resources[(site["id"] + "/host/default").lower()]["keys"]
        return target, settings, keys

    def run_app(self, target, settings, args):
        env = dict(os.environ)
        env.update({k: str(v) for k, v in settings.items()})
        env["NIMBUS_AZURE_STORAGE_CONNECTION_STRING"] = self.arm.storage
        if self.arm.cosmos:
            env["NIMBUS_AZURE_COSMOS_CONNECTION_STRING"] = self.arm.cosmos
        runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "inspect_app.py")
        p = subprocess.run([sys.executable, runner, target] + args, env=env, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise Invalid("the app failed to load: %s" % p.stderr[-2000:], "FunctionHostError", 500)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def app_host(self, method, app, path, raw):
        target, settings, keys = self.app_package(app)
        if os.path.exists(os.path.join(target, "package.json")):
            raise Invalid("the Functions host stand-in runs Python apps only", "NotImplemented", 501)
        key = self.headers.get("x-functions-key")
        m = re.fullmatch(r"/admin/functions/([^/]+)", path)
        if m and method == "POST":
            if key != keys["masterKey"]:
                return self.reply(401, None)
            data = json.loads(raw or b"{}").get("input", "")
            out = self.run_app(target, settings, ["--invoke", m.group(1), data])
            self.arm.invocations.append({"app": app, "function": m.group(1), **out["invoked"]})
            return self.reply(202, None)
        url = "https://%s.azurewebsites.net%s" % (app, self.path.split("/_apps/" + app, 1)[1] or "/")
        out = self.run_app(target, settings, ["--http", "-", method, url, raw.decode("utf-8", "replace")])
        r = out["response"]
        if r is None:
            return self.reply(404, None)
        if r["authLevel"].upper().endswith("FUNCTION") and key not in (keys["functionKeys"]["default"], keys["masterKey"]):
            return self.reply(401, None)
        data = r["body"].encode()
        self.send_response(r["status"])
        for k, v in r["headers"].items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("x-ms-invocation-id", "inv-1")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def query(self, app_id, raw):
        """The Application Insights query API (`POST /v1/apps/{app}/query`, body `{"query": KQL}`),
        for the KQL nimbus sends: rows of `traces` newer than `datetime(...)` whose
        `cloud_RoleName` is in the list, oldest first."""
        arm = self.arm
        known = {r["runtime"].get("AppId") for r in arm.resources.values()}
        if app_id not in known:
            raise Invalid("application `%s` not found" % app_id, "PathNotFoundError", 404)
        body = json.loads(raw or b"{}")
        kql = body.get("query")
        if not isinstance(kql, str):
            raise Invalid("the body needs a `query` string", "BadArgumentError")
        since = re.search(r"timestamp > datetime\(([^)]+)\)", kql)
        roles = re.search(r"cloud_RoleName in \(([^)]*)\)", kql)
        if not since or not roles:
            raise Invalid("the double answers nimbus's trace query only", "BadArgumentError")
        names = set(re.findall(r"'([^']*)'", roles.group(1)))
        rows = sorted((t for t in arm.traces if t["timestamp"] > since.group(1) and t["cloud_RoleName"] in names),
                      key=lambda t: t["timestamp"])
        return self.reply(200, {"tables": [{"name": "PrimaryResult", "columns": [
            {"name": "timestamp", "type": "datetime"}, {"name": "cloud_RoleName", "type": "string"},
            {"name": "message", "type": "string"}],
            "rows": [[t["timestamp"], t["cloud_RoleName"], t["message"]] for t in rows]}]})

    def poll(self, op_id):
        op = self.arm.operations.get(op_id)
        if op is None:
            raise Invalid("operation `%s` not found" % op_id, "NotFound", 404)
        op["polls"] += 1
        url = urlsplit(self.path)
        if "api-version" in parse_qs(url.query) and op["result"] is None:  # Azure-AsyncOperation
            if op["polls"] < 2:
                return self.reply(200, {"status": "Running"}, {"Retry-After": "0"})
            out = {"status": op["status"]}
            if op["error"]:
                out["error"] = op["error"]
            return self.reply(200, out)
        if op["polls"] < 2:  # Location
            return self.reply(202, None, {"Location": self.base() + self.path, "Retry-After": "0"})
        return self.reply(200, op["result"]) if op["result"] is not None else self.reply(204)

    def do_GET(self):
        self.handle_any("GET")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")


def tls_context(cert_out):
    """A server TLS context with a new self-signed certificate for 127.0.0.1, written to `cert_out`."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tempfile.mkdtemp(prefix="arm-double-tls-")
    atexit.register(shutil.rmtree, folder, True)
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    if cert_out:
        shutil.copyfile(cert_path, cert_out)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--blob-endpoint", default="")
    p.add_argument("--storage-connection-string", default="")
    p.add_argument("--apps-dir", default="", help="where to unpack apps (default: a temporary folder)")
    p.add_argument("--keyvault-tls-port", type=int, default=0,
                   help="also listen with TLS on this port (for the azure-keyvault-secrets SDK, which sends tokens over https only)")
    p.add_argument("--tls-cert", default="", help="where to write the TLS listener's self-signed certificate (PEM)")
    p.add_argument("--cosmos-connection-string", default="",
                   help="a Cosmos DB API server's connection string the host stand-in gives apps (tables)")
    a = p.parse_args()
    arm = Handler.arm = Arm(a.token, a.blob_endpoint, a.storage_connection_string, a.apps_dir,
                            a.cosmos_connection_string)
    if arm.owns_apps_dir:
        atexit.register(shutil.rmtree, arm.apps_dir, True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    if a.keyvault_tls_port:
        tls = ThreadingHTTPServer(("127.0.0.1", a.keyvault_tls_port), Handler)
        tls.scheme = "https"
        tls.socket = tls_context(a.tls_cert).wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
