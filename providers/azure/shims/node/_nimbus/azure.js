'use strict';
// Azure Functions (Node.js programming model v4) adapters of the Nimbus Node.js shim.
//
// The generated index.js registers each trigger with @azure/functions and calls one adapter:
//
//   const { app } = require('@azure/functions');
//   const nimbus = require('./_nimbus/azure.js');
//   app.http('place-order', { methods: ['POST'], route: 'orders/{id}', authLevel: 'anonymous',
//     handler: (req, ctx) => nimbus.http(req, ctx, 'orders/place.js:handler') });
//
// Adapters (input, context, target?): http (HttpRequest -> HttpResponseInit), queue (Storage
// Queue item), serviceBus (one message or an array; topic or queue per function.json triggers),
// timer (Timer), blob (blob trigger: created), eventGrid (Microsoft.Storage.BlobCreated /
// BlobDeleted), cosmosDB (the Cosmos DB trigger's documents, the change feed of a table's
// container: one handler call per document, in order, a tombstone as `remove`;
// _nimbus/azure_cosmos.js). `target` is `file:export` (default: function.json's handler); `context` is the
// InvocationContext (invocationId -> context.requestId, triggerMetadata -> message ids);
// `options` ({resource} for queue/serviceBus/blob/eventGrid/cosmosDB, {schedule} for timer) names the
// neutral resource/schedule, since Azure's payloads do not name their queue, topic or container.
// No dependency on @azure/functions: inputs are used through their documented properties.

const core = require('./core.js');
const azureResources = require('./azure_resources.js'); // registers the "azure" resource client factory
const azureCosmos = require('./azure_cosmos.js');

const PROVIDER = 'azure';

function fnFor(target) {
  return core.getFunction({ target: target || undefined, provider: PROVIDER });
}

function ctxFor(fn, context) {
  return fn.context(context && context.invocationId);
}

function meta(context) {
  return (context && context.triggerMetadata) || {};
}

// ---------------------------------------------------------------------------- HTTP

function routePrefix(config) {
  const az = config.azure || {};
  const p = 'route_prefix' in az ? az.route_prefix : 'api';
  return String(p || '').replace(/^\/+|\/+$/g, '');
}

function headerEntries(h) {
  if (!h) return [];
  if (typeof h.entries === 'function') return Array.from(h.entries());
  return Object.entries(h);
}

async function rawBody(request) {
  if (typeof request.arrayBuffer === 'function') {
    try { return Buffer.from(await request.arrayBuffer()); } catch { /* fall back to text() */ }
  }
  if (typeof request.text === 'function') return Buffer.from(await request.text(), 'utf8');
  return Buffer.alloc(0);
}

async function httpEvent(request, config) {
  const u = new URL(request.url || '/', 'http://localhost');
  let raw = u.pathname || '/';
  const prefix = routePrefix(config);
  if (prefix && (raw === `/${prefix}` || raw.startsWith(`/${prefix}/`))) raw = raw.slice(prefix.length + 1) || '/';
  let p = raw;
  try { p = decodeURIComponent(raw); } catch { /* keep raw */ }
  const method = String(request.method || 'GET').toUpperCase();
  const headers = core.joinHeaders(headerEntries(request.headers));
  const query = u.search ? core.queryFromString(u.search.slice(1))
    : core.joinQuery(request.query && typeof request.query.entries === 'function' ? request.query.entries() : []);
  // The shim matches the route itself, the neutral way (most specific first, each segment
  // decoded on its own): the host orders an app's routes by function name, not precedence.
  const [route, matched] = core.matchRoute(config.triggers, method, raw);
  const given = route == null
    ? Object.fromEntries(Object.entries(request.params || {}).map(([k, v]) => [k, String(v)])) : {};
  const [body, isB64] = core.bodyOf(await rawBody(request));
  return {
    type: 'http',
    method,
    path: p,
    route,
    path_params: Object.keys(given).length ? given : matched,
    query,
    headers,
    body,
    is_base64: isB64,
    source_ip: core.firstIp(headers['x-forwarded-for']) || core.firstIp(headers['client-ip']),
  };
}

