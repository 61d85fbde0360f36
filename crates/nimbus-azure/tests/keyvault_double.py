"""Key Vault data-plane test double (secrets), served by the ARM test double (arm_double.py) under
`/_keyvault/<vault>/...` for every vault the resource groups hold.

It is NOT Key Vault: there is no Key Vault emulator. It keeps secrets in memory and answers the
secret operations nimbus and Microsoft's `azure-keyvault-secrets` SDK use, as the REST reference
documents them, after checking each request:

- authentication as Key Vault does it: a request without `Authorization` gets 401 with the
  `WWW-Authenticate: Bearer authorization="...", resource="https://vault.azure.net"` challenge
  (the SDK's first, bodiless request); any other token than the double's gets 401;
- `api-version` one of the versions the installed SDK knows (`ApiVersion` of
  `azure.keyvault.secrets._shared.client_base`);
- a secret name of 1-127 letters, digits and `-`;
- the `PUT /secrets/<name>` body against the SDK's own generated model `SecretSetParameters`
  (`value` required, `tags`, `contentType`, `attributes`; nothing else), and the value at most
  25 KiB (Key Vault's limit);
- soft delete: a deleted name refuses a new value with 409 `ObjectIsDeletedButRecoverable` until
  it is recovered or purged.

Operations: set (`PUT /secrets/{name}`), get (`GET /secrets/{name}[/{version}]`), list
(`GET /secrets`, `maxresults` pages with `nextLink`), delete (`DELETE /secrets/{name}`), get
deleted (`GET /deletedsecrets/{name}`), recover (`POST /deletedsecrets/{name}/recover`), purge
(`DELETE /deletedsecrets/{name}`).
"""

import json
import re
import time

from azure.keyvault.secrets._generated.models import SecretSetParameters
from azure.keyvault.secrets._shared.client_base import ApiVersion

API_VERSIONS = {v.value for v in ApiVersion}
MAX_VALUE_BYTES = 25 * 1024
NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
CHALLENGE = 'Bearer authorization="https://login.microsoftonline.com/%s", resource="https://vault.azure.net"'


class Refused(Exception):
    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.inner, self.headers = status, code, inner, headers or {}

    def body(self):
        error = {"code": self.code, "message": str(self)}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


