'use strict';
// Nimbus tables on Azure: Cosmos DB for NoSQL (@azure/cosmos), and its change feed as neutral
// `table` events. The same layout as the Python shim (_nimbus/azure_cosmos.py, which documents
// it): one container per table (partition key path /pk), one document per item
// {id, pk, key, item, old, op}, deletes as tombstones ({deleted: true, op: "remove", item: null,
// old, ttl: TOMBSTONE_TTL}) because the change feed in its default mode has no deletes; reads
// and queries never return tombstones.
//
// Where: NIMBUS_AZURE_COSMOS_ENDPOINT (with the app's identity) or
// NIMBUS_AZURE_COSMOS_CONNECTION_STRING (AccountEndpoint=...;AccountKey=...), the database
// NIMBUS_AZURE_COSMOS_DATABASE (else function.json native.database), the container
// NIMBUS_RESOURCE_<R>_NAME (else native.container).

const core = require('./core.js');
const { checkKey, checkLimit } = require('./args.js');

const TOMBSTONE_TTL = 3600;
const EMPTY_KEY = '%';
const KEY_ESCAPES = { '%': '%25', '/': '%2F', '\\': '%5C', '#': '%23', '?': '%3F' };

// A key field's value as document id / partition key text (forbidden characters percent-encoded;
// the empty text as `%`).
function keyText(value) {
  let text;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else if (Buffer.isBuffer(value) || value instanceof Uint8Array) text = Buffer.from(value).toString('base64');
  else text = core.dumps(value);
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (KEY_ESCAPES[ch]) out += KEY_ESCAPES[ch];
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += ch;
  }
  return out || EMPTY_KEY;
}

// [id, pk] of an item or key of a table keyed by `fields`.
function ids(fields, key) {
  const pk = keyText(key[fields[0]]);
  return [fields.length > 1 ? keyText(key[fields[1]]) : pk, pk];
}

// A CosmosClient from the environment; throws {unset} naming a missing setting.
function makeService(env, requireLibrary, credential) {
  const { CosmosClient } = requireLibrary('@azure/cosmos');
  const conn = env.NIMBUS_AZURE_COSMOS_CONNECTION_STRING;
  if (conn) return new CosmosClient(conn);
  const endpoint = env.NIMBUS_AZURE_COSMOS_ENDPOINT;
  if (!endpoint) throw Object.assign(new Error('unset'), { unset: 'NIMBUS_AZURE_COSMOS_ENDPOINT' });
  return new CosmosClient({ endpoint, aadCredentials: credential() });
}

function isTombstone(doc) {
  return !!doc && typeof doc === 'object' && doc.deleted === true;
}

// `value` as plain JSON (what Cosmos DB stores).
function plain(value) {
  return JSON.parse(core.dumps(value));
}

