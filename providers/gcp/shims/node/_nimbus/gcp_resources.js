'use strict';
// Nimbus GCP resource clients (Node.js): `context.resources[name]` inside Cloud Functions.
//
// table -> Firestore, queue and topic -> Pub/Sub, bucket -> Cloud Storage, through Google's client
// libraries (@google-cloud/firestore, @google-cloud/pubsub, @google-cloud/storage, which
// `nimbus build -p gcp` lists in the package's package.json: providers/gcp/shims/node/package.json).
// The libraries are required and their clients created lazily, once per process, and shared by
// every resource of that service. Credentials are the runtime's (Application Default Credentials);
// the project is NIMBUS_GCP_PROJECT (set by lowering), else the libraries' own detection. The
// libraries honour Google's emulator variables: FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
// STORAGE_EMULATOR_HOST.
//
// Native names come from the function's environment, set by lowering (crates/nimbus-gcp/src/env.rs):
// NIMBUS_RESOURCE_<R>_<FIELD> with <R> the neutral name upper-cased and `-` as `_`; a non-empty string
// in the resource's function.json `native` block is the fallback.
//   table: COLLECTION and DATABASE (projects/P/databases/D)   queue, topic: TOPIC (projects/P/topics/T)
//   bucket: NAME
//
// Tables: one document per item, the whole item as its fields; the document id is the key's values'
// text (numbers in decimal), every character but A-Z a-z 0-9 - percent-encoded (UTF-8, %XX), joined
// with `,` when the table has a sort key — exactly as the Python clients do. `query` filters on the
// partition key; `query`/`scan` return items in document-id order. Queues: Pub/Sub has no delivery
// delay, so `send(..., delaySeconds > 0)` throws a BadRequest ResourceError. Buckets: `delete` of a
// missing object succeeds; `get` of one returns null.
//
// Same API and argument checks as the other providers' clients (_nimbus/args.js). Failures reported
// by Google become ResourceError with `type` one of AccessDenied, NotFound, BadRequest, Conflict,
// Throttled, Unavailable, Internal (NotConfigured for a missing environment variable), `detail`
// Google's message and `gcpCode` Google's status name (NOT_FOUND, PERMISSION_DENIED, ...). On require
// this module registers the factory of provider "gcp". See docs/function-contract.md, "Resource clients".

const core = require('./core.js');
// argument checks shared by every provider's clients
const { checkKey, checkLimit, checkBody, checkAttributes, checkDelaySeconds, checkBucketKey, checkBucketData, checkContentType, checkPrefix } = require('./args.js');
const { withTrace } = require('./trace.js'); // the running invocation's traceparent goes with each message

const PROVIDER = 'gcp';

// Google refused or failed a resource operation: the shared core ResourceError (`type` the neutral
// error type, `detail` Google's message) plus `gcpCode`, Google's status name.
class ResourceError extends core.ResourceError {
  constructor(message, type = 'ResourceError', resource = null, op = null, options = undefined, gcpCode = null) {
    super(message, type, resource, op, options);
    this.gcpCode = gcpCode;
  }
}

// ---------------------------------------------------------------------------- Google errors -> neutral

// gRPC status codes by number.
const GRPC = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const BY_STATUS = {
  PERMISSION_DENIED: 'AccessDenied', UNAUTHENTICATED: 'AccessDenied', FORBIDDEN: 'AccessDenied', UNAUTHORIZED: 'AccessDenied',
  NOT_FOUND: 'NotFound',
  INVALID_ARGUMENT: 'BadRequest', BAD_REQUEST: 'BadRequest', OUT_OF_RANGE: 'BadRequest', FAILED_PRECONDITION: 'BadRequest',
  ALREADY_EXISTS: 'Conflict', ABORTED: 'Conflict', CONFLICT: 'Conflict', PRECONDITION_FAILED: 'Conflict',
  RESOURCE_EXHAUSTED: 'Throttled', TOO_MANY_REQUESTS: 'Throttled',
  UNAVAILABLE: 'Unavailable', DEADLINE_EXCEEDED: 'Unavailable', SERVICE_UNAVAILABLE: 'Unavailable', GATEWAY_TIMEOUT: 'Unavailable',
};
const BY_HTTP = { 400: 'BadRequest', 401: 'AccessDenied', 403: 'AccessDenied', 404: 'NotFound', 409: 'Conflict', 412: 'Conflict', 429: 'Throttled', 503: 'Unavailable', 504: 'Unavailable' };
const HTTP_NAMES = { 400: 'BAD_REQUEST', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'CONFLICT', 412: 'PRECONDITION_FAILED', 429: 'TOO_MANY_REQUESTS', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'GATEWAY_TIMEOUT' };

