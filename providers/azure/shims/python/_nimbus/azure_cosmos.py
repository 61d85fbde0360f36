"""Nimbus tables on Azure: Cosmos DB for NoSQL (``azure-cosmos``), and its change feed as neutral
``table`` events.

One container per table, partition key path ``/pk``. One document per item::

    {"id": <sort key text, or the partition key text without a sort key>,
     "pk": <partition key text>,
     "key": {<the key fields as given>},
     "item": {<the item>},
     "old": <the item it replaced, or null>,
     "op": "insert" | "modify" | "remove"}

Key texts are the values as text with ``%``, ``/``, ``\\``, ``#``, ``?`` and control characters
percent-encoded (Cosmos DB forbids them in ids); an empty text is ``%`` (which encoding never
produces). ``query`` reads one partition in ``id`` order (the sort key's text order).

Deletes are **tombstones**. The change feed in its default mode (latest version) carries
inserts and updates but no deletes, so, as Microsoft documents for this mode, ``delete`` writes a
soft-delete marker instead of deleting: the document with ``"deleted": true``, ``"op": "remove"``,
``"item": null``, the removed item as ``old`` and a ``ttl`` of ``TOMBSTONE_TTL`` seconds, after
which Cosmos DB removes it (the container has TTL on, without a default). ``get``, ``query`` and
``scan`` never return tombstones; ``put`` over a tombstone is an insert. ``put`` and ``delete``
read the current document first (one point read) to know ``op`` and ``old``; deleting a missing
item writes nothing.

``table_event`` turns one change feed document into the neutral event (``remove`` for a
tombstone); documents written by something else than Nimbus (no ``op``) are ``modify`` events of
their own fields (without the system properties), keyed by ``id``.

Where (app settings of the Azure provider, crates/nimbus-azure/src/env.rs):
``NIMBUS_AZURE_COSMOS_ENDPOINT`` (the account's document endpoint, with the app's identity) or
``NIMBUS_AZURE_COSMOS_CONNECTION_STRING`` (``AccountEndpoint=...;AccountKey=...``: a local
server, development), the database ``NIMBUS_AZURE_COSMOS_DATABASE`` (else function.json
``native.database``) and the container ``NIMBUS_RESOURCE_<R>_NAME`` (else ``native.container``).
A container that already exists (``existing.azure``) is in its owner's account and database:
``NIMBUS_RESOURCE_<R>_ENDPOINT`` and ``NIMBUS_RESOURCE_<R>_DATABASE`` replace the two above.
"""

from __future__ import annotations

import json

from . import args as _args
from . import core

# Seconds a tombstone lives: long enough for the change feed trigger to see it after an outage
# of the function app of up to an hour, short enough not to keep deleted items around.
TOMBSTONE_TTL = 3600

_KEY_ESCAPES = {"%": "%25", "/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F"}
EMPTY_KEY = "%"


