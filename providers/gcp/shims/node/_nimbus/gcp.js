'use strict';
// Google Cloud Functions (gen2) adapter of the Nimbus Node.js shim.
//
// Entry point: `_nimbus_gcp.js` (the package.json "main") exports `nimbus_entry`, which serves
// both functions-framework signature types: `(req, res)` for `http` and `(cloudEvent)` for
// `cloudevent` (its arity is 1 so the framework never treats it as callback-style). When
// @google-cloud/functions-framework can be required, `nimbus_entry` is also registered with
// the signature type from function.json (`"gcp": {"signature": "http" | "cloudevent"}`), which
// takes precedence over --signature-type / FUNCTION_SIGNATURE_TYPE.
//
// Signature: `http` when the function has an http, schedule or queue trigger (or none), else
// `cloudevent`. Under `http` a request is, in this order: a CloudEvent (binary or structured mode,
// when the function has an Eventarc trigger: topic, bucket or table), a Pub/Sub push delivery (when
// it has a queue trigger: the queue's subscription pushes {message, subscription, deliveryAttempt};
// 2xx acknowledges, anything else has Pub/Sub redeliver), a Cloud Scheduler call (when it has a
// schedule trigger), else an HTTP request.
//
// Eventarc cannot filter objects by name: a bucket event whose key matches none of the function's
// bucket triggers (prefix/suffix, and the action in `events`) is acknowledged without calling the
// handler, so a function writing into the bucket that triggers it does not trigger itself.
//
// CORS: API Gateway has none, so the shim answers preflights (the handler never sees one) and puts
// the function's policy on responses (gcp_cors.js).
//
// Native names: lowering sets NIMBUS_RESOURCE_<R>_{COLLECTION,DATABASE,TOPIC,SUBSCRIPTION,NAME} and
// NIMBUS_SCHEDULE_<T>_JOB (crates/nimbus-gcp/src/env.rs); they are merged into function.json's
// `native` blocks so that events map to neutral names exactly.

const core = require('./core.js');
const cors = require('./gcp_cors.js');
require('./gcp_resources.js'); // registers the "gcp" resource client factory

const PROVIDER = 'gcp';

function init() {
  return core.getFunction({ provider: PROVIDER });
}

function triggerTypes(config) {
  return new Set((config.triggers || []).filter(Boolean).map((t) => t.type));
}

function signature(config) {
  const sig = String(((config.gcp || {}).signature) || '').toLowerCase();
  if (sig === 'http' || sig === 'cloudevent') return sig;
  // like the packager: http with an http, schedule or queue trigger (or none), else cloudevent
  const types = triggerTypes(config);
  return !types.size || types.has('http') || types.has('schedule') || types.has('queue') ? 'http' : 'cloudevent';
}

// ---------------------------------------------------------------------------- native names

const RESOURCE_FIELDS = ['COLLECTION', 'DATABASE', 'TOPIC', 'SUBSCRIPTION', 'NAME'];

// function.json with the deployment's native names merged into `native` (a copy):
// NIMBUS_RESOURCE_<R>_{COLLECTION,DATABASE,TOPIC,SUBSCRIPTION,NAME} and NIMBUS_SCHEDULE_<T>_JOB
// (crates/nimbus-gcp/src/env.rs); see core.withEnvNatives.
function withEnvNatives(config, env = process.env) {
  return core.withEnvNatives(config, RESOURCE_FIELDS, 'JOB', env);
}

function loadFramework() {
  const tries = [
    () => require('@google-cloud/functions-framework'),
    // the framework's own copy when it runs us as its main module (the registry must be the same instance)
    () => require.main && require.main.require('@google-cloud/functions-framework'),
  ];
  for (const t of tries) {
    try {
      const ff = t();
      if (ff && typeof ff.http === 'function' && typeof ff.cloudEvent === 'function') return ff;
    } catch { /* not available */ }
  }
  return null;
}

