'use strict';
// Nimbus Azure resource clients (Node.js): `context.resources[name]` inside Azure Functions.
//
// table -> Cosmos DB for NoSQL (@azure/cosmos, _nimbus/azure_cosmos.js), queue -> Storage queue (@azure/storage-queue),
// topic -> Service Bus topic (@azure/service-bus), bucket -> Blob container (@azure/storage-blob).
// The libraries are the function's dependencies (providers/azure/shims/node/package.json): they are
// required from the handler's directory, where they are installed, and their clients are created
// lazily, once per process.
//
// Where the resources are: the same app settings as the Python clients (see
// _nimbus/azure_resources.py and crates/nimbus-azure/src/env.rs): NIMBUS_RESOURCE_<R>_NAME (else
// function.json `native.container|queue|topic`), NIMBUS_RESOURCE_<R>_ENDPOINT (a resource that
// already exists: its own account's endpoint or namespace, instead of the deployment's),
// NIMBUS_AZURE_{BLOB,QUEUE}_ENDPOINT,
// NIMBUS_AZURE_COSMOS_ENDPOINT and NIMBUS_AZURE_COSMOS_DATABASE, NIMBUS_AZURE_SERVICEBUS_NAMESPACE
// and AZURE_CLIENT_ID (ManagedIdentityCredential; else DefaultAzureCredential), or
// NIMBUS_AZURE_STORAGE_CONNECTION_STRING / NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING /
// NIMBUS_AZURE_COSMOS_CONNECTION_STRING (Azurite, a local Cosmos DB API server, development).
//
// Same layout as Python: a table item is a Cosmos DB document, deletes are tombstones
// (_nimbus/azure_cosmos.js); queue messages are Base64 text, with an envelope {"nimbus": 1, body, attributes} when sent with
// attributes. Failures become ResourceError (`type` AccessDenied, NotFound, BadRequest, Conflict,
// Throttled, Unavailable, Internal, NotConfigured; `status` and `azureCode` when known). On require
// this module registers the factory of provider "azure". See docs/function-contract.md.

const path = require('path');
const { createRequire } = require('module');
const core = require('./core.js');
const cosmos = require('./azure_cosmos.js');
const { checkBody, checkAttributes, checkDelaySeconds, checkBucketKey, checkBucketData, checkContentType, checkPrefix } = require('./args.js');
const { withTrace } = require('./trace.js'); // the running invocation's traceparent goes with each message

const PROVIDER = 'azure';
const ENVELOPE = 'nimbus';

class ResourceError extends core.ResourceError {
  constructor(message, type = 'ResourceError', resource = null, op = null, options = undefined, status = null, azureCode = null) {
    super(message, type, resource, op, options);
    this.status = status;
    this.azureCode = azureCode;
  }
}