class KeyVaults:
    """Every vault's secrets: vault -> name -> {versions: [...], deleted: None | {...}}."""

    def __init__(self, token, tenant, validate_model):
        self.token, self.tenant, self.validate_model = token, tenant, validate_model
        self.vaults = {}
        self.calls = []  # [method, vault, path, api-version] of every request

    def value_of(self, vault, name):
        """The newest enabled value of a live secret, or None (the host stand-in's references)."""
        s = self.vaults.get(vault, {}).get(name)
        if not s or s["deleted"] or not s["versions"]:
            return None
        return s["versions"][-1]["value"]

    def exists(self, vault, name):
        return self.value_of(vault, name) is not None

    def handle(self, method, vault, path, query, headers, raw, base, vault_known):
        """(status, body, headers) of one data-plane request on `vault`."""
        self.calls.append([method, vault, path, (query.get("api-version") or [""])[0]])
        try:
            return self._handle(method, vault, path, query, headers, raw, base, vault_known)
        except Refused as e:
            return e.status, e.body(), e.headers

    def _handle(self, method, vault, path, query, headers, raw, base, vault_known):
        auth = headers.get("authorization")
        if auth is None:
            raise Refused(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                          headers={"WWW-Authenticate": CHALLENGE % self.tenant})
        if auth != "Bearer " + self.token:
            raise Refused(401, "Unauthorized", "AKV10032: Invalid issuer or token.")
        version = (query.get("api-version") or [None])[0]
        if version not in API_VERSIONS:
            raise Refused(400, "BadParameter", "The specified version (%s) is not recognized. Consider using the latest supported version (%s)." % (version, sorted(API_VERSIONS)[-1]))
        if not vault_known:
            raise Refused(404, "VaultNotFound", "vault `%s` does not exist" % vault)
        store = self.vaults.setdefault(vault, {})
        # Ids name the vault as Key Vault does (the SDK parses them); nextLink is followed as it
        # is, so it points at the listener that served the page.
        url = "https://%s.vault.azure.net" % vault
        here = "%s/_keyvault/%s" % (base, vault)
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["secrets"] and len(parts) >= 2:
            self.check_name(parts[1])
        if parts == ["secrets"] and method == "GET":
            return self.list(store, url, here, query)
        if len(parts) == 2 and parts[0] == "secrets" and method == "PUT":
            return self.set(store, url, parts[1], raw)
        if len(parts) in (2, 3) and parts[0] == "secrets" and method == "GET":
            return 200, self.bundle(url, parts[1], self.live(store, parts[1]), parts[2] if len(parts) == 3 else None), {}
        if len(parts) == 2 and parts[0] == "secrets" and method == "DELETE":
            s = self.live(store, parts[1])
            s["deleted"] = {"deletedDate": int(time.time()), "scheduledPurgeDate": int(time.time()) + 90 * 86400}
            return 200, self.deleted_bundle(url, parts[1], s), {}
        if len(parts) == 2 and parts[0] == "deletedsecrets" and method == "GET":
            return 200, self.deleted_bundle(url, parts[1], self.dead(store, parts[1])), {}
        if len(parts) == 3 and parts[0] == "deletedsecrets" and parts[2] == "recover" and method == "POST":
            s = self.dead(store, parts[1])
            s["deleted"] = None
            return 200, self.bundle(url, parts[1], s, None, with_value=False), {}
        if len(parts) == 2 and parts[0] == "deletedsecrets" and method == "DELETE":
            self.dead(store, parts[1])
            del store[parts[1]]
            return 204, None, {}
        raise Refused(400, "BadParameter", "the Key Vault double does not implement %s %s" % (method, path))

    @staticmethod
    def check_name(name):
        if not NAME.fullmatch(name):
            raise Refused(400, "BadParameter", "The request URI contains an invalid name: %s" % name)

    def set(self, store, url, name, raw):
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise Refused(400, "BadParameter", "the request body is not JSON") from None
        try:
            self.validate_model(SecretSetParameters, body, "SecretSetParameters")
        except Exception as e:  # the ARM double's Invalid
            raise Refused(400, "BadParameter", str(e)) from None
        if not isinstance(body.get("value"), str):
            raise Refused(400, "BadParameter", "Property value is required")
        if len(body["value"].encode()) > MAX_VALUE_BYTES:
            raise Refused(400, "BadParameter", "Secret value is too large (maximum 25 KiB)")
        s = store.get(name)
        if s and s["deleted"]:
            raise Refused(409, "Conflict", "Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged." % name,
                          inner="ObjectIsDeletedButRecoverable")
        s = store.setdefault(name, {"versions": [], "deleted": None})
        now = int(time.time())
        s["versions"].append({"version": "%032x" % (len(s["versions"]) + 1), "value": body["value"],
                              "contentType": body.get("contentType"), "tags": body.get("tags"),
                              "created": now, "updated": now,
                              "enabled": (body.get("attributes") or {}).get("enabled", True)})
        return 200, self.bundle(url, name, s, None), {}

    @staticmethod
    def live(store, name):
        s = store.get(name)
        if not s or s["deleted"]:
            raise Refused(404, "SecretNotFound", "A secret with (name/id) %s was not found in this key vault." % name)
        return s

    @staticmethod
    def dead(store, name):
        s = store.get(name)
        if not s or not s["deleted"]:
            raise Refused(404, "SecretNotFound", "Deleted Secret not found: %s" % name)
        return s

    @staticmethod
    def attributes(v):
        return {"enabled": v["enabled"], "created": v["created"], "updated": v["updated"],
                "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}

    def bundle(self, url, name, s, version, with_value=True):
        v = s["versions"][-1]
        if version:
            v = next((x for x in s["versions"] if x["version"] == version), None)
            if v is None:
                raise Refused(404, "SecretNotFound", "A secret with (name/id) %s/%s was not found in this key vault." % (name, version))
        out = {"id": "%s/secrets/%s/%s" % (url, name, v["version"]), "attributes": self.attributes(v)}
        if with_value:
            out["value"] = v["value"]
        if v["contentType"]:
            out["contentType"] = v["contentType"]
        if v["tags"]:
            out["tags"] = v["tags"]
        return out

    def deleted_bundle(self, url, name, s):
        out = self.bundle(url, name, s, None, with_value=False)
        out.update({"recoveryId": "%s/deletedsecrets/%s" % (url, name), **s["deleted"]})
        return out

    def list(self, store, url, here, query):
        size = int((query.get("maxresults") or ["25"])[0])
        if not 1 <= size <= 25:
            raise Refused(400, "BadParameter", "maxresults must be between 1 and 25")
        skip = int((query.get("$skiptoken") or ["0"])[0])
        live = sorted(n for n, s in store.items() if not s["deleted"] and s["versions"])
        page = live[skip:skip + size]
        items = []
        for name in page:
            item = self.bundle(url, name, store[name], None, with_value=False)
            item["id"] = "%s/secrets/%s" % (url, name)
            items.append(item)
        more = skip + size < len(live)
        version = query["api-version"][0]
        link = "%s/secrets?api-version=%s&maxresults=%d&$skiptoken=%d" % (here, version, size, skip + size) if more else None
        return 200, {"value": items, "nextLink": link}, {}