// Google's status name and HTTP status -> neutral error type.
function errorType(status, http) {
  const t = BY_STATUS[String(status || '').toUpperCase()];
  if (t) return t;
  const s = Number(http);
  if (BY_HTTP[s]) return BY_HTTP[s];
  if (s >= 400 && s < 500) return 'BadRequest';
  return 'Internal';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH']);

// An error thrown by a Google library -> ResourceError, or null when it is not one. `http` says
// whether the library speaks HTTP (Cloud Storage: `code` is the HTTP status) or gRPC (`code` is
// the gRPC status).
function fromGoogle(e, resource, op, http) {
  if (!e || typeof e !== 'object' || e instanceof core.NimbusError) return null;
  const msg = e.details || e.message || String(e);
  if (http && typeof e.code === 'number' && e.code >= 400) {
    const name = HTTP_NAMES[e.code] || `HTTP_${e.code}`;
    return new ResourceError(msg, errorType(name, e.code), resource, op, { cause: e }, name);
  }
  if (!http && typeof e.code === 'number' && GRPC[e.code]) {
    const name = GRPC[e.code];
    return new ResourceError(msg, errorType(name), resource, op, { cause: e }, name);
  }
  if (NETWORK_CODES.has(e.code)) return new ResourceError(msg, 'Unavailable', resource, op, { cause: e }, e.code);
  if (/credentials|authenticat/i.test(String(e.message))) {
    return new ResourceError(msg, 'AccessDenied', resource, op, { cause: e }, 'UNAUTHENTICATED');
  }
  return null;
}

// ---------------------------------------------------------------------------- library clients (per process)

const LIBRARIES = { firestore: '@google-cloud/firestore', pubsub: '@google-cloud/pubsub', storage: '@google-cloud/storage' };
const clients = new Map();

// The project the function runs in (NIMBUS_GCP_PROJECT), else undefined (the library decides).
function project() {
  return process.env.NIMBUS_GCP_PROJECT || process.env.GOOGLE_CLOUD_PROJECT || undefined;
}

function make(service, database) {
  const lib = require(LIBRARIES[service]);
  if (service === 'firestore') {
    return new lib.Firestore({ projectId: project(), databaseId: database || '(default)', ignoreUndefinedProperties: true });
  }
  if (service === 'pubsub') return new lib.PubSub({ projectId: project() });
  const emulator = process.env.STORAGE_EMULATOR_HOST;
  if (!emulator) return new lib.Storage({ projectId: project() });
  // STORAGE_EMULATOR_HOST is the emulator's address (as the Python library and gcloud take it); the
  // Node library reads the variable as its JSON API base URL: give it both, the address as the
  // upload endpoint.
  const host = emulator.replace(/\/+$/, '').replace(/\/storage\/v1$/, '');
  process.env.STORAGE_EMULATOR_HOST = `${host}/storage/v1`;
  try {
    return new lib.Storage({ projectId: project() || 'nimbus-emulator', apiEndpoint: host });
  } finally {
    process.env.STORAGE_EMULATOR_HOST = emulator;
  }
}

// The process-wide client of `service` (firestore per database, pubsub, storage), created on first use.
function gcpClient(service, database = null) {
  const key = `${service}/${database || ''}`;
  let c = clients.get(key);
  if (!c) {
    try {
      c = make(service, database);
    } catch (e) {
      if (e && e.code === 'MODULE_NOT_FOUND') {
        throw new core.ResourceUnavailableError(`the Nimbus GCP resource clients need ${LIBRARIES[service]} ` +
          `(nimbus build -p gcp lists it in the package's package.json): ${e.message.split('\n')[0]}`);
      }
      throw e;
    }
    clients.set(key, c);
  }
  return c;
}

// Forget (and close) the cached clients (tests; a changed environment).
async function resetClients() {
  const all = [...clients.values()];
  clients.clear();
  for (const c of all) {
    try {
      if (typeof c.terminate === 'function') await c.terminate();
      else if (typeof c.close === 'function') await c.close();
    } catch { /* closing is best effort */ }
  }
}

// ---------------------------------------------------------------------------- native names and keys

// NIMBUS_RESOURCE_<R>_<FIELD>: ("order-events", "TOPIC") -> NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC.
function envVar(resource, field) {
  return `NIMBUS_RESOURCE_${String(resource).toUpperCase().replace(/-/g, '_')}_${field}`;
}

function keyText(v, field) {
  let text;
  if (typeof v === 'string') text = v;
  else if (typeof v === 'number' && Number.isFinite(v)) text = String(v);
  else if (typeof v === 'bigint') text = v.toString();
  else throw new TypeError(`table key field ${JSON.stringify(field)} must be a string or a number, got ${v === null ? 'null' : typeof v}`);
  if (text === '') throw new RangeError(`table key field ${JSON.stringify(field)} must not be empty`);
  let out = '';
  for (const ch of text) {
    if (/^[A-Za-z0-9-]$/.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

// The Firestore document id of the item with `key` (see the header).
function documentId(key, fields) {
  const names = fields && fields.length ? fields : Object.keys(key).sort();
  return names.map((f) => keyText(key[f], f)).join(',');
}

// Firestore values -> plain JS (Buffers stay Buffers; Timestamps become RFC 3339 strings).
function plain(v) {
  if (v === null || typeof v !== 'object') return v;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v.toDate === 'function' && 'nanoseconds' in v) return v.toDate().toISOString();
  if ('latitude' in v && 'longitude' in v && typeof v.isEqual === 'function') return { latitude: v.latitude, longitude: v.longitude };
  if (typeof v.path === 'string' && typeof v.firestore === 'object') return v.path;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

// ---------------------------------------------------------------------------- clients

class Client {
  // options: { env } (default process.env), { client } (an injected library client, for tests)
  constructor(name, spec, options = {}) {
    this.name = name;
    this.spec = spec && typeof spec === 'object' ? spec : {};
    this.env = options.env || null;
    this.injected = options.client || null;
    this.natives = {};
  }

  // A native name of the resource (env var, else function.json `native`).
  native(field = this.constructor.FIELDS[0], op = null) {
    if (this.natives[field]) return this.natives[field];
    const v = envVar(this.name, field);
    let value = (this.env || process.env)[v];
    if (!value) {
      const fallback = (this.spec.native || {})[field.toLowerCase()];
      value = typeof fallback === 'string' && fallback ? fallback : null;
    }
    if (!value) {
      throw new ResourceError(`${this.constructor.TYPE} ${JSON.stringify(this.name)} has no Google Cloud ${field.toLowerCase()}: ` +
        `environment variable ${v} is not set (nimbus deploy sets it for every resource a function uses)`,
      'NotConfigured', this.name, op);
    }
    this.natives[field] = value;
    return value;
  }

  client(service, database = null) {
    return this.injected || gcpClient(service, database);
  }

  async call(op, fn, http = false) {
    try {
      return await fn();
    } catch (e) {
      throw fromGoogle(e, this.name, op, http) || e;
    }
  }
}

class TableClient extends Client {
  keyFields() {
    const key = this.spec.key;
    return Array.isArray(key) && key.every((k) => typeof k === 'string') ? key : [];
  }

  collection(op) {
    const database = this.native('DATABASE', op).split('/').pop();
    return this.client('firestore', database).collection(this.native('COLLECTION', op));
  }

  doc(op, key) {
    return this.collection(op).doc(documentId(key, this.keyFields()));
  }

  async get(key) {
    checkKey('table key', key, this.keyFields());
    const doc = this.doc('get', key);
    const snap = await this.call('get', () => doc.get());
    return snap.exists ? plain(snap.data()) : null;
  }

  async put(item) {
    checkKey('table item', item, this.keyFields());
    const doc = this.doc('put', item);
    await this.call('put', () => doc.set(item));
    return null;
  }

  async delete(key) {
    checkKey('table key', key, this.keyFields());
    const doc = this.doc('delete', key);
    await this.call('delete', () => doc.delete());
    return null;
  }

  async items(op, query, limit) {
    const q = limit !== null ? query.limit(limit) : query;
    const snap = await this.call(op, () => q.get());
    return snap.docs.map((d) => plain(d.data()));
  }

  async query(key, limit = null) {
    const fields = this.keyFields();
    checkKey('query key', key, fields.slice(0, 1));
    const lim = checkLimit(limit);
    let pk;
    if (fields.length) pk = fields[0];
    else if (Object.keys(key).length === 1) pk = Object.keys(key)[0];
    else throw new RangeError(`query key must hold only the partition key (table ${JSON.stringify(this.name)} declares no key)`);
    return this.items('query', this.collection('query').where(pk, '==', key[pk]), lim);
  }

  async scan(limit = null) {
    const lim = checkLimit(limit);
    return this.items('scan', this.collection('scan'), lim);
  }
}
TableClient.TYPE = 'table';
TableClient.FIELDS = ['COLLECTION', 'DATABASE'];

// One publish, sent at once (no client-side batching).
async function publish(client, op, body, attrs) {
  const topic = client.client('pubsub').topic(client.native('TOPIC', op), { batching: { maxMessages: 1, maxMilliseconds: 0 } });
  return client.call(op, () => topic.publishMessage({ data: Buffer.from(body, 'utf8'), attributes: attrs }));
}

class QueueClient extends Client {
  async send(body, attributes = null, delaySeconds = 0) {
    const b = checkBody(body);
    const attrs = withTrace(checkAttributes(attributes));
    delaySeconds = checkDelaySeconds(delaySeconds);
    if (delaySeconds) {
      throw new ResourceError(`Pub/Sub cannot delay a message (delaySeconds=${delaySeconds}): send it without a delay`,
        'BadRequest', this.name, 'send', undefined, 'INVALID_ARGUMENT');
    }
    return publish(this, 'send', b, attrs);
  }
}
QueueClient.TYPE = 'queue';
QueueClient.FIELDS = ['TOPIC'];

class TopicClient extends Client {
  async publish(body, attributes = null) {
    return publish(this, 'publish', checkBody(body), withTrace(checkAttributes(attributes)));
  }
}
TopicClient.TYPE = 'topic';
TopicClient.FIELDS = ['TOPIC'];

class BucketClient extends Client {
  bucket(op) {
    return this.client('storage').bucket(this.native('NAME', op));
  }

  // Whether NotFound `e` is about the object (the bucket exists), not the bucket.
  async missingObject(op, bucket, e) {
    if (!(e instanceof ResourceError) || e.type !== 'NotFound') return false;
    const [exists] = await this.call(op, () => bucket.exists(), true);
    if (exists) return true;
    throw new ResourceError(`bucket ${JSON.stringify(bucket.name)} does not exist`, 'NotFound', this.name, op, { cause: e }, 'NOT_FOUND');
  }

  async get(key) {
    checkBucketKey(key);
    const bucket = this.bucket('get');
    try {
      const [data] = await this.call('get', () => bucket.file(key).download(), true);
      return Buffer.from(data);
    } catch (e) {
      if (await this.missingObject('get', bucket, e)) return null;
      throw e;
    }
  }

  async put(key, data, contentType = null) {
    checkBucketKey(key);
    const raw = checkBucketData(data);
    contentType = checkContentType(contentType);
    const bucket = this.bucket('put');
    await this.call('put', () => bucket.file(key).save(raw, { resumable: false, contentType: contentType || 'application/octet-stream' }), true);
    return null;
  }

  async delete(key) {
    checkBucketKey(key);
    const bucket = this.bucket('delete');
    try {
      await this.call('delete', () => bucket.file(key).delete(), true);
    } catch (e) {
      if (!(await this.missingObject('delete', bucket, e))) throw e;
    }
    return null;
  }

  async list(prefix = '') {
    prefix = checkPrefix(prefix);
    const bucket = this.bucket('list');
    const [files] = await this.call('list', () => bucket.getFiles({ prefix, autoPaginate: true }), true);
    return files.map((f) => f.name).sort();
  }
}
BucketClient.TYPE = 'bucket';
BucketClient.FIELDS = ['NAME'];

const CLIENTS = { table: TableClient, queue: QueueClient, topic: TopicClient, bucket: BucketClient };

// The neutral GCP client of resource `name` (`spec` from function.json).
function makeClient(name, spec, options = {}) {
  const Cls = CLIENTS[spec && spec.type];
  return Cls ? new Cls(name, spec, options) : null;
}

function factory(name, spec) {
  return makeClient(name, spec);
}

function register() {
  core.registerResourceFactory(PROVIDER, factory);
}

register();

module.exports = {
  PROVIDER, ResourceError, errorType, fromGoogle, gcpClient, resetClients, envVar, documentId, makeClient, factory,
  register, TableClient, QueueClient, TopicClient, BucketClient,
};