function httpResponse(res) {
  const body = core.httpBodyBuffer(res);
  return { status: res.status, headers: core.headerPairs(res.headers), body: res.is_base64 ? body : body.toString('utf8') };
}

async function http(request, context, target) {
  const fn = await fnFor(target);
  const event = await httpEvent(request, fn.config);
  if (core.unrouted(event, fn.config)) return httpResponse(core.NOT_FOUND);
  return httpResponse(core.normalizeHttp(await fn.invoke(event, ctxFor(fn, context))));
}

// ---------------------------------------------------------------------------- queues & topics

async function runBatch(fn, event, context) {
  const failed = core.normalizeBatch(await fn.invoke(event, ctxFor(fn, context)), event);
  if (failed.length) throw new core.BatchItemFailure(failed); // no per-message settlement through the binding
}

// the neutral name passed by the generated code (options.resource), when it names a resource of `types`
function named(config, resource, types) {
  const spec = resource ? (config.resources || {})[resource] : null;
  return spec && types.includes(spec.type) ? [resource, spec.type] : null;
}

function queueEvent(item, context, config, resource) {
  const m = meta(context);
  const [source] = named(config, resource, ['queue']) || core.resolveResource(config, ['queue'], [], resource || null);
  const rc = parseInt(m.dequeueCount, 10);
  return {
    type: 'queue',
    source,
    // A message sent with attributes by the Nimbus queue client is an envelope (azure_resources.js).
    messages: [(([body, attributes]) => ({ id: String(m.id || ''), body, attributes, receive_count: Number.isNaN(rc) ? 1 : rc }))(
      azureResources.unwrapEnvelope(core.textOf(item)))],
  };
}

async function queue(item, context, target, options = {}) {
  const fn = await fnFor(target);
  await runBatch(fn, queueEvent(item, context, fn.config, options.resource), context);
}

function serviceBusEvent(messages, context, config, resource) {
  const m = meta(context);
  const many = Array.isArray(messages);
  const list = many ? messages : [messages];
  const [name, type] = named(config, resource, ['topic', 'queue']) ||
    core.resolveResource(config, ['topic', 'queue'], [], resource || null);
  const pick = (single, arr, i) => (many ? (m[arr] || [])[i] : m[single]);
  return {
    type,
    source: name,
    messages: list.map((body, i) => {
      const props = pick('applicationProperties', 'applicationPropertiesArray', i) ||
        pick('userProperties', 'userPropertiesArray', i) || {};
      const out = {
        id: String(pick('messageId', 'messageIdArray', i) || ''),
        body: core.textOf(body),
        attributes: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, String(v)])),
      };
      if (type === 'queue') {
        const rc = parseInt(pick('deliveryCount', 'deliveryCountArray', i), 10);
        out.receive_count = Number.isNaN(rc) ? 1 : rc;
      }
      return out;
    }),
  };
}

async function serviceBus(messages, context, target, options = {}) {
  const fn = await fnFor(target);
  await runBatch(fn, serviceBusEvent(messages, context, fn.config, options.resource), context);
}

// ---------------------------------------------------------------------------- timer

function timerEvent(_timer, config, schedule) {
  const now = new Date();
  now.setUTCMilliseconds(0);
  const names = (config.triggers || []).filter((t) => t && t.type === 'schedule').map((t) => t.name);
  const name = schedule && names.includes(schedule) ? schedule : core.resolveSchedule(config, [schedule], schedule || null);
  return { type: 'schedule', name, time: core.rfc3339(now) };
}

async function timer(t, context, target, options = {}) {
  const fn = await fnFor(target);
  await fn.invoke(timerEvent(t, fn.config, options.schedule), ctxFor(fn, context));
}

// ---------------------------------------------------------------------------- blobs

function bucketName(config, container, resource) {
  const n = named(config, resource, ['bucket']);
  if (n) return n[0];
  return core.resolveResource(config, ['bucket'], [container], container || null)[0];
}