// The Cosmos DB table client, on the Azure clients' base class (azure_resources.js `Client`).
function tableClientClass(Base, ResourceError) {
  class TableClient extends Base {
    keyFields() {
      const key = this.spec.key;
      const fields = Array.isArray(key) && key.every((k) => typeof k === 'string') ? key : [];
      if (!fields.length) throw new RangeError(`table ${JSON.stringify(this.name)} declares no key (function.json \`key\`)`);
      return fields;
    }

    database(op) {
      // An existing container (existing.azure) is in its owner's database: NIMBUS_RESOURCE_<R>_DATABASE.
      const own = this.env[`NIMBUS_RESOURCE_${this.name.toUpperCase().replace(/-/g, '_')}_DATABASE`];
      const value = own || this.env.NIMBUS_AZURE_COSMOS_DATABASE || (this.spec.native || {}).database;
      if (typeof value !== 'string' || !value) {
        throw new ResourceError(`table ${JSON.stringify(this.name)} has no Cosmos DB database: app setting NIMBUS_AZURE_COSMOS_DATABASE is not set (nimbus deploy sets it)`, 'NotConfigured', this.name, op);
      }
      return value;
    }

    container(op) {
      return this.svc(op).database(this.database(op)).container(this.native(op));
    }

    // The document, or null when there is none.
    async read(container, op, id, pk) {
      try {
        // A missing item is no error for the SDK (resource undefined, status 404).
        const r = await this.call(op, () => container.item(id, pk).read());
        if (r.statusCode === 404 && r.substatus === 1003) {
          throw new ResourceError(`the Cosmos DB container or database of table ${JSON.stringify(this.name)} does not exist`, 'NotFound', this.name, op, undefined, 404, 'NotFound');
        }
        return r.resource === undefined ? null : r.resource;
      } catch (e) {
        // 404 of the item (not of its container or database: substatus 1003).
        if (e instanceof ResourceError && e.status === 404 && !(e.cause && e.cause.substatus === 1003)) return null;
        throw e;
      }
    }

    async get(key) {
      const fields = this.keyFields();
      checkKey('table key', key, fields);
      const [id, pk] = ids(fields, key);
      const doc = await this.read(this.container('get'), 'get', id, pk);
      return doc === null || isTombstone(doc) ? null : (doc.item ?? null);
    }

    async put(item) {
      const fields = this.keyFields();
      checkKey('table item', item, fields);
      const [id, pk] = ids(fields, item);
      const container = this.container('put');
      const current = await this.read(container, 'put', id, pk);
      const live = current !== null && !isTombstone(current);
      const key = Object.fromEntries(fields.map((f) => [f, item[f]]));
      const doc = { id, pk, key: plain(key), item: plain(item), old: live ? (current.item ?? null) : null, op: live ? 'modify' : 'insert' };
      await this.call('put', () => container.items.upsert(doc));
      return null;
    }

    async delete(key) {
      const fields = this.keyFields();
      checkKey('table key', key, fields);
      const [id, pk] = ids(fields, key);
      const container = this.container('delete');
      const current = await this.read(container, 'delete', id, pk);
      if (current === null || isTombstone(current)) return null;
      const k = current.key || plain(Object.fromEntries(fields.map((f) => [f, key[f]])));
      const tombstone = { id, pk, key: k, item: null, old: current.item ?? null, op: 'remove', deleted: true, ttl: TOMBSTONE_TTL };
      await this.call('delete', () => container.items.upsert(tombstone));
      return null;
    }

    async collect(op, iterator, limit) {
      const out = [];
      await this.call(op, async () => {
        for await (const page of iterator.getAsyncIterator()) {
          for (const doc of page.resources || []) {
            if (isTombstone(doc)) continue;
            out.push(doc.item ?? null);
            if (limit !== null && out.length >= limit) return;
          }
        }
      });
      return out;
    }

    async query(key, limit = null) {
      const fields = this.keyFields();
      checkKey('query key', key, fields.slice(0, 1));
      const lim = checkLimit(limit);
      const pk = keyText(key[fields[0]]);
      const container = this.container('query');
      const spec = {
        query: 'SELECT * FROM c WHERE c.pk = @pk AND NOT IS_DEFINED(c.deleted) ORDER BY c.id',
        parameters: [{ name: '@pk', value: pk }],
      };
      return this.collect('query', container.items.query(spec, { partitionKey: pk, maxItemCount: Math.min(lim || 1000, 1000) }), lim);
    }

    async scan(limit = null) {
      const lim = checkLimit(limit);
      const container = this.container('scan');
      const spec = 'SELECT * FROM c WHERE NOT IS_DEFINED(c.deleted)';
      return this.collect('scan', container.items.query(spec, { maxItemCount: Math.min(lim || 1000, 1000) }), lim);
    }
  }
  TableClient.TYPE = 'table';
  TableClient.SERVICE = 'cosmos';
  TableClient.NATIVE = 'container';
  return TableClient;
}

// ----------------------------------------------------------------------------- change feed

// System properties of every document (and the change feed's `_lsn`), and the TTL setting.
const SYSTEM = new Set(['ttl', '_rid', '_self', '_etag', '_attachments', '_ts', '_lsn']);

// One change feed document of table `table` -> the neutral `table` event.
function tableEvent(doc, table) {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new core.EventError(`a Cosmos DB change feed document must be an object, got ${Array.isArray(doc) ? 'array' : typeof doc}`);
  }
  if (isTombstone(doc)) {
    return { type: 'table', table, action: 'remove', key: doc.key || {}, old: doc.old ?? null, new: null };
  }
  if ((doc.op === 'insert' || doc.op === 'modify') && 'item' in doc) {
    return { type: 'table', table, action: doc.op, key: doc.key || {}, old: doc.op === 'modify' ? (doc.old ?? null) : null, new: doc.item };
  }
  // Written by something else than Nimbus: its own fields are the item.
  const item = Object.fromEntries(Object.entries(doc).filter(([k]) => !SYSTEM.has(k)));
  return { type: 'table', table, action: 'modify', key: { id: doc.id }, old: null, new: item };
}

module.exports = { TOMBSTONE_TTL, EMPTY_KEY, keyText, ids, makeService, isTombstone, tableClientClass, tableEvent };
