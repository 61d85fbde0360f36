'use strict';
// Nimbus local resource clients (Node.js): `context.resources[name]` in the local runtime.
//
// Every method is one request to the local runtime over the worker's protocol pipes: the worker
// sends {"rpc": n, "resource", "op", "args"} on fd 4 and gets back {"rpc": n, "ok": true, "result"}
// or {"rpc": n, "ok": false, "error": {"type", "message"}} on fd 3 (the worker module's
// `rpc(resource, op, args)` does that and returns a Promise of the result).
//
// The clients are written against an injectable transport `call(resource, op, args)` (returns the
// result or a Promise of it; throws/rejects on failure) so that they can be used and tested without
// a runtime; `makeClient(name, spec, call)` builds one. On require this module registers the factory
// of provider "local" with core.registerResourceFactory; its transport is the local worker's `rpc`,
// looked up at call time (`require('./local_worker.js').rpc`), so require order does not matter.
//
// Ops (args) -> result:
//   table:  get {key} -> item|null; put {item}; delete {key}; query {key, limit} -> [item]; scan {limit} -> [item]
//   queue:  send {body, attributes, delay_seconds} -> message id
//   topic:  publish {body, attributes} -> message id
//   bucket: get {key} -> {data_b64, content_type}|null; put {key, data_b64, content_type}; delete {key};
//           list {prefix} -> [key]
// See docs/function-contract.md, "Resource clients".

const core = require('./core.js');
// argument checks shared by every provider's clients
const { checkKey, checkLimit, checkBody, checkAttributes, checkDelaySeconds, checkBucketKey, checkBucketData, checkContentType, checkPrefix } = require('./args.js');

const PROVIDER = 'local';

// The error every resource client throws; defined once in the shared core.
const { ResourceError } = core;

// A reply frame {"ok": true, "result"} -> the result; {"ok": false, "error"} -> throws ResourceError.
function resultOf(reply, resource = null, op = null) {
  if (!reply || typeof reply !== 'object' || !('ok' in reply)) {
    throw new ResourceError(`malformed reply from the local runtime: ${JSON.stringify(reply)}`, 'ProtocolError', resource, op);
  }
  if (reply.ok === true) return reply.result === undefined ? null : reply.result;
  const err = reply.error && typeof reply.error === 'object' ? reply.error : { message: reply.error };
  throw new ResourceError(err.message, err.type || 'ResourceError', resource, op);
}

// An error thrown by a transport -> the error the handler sees. A shim error (core.NimbusError: this
// module's ResourceError, the worker's own ResourceError, or a core class such as ResourceAccessError
// that the runtime named) passes unchanged, with `resource`/`op` (and `code` = `type`) filled in when
// missing; another error that carries the runtime's error (`.error = {type, message}`, or a string
// `.type`) becomes a ResourceError; anything else gives null and passes as it is.
function asResourceError(e, resource, op) {
  if (e instanceof core.NimbusError) {
    if (e.resource == null) { e.resource = resource; e.op = op; }
    if (e.code === undefined && typeof e.type === 'string') e.code = e.type;
    return e;
  }
  if (!e || typeof e !== 'object') return null;
  const err = e.error;
  if (err && typeof err === 'object' && ('type' in err || 'message' in err)) {
    return new ResourceError(err.message, err.type || 'ResourceError', resource, op, { cause: e });
  }
  if (typeof e.type === 'string' && e.type) {
    return new ResourceError(e.message, e.type, resource, op, { cause: e });
  }
  return null;
}

// ---------------------------------------------------------------------------- clients

class Client {
  constructor(name, spec, call) {
    if (typeof call !== 'function') throw new TypeError('call must be a function call(resource, op, args)');
    this.name = name;
    this.spec = spec && typeof spec === 'object' ? spec : {};
    this.call = call;
  }

  async rpc(op, args) {
    try {
      return await this.call(this.name, op, args);
    } catch (e) {
      const err = asResourceError(e, this.name, op);
      throw err || e;
    }
  }
}