function blobEvent(blobData, context, config, resource) {
  const m = meta(context);
  const full = String(m.blobTrigger || m.name || '');
  const i = full.indexOf('/');
  const container = i >= 0 ? full.slice(0, i) : full;
  const key = i >= 0 ? full.slice(i + 1) : '';
  const props = m.properties || {};
  let size = props.length != null ? props.length : props.contentLength;
  if (size == null && blobData != null && (core.isBytes(blobData) || typeof blobData === 'string')) {
    size = core.isBytes(blobData) ? core.toBuffer(blobData).length : Buffer.byteLength(blobData);
  }
  return { type: 'bucket', bucket: bucketName(config, container, resource), key, size: size == null ? null : Number(size), action: 'created' };
}

async function blob(blobData, context, target, options = {}) {
  const fn = await fnFor(target);
  await fn.invoke(blobEvent(blobData, context, fn.config, options.resource), ctxFor(fn, context));
}

const BLOB_EVENTS = { 'Microsoft.Storage.BlobCreated': 'created', 'Microsoft.Storage.BlobDeleted': 'deleted' };

function eventGridEvent(ev, config, resource) {
  const action = BLOB_EVENTS[ev.eventType];
  if (!action) throw new core.EventError(`unsupported Event Grid event ${JSON.stringify(ev.eventType)} (Nimbus handles BlobCreated and BlobDeleted)`);
  const subject = String(ev.subject || '');
  let container = ''; let key = '';
  if (subject.includes('/containers/')) {
    const rest = subject.split('/containers/').slice(1).join('/containers/');
    const j = rest.indexOf('/blobs/');
    container = j >= 0 ? rest.slice(0, j) : rest;
    key = j >= 0 ? rest.slice(j + 7) : '';
  }
  const size = action === 'created' ? (ev.data || {}).contentLength : null;
  return { type: 'bucket', bucket: bucketName(config, container, resource), key, size: size == null ? null : Number(size), action };
}

async function eventGrid(ev, context, target, options = {}) {
  const fn = await fnFor(target);
  await fn.invoke(eventGridEvent(ev, fn.config, options.resource), ctxFor(fn, context));
}

// ---------------------------------------------------------------------------- tables (Cosmos DB change feed)

const ALL_TABLE_EVENTS = ['insert', 'modify', 'remove'];

// The actions the function's `table` triggers on `table` ask for.
function tableEvents(config, table) {
  const wanted = new Set();
  for (const t of config.triggers || []) {
    if (t && t.type === 'table' && (t.resource == null || t.resource === table)) (t.events || ALL_TABLE_EVENTS).forEach((e) => wanted.add(e));
  }
  return wanted.size ? wanted : new Set(ALL_TABLE_EVENTS);
}

// The neutral events of a Cosmos DB trigger's documents, those the triggers ask for.
function cosmosEvents(documents, config, resource) {
  const [table] = named(config, resource, ['table']) || core.resolveResource(config, ['table'], [], resource || null);
  const wanted = tableEvents(config, table);
  if (documents == null) return [];
  const docs = Array.isArray(documents) ? documents : [documents];
  return docs
    .map((d) => azureCosmos.tableEvent(typeof d === 'string' ? JSON.parse(d) : d, table))
    .filter((e) => wanted.has(e.action));
}

// A Cosmos DB trigger invocation: the handler once per event, in order; the first failure fails
// the invocation (the host then retries the batch when a retry policy is set).
async function cosmosDB(documents, context, target, options = {}) {
  const fn = await fnFor(target);
  for (const event of cosmosEvents(documents, fn.config, options.resource)) {
    await fn.invoke(event, ctxFor(fn, context));
  }
}

module.exports = {
  PROVIDER, http, queue, serviceBus, timer, blob, eventGrid, cosmosDB,
  httpEvent, httpResponse, queueEvent, serviceBusEvent, timerEvent, blobEvent, eventGridEvent, cosmosEvents,
};