// Register `func` under `name` with functions-framework using function.json's signature type.
function registerSignature(name, func) {
  let config;
  try { config = core.loadConfig(); } catch { return null; } // reported on invocation
  const ff = loadFramework();
  if (!ff) return null;
  const sig = signature(config);
  if (sig === 'cloudevent') ff.cloudEvent(name, func);
  else ff.http(name, func);
  return sig;
}

// ---------------------------------------------------------------------------- CloudEvents

function looksLikeCloudEvent(headers) {
  const ct = String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  return ct === 'application/cloudevents+json' ||
    ['ce-id', 'ce-type', 'ce-source', 'ce-specversion'].every((h) => headers[h]);
}

function cloudEventFromHttp(headers, raw) {
  const ct = String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (ct === 'application/cloudevents+json') return fromFramework(JSON.parse(raw.toString('utf8')));
  const ce = {};
  for (const [k, v] of Object.entries(headers)) if (k.startsWith('ce-')) ce[k.slice(3)] = v;
  if (ct) ce.datacontenttype = headers['content-type'];
  ce.data = ct.endsWith('json') && raw.length ? JSON.parse(raw.toString('utf8')) : raw;
  return ce;
}

// a CloudEvent as functions-framework hands it over -> {attribute..., data}
function fromFramework(ev) {
  const out = { ...ev };
  if ('data_base64' in out) {
    out.data = Buffer.from(out.data_base64, 'base64');
    delete out.data_base64;
  }
  return out;
}