class TableClient extends Client {
  keyFields() {
    const key = this.spec.key;
    return Array.isArray(key) && key.every((k) => typeof k === 'string') ? key : [];
  }

  async get(key) {
    checkKey('table key', key, this.keyFields());
    const item = await this.rpc('get', { key });
    return item === undefined ? null : item;
  }

  async put(item) {
    checkKey('table item', item, this.keyFields());
    await this.rpc('put', { item });
    return null;
  }

  async delete(key) {
    checkKey('table key', key, this.keyFields());
    await this.rpc('delete', { key });
    return null;
  }

  async query(key, limit = null) {
    checkKey('query key', key, this.keyFields().slice(0, 1));
    return (await this.rpc('query', { key, limit: checkLimit(limit) })) || [];
  }

  async scan(limit = null) {
    return (await this.rpc('scan', { limit: checkLimit(limit) })) || [];
  }
}

class QueueClient extends Client {
  async send(body, attributes = null, delaySeconds = 0) {
    const b = checkBody(body);
    const attrs = checkAttributes(attributes);
    delaySeconds = checkDelaySeconds(delaySeconds);
    return this.rpc('send', { body: b, attributes: attrs, delay_seconds: delaySeconds });
  }
}

class TopicClient extends Client {
  async publish(body, attributes = null) {
    return this.rpc('publish', { body: checkBody(body), attributes: checkAttributes(attributes) });
  }
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

class BucketClient extends Client {
  async get(key) {
    checkBucketKey(key);
    const obj = await this.rpc('get', { key });
    if (obj === null || obj === undefined) return null;
    if (!obj || typeof obj !== 'object' || typeof obj.data_b64 !== 'string') {
      throw new ResourceError(`malformed bucket get reply from the local runtime: ${JSON.stringify(obj)}`, 'ProtocolError', this.name, 'get');
    }
    if (obj.data_b64.length % 4 !== 0 || !B64.test(obj.data_b64)) {
      throw new ResourceError('bucket get reply holds invalid base64', 'ProtocolError', this.name, 'get');
    }
    return Buffer.from(obj.data_b64, 'base64');
  }

  async put(key, data, contentType = null) {
    checkBucketKey(key);
    const raw = checkBucketData(data);
    contentType = checkContentType(contentType);
    await this.rpc('put', { key, data_b64: raw.toString('base64'), content_type: contentType });
    return null;
  }

  async delete(key) {
    checkBucketKey(key);
    await this.rpc('delete', { key });
    return null;
  }

  async list(prefix = '') {
    prefix = checkPrefix(prefix);
    return (await this.rpc('list', { prefix })) || [];
  }
}

const CLIENTS = { table: TableClient, queue: QueueClient, topic: TopicClient, bucket: BucketClient };

// The neutral client of resource `name` (`spec` from function.json) over `call`.
function makeClient(name, spec, call) {
  const Cls = CLIENTS[spec && spec.type];
  return Cls ? new Cls(name, spec, call) : null;
}

// ---------------------------------------------------------------------------- the worker's transport

// Transport of the registered factory: the local worker's rpc(resource, op, args). The worker started
// as `node _nimbus/local_worker.js` is require.main, and require() of the same file returns it.
function workerRpc(resource, op, args) {
  const worker = require('./local_worker.js');
  if (typeof worker.rpc !== 'function') {
    throw new core.ResourceUnavailableError(`resource ${JSON.stringify(resource)}: this Nimbus local worker has no rpc() ` +
      'to reach the local runtime');
  }
  return worker.rpc(resource, op, args);
}

function factory(name, spec) {
  return makeClient(name, spec, workerRpc);
}

function register() {
  core.registerResourceFactory(PROVIDER, factory);
}

register();

module.exports = {
  PROVIDER, ResourceError, resultOf, makeClient, factory, register, workerRpc,
  TableClient, QueueClient, TopicClient, BucketClient,
};