def key_text(value) -> str:
    """A key field's value as document id / partition key text (forbidden characters
    percent-encoded; the empty text as ``%``)."""
    import base64

    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        text = core.dumps(value)
    elif isinstance(value, (bytes, bytearray)):
        text = base64.b64encode(bytes(value)).decode("ascii")
    else:
        text = str(value)
    out = []
    for ch in text:
        if ch in _KEY_ESCAPES:
            out.append(_KEY_ESCAPES[ch])
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            out.append("%%%02X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out) or EMPTY_KEY


def ids(fields, key):
    """(id, pk) of the item or key ``key`` of a table keyed by ``fields``."""
    pk = key_text(key[fields[0]])
    return (key_text(key[fields[1]]) if len(fields) > 1 else pk), pk


def make_service(environ):
    """A CosmosClient from the environment (see the module docs); KeyError names a missing setting."""
    from azure.cosmos import CosmosClient

    conn = environ.get("NIMBUS_AZURE_COSMOS_CONNECTION_STRING")
    if conn:
        return CosmosClient.from_connection_string(conn)
    endpoint = environ.get("NIMBUS_AZURE_COSMOS_ENDPOINT")
    if not endpoint:
        raise KeyError("NIMBUS_AZURE_COSMOS_ENDPOINT")
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = environ.get("AZURE_CLIENT_ID")
    credential = ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()
    return CosmosClient(endpoint, credential=credential)


def is_tombstone(doc) -> bool:
    return isinstance(doc, dict) and doc.get("deleted") is True


def _plain(value):
    """``value`` as plain JSON (what Cosmos DB stores)."""
    return json.loads(core.dumps(value))


def table_client_class(base, resource_error, from_azure):
    """The Cosmos DB table client, on the Azure clients' base class (``azure_resources._Client``)."""

    class TableClient(base):
        _type = "table"
        _service = "cosmos"
        _native_key = "container"

        def _fields(self):
            fields = _args.key_fields(self._spec)
            if not fields:
                raise ValueError("table %r declares no key (function.json `key`)" % self._name)
            return fields

        def _database(self, op):
            own = "NIMBUS_RESOURCE_%s_DATABASE" % self._name.upper().replace("-", "_")
            value = (self._environ.get(own) or self._environ.get("NIMBUS_AZURE_COSMOS_DATABASE")
                     or (self._spec.get("native") or {}).get("database"))
            if not isinstance(value, str) or not value:
                raise resource_error(
                    "table %r has no Cosmos DB database: app setting NIMBUS_AZURE_COSMOS_DATABASE is not set "
                    "(nimbus deploy sets it)" % self._name, "NotConfigured", self._name, op)
            return value

        def _container(self, op):
            return self._svc(op).get_database_client(self._database(op)).get_container_client(self.native(op))

        def _read(self, container, op, doc_id, pk):
            """The document, or None when there is none."""
            from azure.cosmos.exceptions import CosmosResourceNotFoundError

            try:
                return container.read_item(doc_id, partition_key=pk)
            except CosmosResourceNotFoundError as e:
                if getattr(e, "sub_status", None) == 1003:  # the container or database is missing
                    raise from_azure(e, self._name, op) from e
                return None
            except Exception as e:  # noqa: BLE001
                err = from_azure(e, self._name, op)
                if err is None:
                    raise
                raise err from e

        def get(self, key):
            fields = self._fields()
            key = _args.check_key("table key", key, fields, lambda f: f)
            doc_id, pk = ids(fields, key)
            doc = self._read(self._container("get"), "get", doc_id, pk)
            return None if doc is None or is_tombstone(doc) else doc.get("item")

        def put(self, item):
            fields = self._fields()
            item = _args.check_key("table item", item, fields, lambda f: f)
            doc_id, pk = ids(fields, item)
            container = self._container("put")
            current = self._read(container, "put", doc_id, pk)
            live = current is not None and not is_tombstone(current)
            doc = {"id": doc_id, "pk": pk, "key": _plain({f: item[f] for f in fields}), "item": _plain(item),
                   "old": current.get("item") if live else None, "op": "modify" if live else "insert"}
            self._call("put", container.upsert_item, doc)
            return None

        def delete(self, key):
            fields = self._fields()
            key = _args.check_key("table key", key, fields, lambda f: f)
            doc_id, pk = ids(fields, key)
            container = self._container("delete")
            current = self._read(container, "delete", doc_id, pk)
            if current is None or is_tombstone(current):
                return None
            tombstone = {"id": doc_id, "pk": pk, "key": current.get("key") or _plain({f: key[f] for f in fields}),
                         "item": None, "old": current.get("item"), "op": "remove", "deleted": True,
                         "ttl": TOMBSTONE_TTL}
            self._call("delete", container.upsert_item, tombstone)
            return None

        def _collect(self, op, pages, limit):
            out = []
            try:
                for doc in pages:
                    if is_tombstone(doc):
                        continue
                    out.append(doc.get("item"))
                    if limit is not None and len(out) >= limit:
                        break
            except Exception as e:  # noqa: BLE001
                err = from_azure(e, self._name, op)
                if err is None:
                    raise
                raise err from e
            return out

        def query(self, key, limit=None):
            fields = self._fields()
            key = _args.check_key("query key", key, fields, lambda f: f[:1])
            limit = _args.limit(limit)
            pk = key_text(key[fields[0]])
            container = self._container("query")
            pages = container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND NOT IS_DEFINED(c.deleted) ORDER BY c.id",
                parameters=[{"name": "@pk", "value": pk}], partition_key=pk,
                max_item_count=min(limit or 1000, 1000))
            return self._collect("query", pages, limit)

        def scan(self, limit=None):
            limit = _args.limit(limit)
            container = self._container("scan")
            pages = container.query_items("SELECT * FROM c WHERE NOT IS_DEFINED(c.deleted)",
                                          enable_cross_partition_query=True, max_item_count=min(limit or 1000, 1000))
            return self._collect("scan", pages, limit)

    return TableClient


# --------------------------------------------------------------------------- change feed

# System properties of every document (and the change feed's `_lsn`), and the TTL setting.
_SYSTEM = ("ttl", "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn")


def table_event(doc, table: str) -> dict:
    """One change feed document (a dict) of table ``table`` -> the neutral ``table`` event."""
    if not isinstance(doc, dict):
        raise core.EventError("a Cosmos DB change feed document must be an object, got %s" % type(doc).__name__)
    op = doc.get("op")
    if is_tombstone(doc):
        return {"type": "table", "table": table, "action": "remove", "key": doc.get("key") or {},
                "old": doc.get("old"), "new": None}
    if op in ("insert", "modify") and "item" in doc:
        return {"type": "table", "table": table, "action": op, "key": doc.get("key") or {},
                "old": doc.get("old") if op == "modify" else None, "new": doc.get("item")}
    # Written by something else than Nimbus: its own fields are the item.
    item = {k: v for k, v in doc.items() if k not in _SYSTEM}
    return {"type": "table", "table": table, "action": "modify", "key": {"id": doc.get("id")},
            "old": None, "new": item}