// HTTP status (and Azure error code) -> neutral error type.
function errorType(status, code) {
  code = String(code || '');
  if (['AuthorizationFailure', 'AuthorizationPermissionMismatch', 'AuthenticationFailed', 'InsufficientAccountPermissions', 'Unauthorized'].includes(code)) return 'AccessDenied';
  if (code.endsWith('NotFound')) return 'NotFound';
  const s = Number(status);
  if (s === 401 || s === 403) return 'AccessDenied';
  if (s === 404) return 'NotFound';
  if (s === 409 || s === 412) return 'Conflict';
  if (s === 429) return 'Throttled';
  if (s === 502 || s === 503 || s === 504) return 'Unavailable';
  if (s >= 400 && s < 500) return 'BadRequest';
  return 'Internal';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH']);

// An error thrown by an Azure library -> ResourceError, or null when it is not one.
function fromAzure(e, resource, op) {
  if (!e || typeof e !== 'object' || e instanceof core.NimbusError) return null;
  if (e.name === 'ErrorResponse' || (typeof e.code === 'number' && typeof e.statusCode !== 'number')) { // @azure/cosmos
    const status = typeof e.code === 'number' ? e.code : null;
    const code = (e.body && e.body.code) || null;
    const msg = String(e.message || code || 'error').split('\n')[0];
    return new ResourceError(msg, errorType(status, code), resource, op, { cause: e }, status, code);
  }
  if (e.name === 'RestError' || typeof e.statusCode === 'number') {
    const status = e.statusCode;
    const code = e.code || (e.details && e.details.errorCode) || null;
    if (status === undefined && NETWORK_CODES.has(code)) return new ResourceError(e.message, 'Unavailable', resource, op, { cause: e }, null, code);
    const msg = String(e.message || code || 'error').split('\n')[0];
    return new ResourceError(msg, errorType(status, code), resource, op, { cause: e }, status ?? null, code);
  }
  if (e.name === 'CredentialUnavailableError' || e.name === 'AuthenticationError') {
    return new ResourceError(e.message, 'AccessDenied', resource, op, { cause: e }, null, e.name);
  }
  if (e.name === 'ServiceBusError') {
    const t = { MessagingEntityNotFound: 'NotFound', UnauthorizedAccess: 'AccessDenied', ServiceBusy: 'Throttled', QuotaExceeded: 'Throttled', ServiceCommunicationProblem: 'Unavailable' }[e.code] || 'Internal';
    return new ResourceError(e.message, t, resource, op, { cause: e }, null, e.code || null);
  }
  if (NETWORK_CODES.has(e.code)) return new ResourceError(e.message, 'Unavailable', resource, op, { cause: e }, null, e.code);
  return null;
}

// NIMBUS_RESOURCE_<R>_NAME: "order-events" -> NIMBUS_RESOURCE_ORDER_EVENTS_NAME.
function envVar(resource) {
  return `NIMBUS_RESOURCE_${String(resource).toUpperCase().replace(/-/g, '_')}_NAME`;
}

// Requires an Azure library from the handler's directory (where the function's dependencies are
// installed), else from here.
function requireLibrary(name, functionConfig) {
  const file = functionConfig && functionConfig.handler && functionConfig.handler.file;
  if (file) {
    try {
      return createRequire(path.join(core.packageRoot(), file))(name);
    } catch (e) {
      if (!e || e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  try {
    return require(name);
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new core.ResourceUnavailableError(`the Nimbus Azure resource clients need ${name} (nimbus build -p azure installs it)`);
    }
    throw e;
  }
}

function credential(env, config) {
  const identity = requireLibrary('@azure/identity', config);
  return env.AZURE_CLIENT_ID ? new identity.ManagedIdentityCredential({ clientId: env.AZURE_CLIENT_ID }) : new identity.DefaultAzureCredential();
}

const services = new Map();

function makeService(kind, env, config) {
  if (kind === 'servicebus') {
    const { ServiceBusClient } = requireLibrary('@azure/service-bus', config);
    if (env.NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING) return new ServiceBusClient(env.NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING);
    if (!env.NIMBUS_AZURE_SERVICEBUS_NAMESPACE) throw Object.assign(new Error('unset'), { unset: 'NIMBUS_AZURE_SERVICEBUS_NAMESPACE' });
    return new ServiceBusClient(env.NIMBUS_AZURE_SERVICEBUS_NAMESPACE, credential(env, config));
  }
  if (kind === 'cosmos') return cosmos.makeService(env, (name) => requireLibrary(name, config), () => credential(env, config));
  const [mod, cls] = {
    blob: ['@azure/storage-blob', 'BlobServiceClient'],
    queue: ['@azure/storage-queue', 'QueueServiceClient'],
  }[kind];
  const lib = requireLibrary(mod, config);
  const conn = env.NIMBUS_AZURE_STORAGE_CONNECTION_STRING;
  const v = `NIMBUS_AZURE_${kind.toUpperCase()}_ENDPOINT`;
  if (!conn && !env[v]) throw Object.assign(new Error('unset'), { unset: v });
  if (conn) return lib[cls].fromConnectionString(conn);
  return new lib[cls](env[v], credential(env, config));
}

// The app setting that says where the service of `kind` is.
function endpointVar(kind) {
  return kind === 'servicebus' ? 'NIMBUS_AZURE_SERVICEBUS_NAMESPACE' : `NIMBUS_AZURE_${kind.toUpperCase()}_ENDPOINT`;
}

// `env` with a resource's own endpoint (NIMBUS_RESOURCE_<R>_ENDPOINT: a resource that already
// exists, in an account or namespace of its own) in place of the deployment's.
function withResourceEndpoint(kind, resource, env) {
  const own = env[`NIMBUS_RESOURCE_${resource.toUpperCase().replace(/-/g, '_')}_ENDPOINT`];
  return own ? { ...env, [endpointVar(kind)]: own } : env;
}

// The process-wide service client of `kind` (blob, queue, cosmos, servicebus).
function service(kind, env = process.env, config = null) {
  const conn = { cosmos: 'NIMBUS_AZURE_COSMOS_CONNECTION_STRING', servicebus: 'NIMBUS_AZURE_SERVICEBUS_CONNECTION_STRING' }[kind] || 'NIMBUS_AZURE_STORAGE_CONNECTION_STRING';
  const key = JSON.stringify([kind, env[conn] || null, env[endpointVar(kind)] || null]);
  let c = services.get(key);
  if (!c) {
    c = makeService(kind, env, config);
    services.set(key, c);
  }
  return c;
}

// Forget the cached service clients (tests; a changed environment).
async function resetClients() {
  for (const c of services.values()) if (c && typeof c.close === 'function') await c.close();
  services.clear();
}

const keyText = cosmos.keyText;

// A queue message's text -> [body, attributes] (the envelope of a message sent with attributes).
function unwrapEnvelope(text) {
  if (typeof text === 'string' && text.startsWith(`{"${ENVELOPE}":`)) {
    try {
      const doc = JSON.parse(text);
      const keys = Object.keys(doc).sort().join(',');
      if (doc[ENVELOPE] === 1 && keys === `attributes,body,${ENVELOPE}` && typeof doc.body === 'string' && doc.attributes && typeof doc.attributes === 'object') {
        return [doc.body, Object.fromEntries(Object.entries(doc.attributes).map(([k, v]) => [k, String(v)]))];
      }
    } catch { /* not an envelope */ }
  }
  return [text, {}];
}

class Client {
  // options: { env } (default process.env), { client } (an injected service client, for tests)
  constructor(name, spec, functionConfig = null, options = {}) {
    this.name = name;
    this.spec = spec && typeof spec === 'object' ? spec : {};
    this.config = functionConfig;
    this.env = options.env || process.env;
    this.injected = options.client || null;
    this.nativeName = null;
  }

  native(op = null) {
    if (this.nativeName) return this.nativeName;
    const v = envVar(this.name);
    let value = this.env[v];
    if (!value) {
      const fallback = (this.spec.native || {})[this.constructor.NATIVE];
      value = typeof fallback === 'string' && fallback ? fallback : null;
    }
    if (!value) {
      throw new ResourceError(`${this.constructor.TYPE} ${JSON.stringify(this.name)} has no Azure name: app setting ${v} ` +
        'is not set (nimbus deploy sets it for every resource a function uses)', 'NotConfigured', this.name, op);
    }
    this.nativeName = value;
    return value;
  }

  svc(op) {
    if (this.injected) return this.injected;
    try {
      const kind = this.constructor.SERVICE;
      return service(kind, withResourceEndpoint(kind, this.name, this.env), this.config);
    } catch (e) {
      if (e && e.unset) {
        throw new ResourceError(`${this.constructor.TYPE} ${JSON.stringify(this.name)}: app setting ${e.unset} is not set (nimbus deploy sets it)`, 'NotConfigured', this.name, op);
      }
      if (e instanceof core.NimbusError) throw e;
      throw new ResourceError(`${this.constructor.TYPE} ${JSON.stringify(this.name)}: ${e.message}`, 'NotConfigured', this.name, op, { cause: e });
    }
  }

  async call(op, fn) {
    try {
      return await fn();
    } catch (e) {
      throw fromAzure(e, this.name, op) || e;
    }
  }
}

const TableClient = cosmos.tableClientClass(Client, ResourceError);

class QueueClient extends Client {
  async send(body, attributes = null, delaySeconds = 0) {
    const b = checkBody(body);
    const attrs = withTrace(checkAttributes(attributes));
    delaySeconds = checkDelaySeconds(delaySeconds);
    const text = Object.keys(attrs).length ? JSON.stringify({ [ENVELOPE]: 1, body: b, attributes: attrs }) : b;
    const name = this.native('send');
    const queue = this.svc('send').getQueueClient(name);
    const options = delaySeconds ? { visibilityTimeout: delaySeconds } : undefined;
    const out = await this.call('send', () => queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'), options));
    return out.messageId;
  }
}
QueueClient.TYPE = 'queue';
QueueClient.SERVICE = 'queue';
QueueClient.NATIVE = 'queue';

class TopicClient extends Client {
  async publish(body, attributes = null) {
    const b = checkBody(body);
    const attrs = withTrace(checkAttributes(attributes));
    const topic = this.native('publish');
    const bus = this.svc('publish');
    const messageId = require('crypto').randomUUID();
    const message = { body: b, messageId };
    if (Object.keys(attrs).length) message.applicationProperties = attrs;
    await this.call('publish', async () => {
      const sender = bus.createSender(topic);
      try {
        await sender.sendMessages(message);
      } finally {
        await sender.close();
      }
    });
    return messageId;
  }
}
TopicClient.TYPE = 'topic';
TopicClient.SERVICE = 'servicebus';
TopicClient.NATIVE = 'topic';

class BucketClient extends Client {
  container(op) {
    const name = this.native(op);
    return this.svc(op).getContainerClient(name);
  }

  async get(key) {
    checkBucketKey(key);
    const blob = this.container('get').getBlockBlobClient(key);
    try {
      return await this.call('get', () => blob.downloadToBuffer());
    } catch (e) {
      if (e instanceof ResourceError && e.status === 404 && e.azureCode === 'BlobNotFound') return null;
      throw e;
    }
  }

  async put(key, data, contentType = null) {
    checkBucketKey(key);
    const raw = checkBucketData(data);
    contentType = checkContentType(contentType);
    const blob = this.container('put').getBlockBlobClient(key);
    const options = contentType ? { blobHTTPHeaders: { blobContentType: contentType } } : undefined;
    await this.call('put', () => blob.uploadData(raw, options));
    return null;
  }

  async delete(key) {
    checkBucketKey(key);
    const blob = this.container('delete').getBlockBlobClient(key);
    await this.call('delete', () => blob.deleteIfExists());
    return null;
  }

  async list(prefix = '') {
    prefix = checkPrefix(prefix);
    const container = this.container('list');
    const keys = [];
    await this.call('list', async () => {
      for await (const b of container.listBlobsFlat(prefix ? { prefix } : undefined)) keys.push(b.name);
    });
    return keys;
  }
}
BucketClient.TYPE = 'bucket';
BucketClient.SERVICE = 'blob';
BucketClient.NATIVE = 'container';

const CLIENTS = { table: TableClient, queue: QueueClient, topic: TopicClient, bucket: BucketClient };

// The neutral Azure client of resource `name` (`spec` from function.json).
function makeClient(name, spec, functionConfig = null, options = {}) {
  const Cls = CLIENTS[spec && spec.type];
  return Cls ? new Cls(name, spec, functionConfig, options) : null;
}

function factory(name, spec, functionConfig) {
  return makeClient(name, spec, functionConfig);
}

function register() {
  core.registerResourceFactory(PROVIDER, factory);
}

register();

module.exports = {
  PROVIDER, ResourceError, errorType, fromAzure, service, resetClients, envVar, keyText, unwrapEnvelope,
  makeClient, factory, register, TableClient, QueueClient, TopicClient, BucketClient, withResourceEndpoint,
};