function jsonData(ce, what) {
  let data = ce.data;
  if (typeof data === 'string' || core.isBytes(data)) {
    try {
      data = JSON.parse(typeof data === 'string' ? data : core.toBuffer(data).toString('utf8'));
    } catch {
      const ct = ce.datacontenttype || 'unknown';
      throw new core.EventError(`${what} CloudEvent ${ce.id} has data that is not JSON (content type ${ct})` +
        (ct.includes('protobuf') || what === 'Firestore'
          ? '; Nimbus reads the JSON encoding only: deploy the trigger with event data content type application/json' : ''));
    }
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new core.EventError(`${what} CloudEvent ${ce.id} carries no data`);
  return data;
}

// `//pubsub.googleapis.com/projects/p/topics/t` -> `projects/p/topics/t`
function sourcePath(source) {
  let s = String(source || '');
  if (s.startsWith('//')) {
    const rest = s.slice(2);
    s = rest.includes('/') ? rest.slice(rest.indexOf('/') + 1) : '';
  }
  return s;
}

const last = (p) => (p ? p.split('/').pop() : null);

function pubsubEvent(ce, config) {
  const data = jsonData(ce, 'Pub/Sub');
  const msg = data.message || {};
  const topicPath = sourcePath(ce.source);
  const topic = last(topicPath);
  const subPath = data.subscription || '';
  const [name, type] = core.resolveResource(config, ['topic', 'queue'], [topicPath, topic, subPath, last(subPath)], topic);
  const m = {
    id: msg.messageId || msg.message_id || ce.id,
    body: core.b64decodeText(msg.data),
    attributes: Object.fromEntries(Object.entries(msg.attributes || {}).map(([k, v]) => [k, String(v)])),
  };
  if (type === 'queue') {
    const rc = parseInt(data.deliveryAttempt || msg.deliveryAttempt || 1, 10);
    m.receive_count = Number.isNaN(rc) ? 1 : rc;
  }
  return { type, source: name, messages: [m] };
}

function storageEvent(ce, config) {
  const t = ce.type || '';
  let action;
  if (t.endsWith('.finalized')) action = 'created';
  else if (t.endsWith('.deleted')) action = 'deleted';
  else throw new core.EventError(`unsupported Cloud Storage event ${JSON.stringify(t)} (Nimbus handles finalized and deleted)`);
  const data = jsonData(ce, 'Cloud Storage');
  const b = data.bucket || last(sourcePath(ce.source));
  const [bucket] = core.resolveResource(config, ['bucket'], [b, sourcePath(ce.source)], b);
  const size = data.size;
  return { type: 'bucket', bucket, key: data.name || '', size: size == null || size === '' ? null : Number(size), action };
}

// Whether a bucket event is one of the function's bucket triggers (its resource, one of its
// `events`, the key within its prefix and suffix); true when no bucket trigger names the resource.
function bucketWanted(event, config) {
  const triggers = (config.triggers || []).filter((t) => t && t.type === 'bucket' && t.resource === event.bucket);
  if (!triggers.length) return true;
  const key = event.key || '';
  return triggers.some((t) => (t.events || ['created', 'deleted']).includes(event.action) &&
    key.startsWith(t.prefix || '') && key.endsWith(t.suffix || ''));
}

// Firestore `Value` (JSON form) -> plain JSON value
function firestoreValue(v) {
  if (!v || typeof v !== 'object') return v;
  if ('nullValue' in v) return null;
  if ('booleanValue' in v) return Boolean(v.booleanValue);
  if ('integerValue' in v) {
    const n = Number(v.integerValue);
    return Number.isSafeInteger(n) ? n : String(v.integerValue);
  }
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('stringValue' in v) return v.stringValue;
  if ('timestampValue' in v) return v.timestampValue;
  if ('bytesValue' in v) return v.bytesValue;
  if ('referenceValue' in v) return v.referenceValue;
  if ('geoPointValue' in v) {
    const g = v.geoPointValue || {};
    return { latitude: g.latitude || 0, longitude: g.longitude || 0 };
  }
  if ('arrayValue' in v) return ((v.arrayValue || {}).values || []).map(firestoreValue);
  if ('mapValue' in v) return fields((v.mapValue || {}).fields);
  throw new core.EventError(`unsupported Firestore value ${JSON.stringify(v)}`);
}

function fields(f) {
  return Object.fromEntries(Object.entries(f || {}).map(([k, x]) => [k, firestoreValue(x)]));
}

const docOf = (d) => (d && typeof d === 'object' && (d.name || d.fields) ? d : null);

function firestoreEvent(ce, config) {
  const data = jsonData(ce, 'Firestore');
  const newDoc = docOf(data.value);
  const oldDoc = docOf(data.oldValue);
  const name = (newDoc || oldDoc || {}).name || '';
  const rel = name.includes('/documents/') ? name.split('/documents/').slice(1).join('/documents/') : (ce.document || '');
  const i = rel.lastIndexOf('/');
  const collPath = i >= 0 ? rel.slice(0, i) : '';
  const docId = i >= 0 ? rel.slice(i + 1) : rel;
  const collId = last(collPath) || '';
  const [table] = core.resolveResource(config, ['table'], [collPath, collId], collId || null);
  const nu = newDoc ? fields(newDoc.fields) : null;
  const old = oldDoc ? fields(oldDoc.fields) : null;
  const t = ce.type || '';
  let action;
  if (t.endsWith('.created')) action = 'insert';
  else if (t.endsWith('.deleted')) action = 'remove';
  else if (t.endsWith('.updated')) action = 'modify';
  else action = old === null ? 'insert' : (nu === null ? 'remove' : 'modify');
  const spec = (config.resources || {})[table] || {};
  let keyFields = spec.key || ['id'];
  if (typeof keyFields === 'string') keyFields = [keyFields];
  const item = nu !== null ? nu : (old || {});
  let key;
  if (keyFields.length === 1) {
    const k = keyFields[0];
    key = { [k]: k in item ? item[k] : docId };
  } else {
    key = Object.fromEntries(keyFields.filter((k) => k in item).map((k) => [k, item[k]]));
    if (!Object.keys(key).length) key = { [keyFields[0]]: docId };
  }
  return { type: 'table', table, action, key, old, new: nu };
}

function schedulerEvent(ce, config) {
  const jobPath = sourcePath(ce.source);
  const job = last(jobPath);
  return { type: 'schedule', name: core.resolveSchedule(config, [jobPath, job], job), time: core.rfc3339(ce.time) };
}

function cloudEventToNeutral(ce, config) {
  const t = ce.type || '';
  if (t === 'google.cloud.pubsub.topic.v1.messagePublished') return pubsubEvent(ce, config);
  if (t.startsWith('google.cloud.storage.object.v1.')) return storageEvent(ce, config);
  if (t.startsWith('google.cloud.firestore.document.v1.')) return firestoreEvent(ce, config);
  if (t === 'google.cloud.scheduler.job.v1.executed') return schedulerEvent(ce, config);
  throw new core.EventError(`unsupported CloudEvent type ${JSON.stringify(t)}`);
}

// ---------------------------------------------------------------------------- HTTP

function requestHeaders(req) {
  const pairs = [];
  const raw = req.rawHeaders || [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return core.joinHeaders(pairs);
}

function rawBodyOf(req) {
  if (req.rawBody != null) return core.toBuffer(req.rawBody);
  if (core.isBytes(req.body)) return core.toBuffer(req.body);
  if (typeof req.body === 'string') return Buffer.from(req.body, 'utf8');
  return Buffer.alloc(0);
}

function httpEvent(method, urlPath, queryString, headers, raw, remoteAddr, config) {
  let p = urlPath || '/';
  try { p = decodeURIComponent(p); } catch { /* keep raw */ }
  const [route, params] = core.matchRoute(config.triggers, method, urlPath || '/');
  const [body, isB64] = core.bodyOf(raw);
  return {
    type: 'http',
    method: String(method).toUpperCase(),
    path: p,
    route,
    path_params: params,
    query: core.queryFromString(queryString),
    headers,
    body,
    is_base64: isB64,
    source_ip: core.firstIp(headers['x-forwarded-for']) || remoteAddr || null,
  };
}

function scheduleFromHttp(headers, config) {
  const job = headers['x-cloudscheduler-jobname'];
  const short = last(job);
  const t = headers['x-cloudscheduler-scheduletime'];
  return { type: 'schedule', name: core.resolveSchedule(config, [job, short], short), time: core.rfc3339(t || undefined) };
}

function isScheduleRequest(headers, config) {
  const types = new Set((config.triggers || []).filter(Boolean).map((t) => t.type));
  if (!types.has('schedule')) return false;
  return headers['x-cloudscheduler'] === 'true' || !types.has('http');
}

function send(res, status, pairs, body) {
  res.statusCode = status;
  const grouped = {};
  for (const [k, v] of pairs) (grouped[k.toLowerCase()] = grouped[k.toLowerCase()] || []).push(v);
  for (const [k, vs] of Object.entries(grouped)) res.setHeader(k, vs.length === 1 ? vs[0] : vs);
  res.end(body);
}

function remoteAddress(req) {
  const a = (req.socket && req.socket.remoteAddress) || req.ip || null;
  return a && a.startsWith('::ffff:') ? a.slice(7) : a;
}

// The body of a Pub/Sub push delivery ({message: {...}, subscription: "..."}), or null.
function pushEnvelope(headers, raw) {
  const ct = String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if ((ct && ct !== 'application/json') || !raw.length) return null;
  let body;
  try { body = JSON.parse(raw.toString('utf8')); } catch { return null; }
  if (body && typeof body === 'object' && body.message && typeof body.message === 'object' &&
      typeof body.subscription === 'string') return body;
  return null;
}

// A Pub/Sub push delivery -> a queue (or topic) event of one message.
function pushEvent(envelope, config) {
  const msg = envelope.message || {};
  const sub = envelope.subscription || '';
  const short = last(sub);
  const [name, type] = core.resolveResource(config, ['queue', 'topic'], [sub, short], short);
  const m = {
    id: msg.messageId || msg.message_id || null,
    body: core.b64decodeText(msg.data),
    attributes: Object.fromEntries(Object.entries(msg.attributes || {}).map(([k, v]) => [k, String(v)])),
  };
  if (type === 'queue') {
    const rc = parseInt(envelope.deliveryAttempt || 1, 10);
    m.receive_count = Number.isNaN(rc) ? 1 : rc;
  }
  return { type, source: name, messages: [m] };
}

// A push delivery: the handler's failure (a throw, or the message in `failed`) throws, which
// answers 500, so Pub/Sub redelivers (and dead-letters after the queue's max_receives).
async function handlePush(fn, envelope, rid) {
  const event = pushEvent(envelope, withEnvNatives(fn.config));
  const result = await fn.invoke(event, fn.context(rid || event.messages[0].id));
  const failed = core.normalizeBatch(result, event);
  if (failed.length) throw new core.BatchItemFailure(failed);
}

async function handleRequest(fn, req, res) {
  const headers = requestHeaders(req);
  const raw = rawBodyOf(req);
  const rid = headers['function-execution-id'] || headers['ce-id'];
  const types = triggerTypes(fn.config);
  const events = signature(fn.config) === 'cloudevent' || ['topic', 'bucket', 'table', 'queue'].some((t) => types.has(t));
  if (events && looksLikeCloudEvent(headers)) {
    await handleCloudEvent(fn, cloudEventFromHttp(headers, raw));
    return send(res, 200, [['content-type', 'text/plain; charset=utf-8']], 'OK');
  }
  const envelope = types.has('queue') && String(req.method).toUpperCase() === 'POST' ? pushEnvelope(headers, raw) : null;
  if (envelope) {
    await handlePush(fn, envelope, rid);
    return send(res, 204, [], '');
  }
  if (isScheduleRequest(headers, fn.config)) {
    await fn.invoke(scheduleFromHttp(headers, fn.config), fn.context(rid));
    return send(res, 204, [], '');
  }
  const policy = cors.policyOf(fn.config);
  const answer = policy ? cors.preflight(policy, req.method, headers) : null;
  if (answer) return send(res, answer[0], answer[1], ''); // the handler never sees a preflight
  const url = req.originalUrl || req.url || '/';
  const q = url.indexOf('?');
  const event = httpEvent(req.method, q >= 0 ? url.slice(0, q) : url, q >= 0 ? url.slice(q + 1) : '',
    headers, raw, remoteAddress(req), fn.config);
  const out = core.unrouted(event, fn.config) ? core.NOT_FOUND
    : core.normalizeHttp(await fn.invoke(event, fn.context(rid)));
  let pairs = core.headerPairs(out.headers);
  if (policy) pairs = cors.onResponse(policy, headers, pairs);
  return send(res, out.status, pairs, core.httpBodyBuffer(out));
}

async function handleCloudEvent(fn, ce) {
  const config = withEnvNatives(fn.config);
  const event = cloudEventToNeutral(ce, config);
  if (event.type === 'bucket' && !bucketWanted(event, config)) {
    console.error(`nimbus: ${event.action} ${event.bucket}/${event.key} matches none of the function's bucket triggers: acknowledged, not handled`);
    return undefined;
  }
  const result = await fn.invoke(event, fn.context(ce.id));
  if (event.type === 'queue' || event.type === 'topic') {
    const failed = core.normalizeBatch(result, event);
    if (failed.length) throw new core.BatchItemFailure(failed); // one message per delivery: Pub/Sub redelivers
  }
  return undefined;
}

// `nimbus_entry`: (req, res) under the http signature, (cloudEvent) under cloudevent.
async function entry(arg, res) {
  const fn = await init();
  if (res && typeof res.setHeader === 'function') return handleRequest(fn, arg, res);
  return handleCloudEvent(fn, fromFramework(arg));
}

module.exports = {
  PROVIDER, init, signature, registerSignature, entry, cloudEventToNeutral, cloudEventFromHttp, fromFramework,
  firestoreValue, httpEvent, scheduleFromHttp, looksLikeCloudEvent, withEnvNatives, bucketWanted, pushEnvelope,
  pushEvent,
};
