'use strict';
// AWS Lambda adapter of the Nimbus Node.js shim. Lambda handler string: `_nimbus_aws.handler`.
// Native events: API Gateway HTTP API (payload 2.0, also function URLs) and REST API (1.0),
// SQS, SNS, EventBridge scheduled events / EventBridge Scheduler, S3 and DynamoDB Streams.

const core = require('./core.js');
require('./aws_resources.js'); // registers the "aws" resource client factory
const awsSecrets = require('./aws_secrets.js');

const PROVIDER = 'aws';

// Cold start: resolve the function's secrets (NIMBUS_SECRET_<VAR> references) into process.env,
// then load function.json and the user's handler. Warm: both are cached.
function init() {
  return awsSecrets.resolve().then(() => core.getFunction({ provider: PROVIDER }));
}

// ---------------------------------------------------------------------------- detection

function kindOf(event) {
  if (!event || typeof event !== 'object' || Array.isArray(event)) {
    throw new core.EventError(`unsupported AWS event: ${Array.isArray(event) ? 'array' : typeof event}`);
  }
  if ('requestContext' in event && ('httpMethod' in event || 'rawPath' in event || event.version === '2.0')) return 'http';
  const records = event.Records;
  if (Array.isArray(records) && records.length) {
    const src = records[0].eventSource || records[0].EventSource;
    const kinds = { 'aws:sqs': 'queue', 'aws:sns': 'topic', 'aws:s3': 'bucket', 'aws:dynamodb': 'table' };
    if (kinds[src]) return kinds[src];
    throw new core.EventError(`unsupported AWS event source ${JSON.stringify(src)}`);
  }
  if (event['detail-type'] === 'Scheduled Event' || event.source === 'aws.events' || event.source === 'aws.scheduler') return 'schedule';
  throw new core.EventError(`unsupported AWS event (keys: ${Object.keys(event).sort().slice(0, 10).join(', ')})`);
}

// ---------------------------------------------------------------------------- native -> neutral

function routeFromKey(routeKey) {
  if (!routeKey || routeKey === '$default') return null;
  const i = routeKey.indexOf(' ');
  return i >= 0 ? routeKey.slice(i + 1) : routeKey;
}

function safeDecode(p) {
  try { return decodeURIComponent(p); } catch { return p; }
}

function isV2(ev) { return 'rawPath' in ev || ev.version === '2.0'; }

function httpEvent(ev, config) {
  const rc = ev.requestContext || {};
  let method; let path; let headers; let query; let route; let sourceIp; let rawPath = null;
  if (isV2(ev)) {
    const h = rc.http || {};
    method = String(h.method || 'GET').toUpperCase();
    rawPath = ev.rawPath || h.path || '/';
    path = safeDecode(rawPath);
    headers = core.joinHeaders(Object.entries(ev.headers || {}));
    const cookies = ev.cookies || [];
    if (cookies.length) {
      const c = cookies.join('; ');
      headers.cookie = 'cookie' in headers ? `${headers.cookie}; ${c}` : c;
    }
    query = Object.fromEntries(Object.entries(ev.queryStringParameters || {}).map(([k, v]) => [k, v == null ? '' : String(v)]));
    route = routeFromKey(ev.routeKey || rc.routeKey);
    sourceIp = h.sourceIp;
  } else {
    method = String(ev.httpMethod || 'GET').toUpperCase();
    path = ev.path || rc.path || '/';
    headers = ev.multiValueHeaders && Object.keys(ev.multiValueHeaders).length
      ? core.joinHeaders(Object.entries(ev.multiValueHeaders).flatMap(([k, vs]) => (vs || []).map((v) => [k, v])))
      : core.joinHeaders(Object.entries(ev.headers || {}));
    query = ev.multiValueQueryStringParameters && Object.keys(ev.multiValueQueryStringParameters).length
      ? core.joinQuery(Object.entries(ev.multiValueQueryStringParameters).flatMap(([k, vs]) => (vs || []).map((v) => [k, v])))
      : Object.fromEntries(Object.entries(ev.queryStringParameters || {}).map(([k, v]) => [k, v == null ? '' : String(v)]));
    route = ev.resource || rc.resourcePath || null;
    sourceIp = (rc.identity || {}).sourceIp;
  }
  let pathParams = Object.fromEntries(Object.entries(ev.pathParameters || {}).map(([k, v]) => [k, String(v)]));
  if (route != null && rawPath != null) {
    // The route API Gateway chose, its parameters read from the raw path the neutral way (each
    // segment decoded on its own), so they are the same on every target.
    const own = core.matchTemplate(route, rawPath);
    if (own) pathParams = own;
  } else if (route == null) {
    const [r, matched] = core.matchRoute(config.triggers, method, rawPath || encodeURI(path));
    route = r;
    if (!Object.keys(pathParams).length) pathParams = matched;
  }
  let body = ev.body == null || ev.body === '' ? null : ev.body;
  return {
    type: 'http',
    method,
    path,
    route,
    path_params: pathParams,
    query,
    headers,
    body,
    is_base64: Boolean(ev.isBase64Encoded) && body !== null,
    source_ip: sourceIp == null ? null : sourceIp,
  };
}

function arnName(arn) {
  return arn ? arn.split(/[:/]/).pop() : '';
}

function queueEvent(ev, config) {
  const records = ev.Records;
  const arn = records[0].eventSourceARN || '';
  const name = arnName(arn);
  const [source] = core.resolveResource(config, ['queue'], [arn, name], name || null);
  const messages = records.map((r) => {
    const attributes = {};
    for (const [k, a0] of Object.entries(r.messageAttributes || {})) {
      const a = a0 || {};
      const dt = a.dataType || 'String';
      const v = dt.startsWith('Binary') ? a.binaryValue : a.stringValue;
      if (v != null) attributes[k] = String(v);
    }
    const rc = parseInt((r.attributes || {}).ApproximateReceiveCount, 10);
    return { id: r.messageId, body: r.body || '', attributes, receive_count: Number.isNaN(rc) ? 1 : rc };
  });
  return { type: 'queue', source, messages };
}

function topicEvent(ev, config) {
  const records = ev.Records;
  const arn = (records[0].Sns || {}).TopicArn || '';
  const name = arnName(arn);
  const [source] = core.resolveResource(config, ['topic'], [arn, name], name || null);
  const messages = records.map((r) => {
    const s = r.Sns || {};
    const attributes = {};
    for (const [k, a] of Object.entries(s.MessageAttributes || {})) {
      if (a && typeof a === 'object' && a.Value != null) attributes[k] = String(a.Value);
    }
    return { id: s.MessageId, body: s.Message || '', attributes };
  });
  return { type: 'topic', source, messages };
}

function scheduleEvent(ev, config) {
  const arn = (ev.resources || [])[0] || '';
  const native = arn ? arn.split('/').pop() : null;
  return { type: 'schedule', name: core.resolveSchedule(config, [arn, native], native), time: core.rfc3339(ev.time) };
}

function unquotePlus(s) {
  return safeDecode(String(s).replace(/\+/g, ' '));
}

function bucketEvents(ev, config) {
  return ev.Records.map((r) => {
    const s3 = r.s3 || {};
    const b = s3.bucket || {};
    const o = s3.object || {};
    const en = r.eventName || '';
    let action;
    if (en.startsWith('ObjectCreated')) action = 'created';
    else if (en.startsWith('ObjectRemoved') || en.startsWith('LifecycleExpiration')) action = 'deleted';
    else throw new core.EventError(`unsupported S3 event ${JSON.stringify(en)} (Nimbus handles ObjectCreated and ObjectRemoved)`);
    const [bucket] = core.resolveResource(config, ['bucket'], [b.name, b.arn], b.name);
    return {
      type: 'bucket',
      bucket,
      key: unquotePlus(o.key || ''),
      size: o.size == null ? null : Number(o.size),
      action,
    };
  });
}

// DynamoDB numbers: integers as numbers (as strings when beyond 2^53), others as floats
function num(s) {
  s = String(s);
  if (/^[+-]?\d+$/.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : s;
  }
  return Number(s);
}

// DynamoDB AttributeValue JSON -> plain JSON value (B/BS stay base64 strings)
function unmarshal(av) {
  const keys = av && typeof av === 'object' ? Object.keys(av) : [];
  if (keys.length !== 1) throw new core.EventError(`malformed DynamoDB AttributeValue ${JSON.stringify(av)}`);
  const t = keys[0];
  const v = av[t];
  switch (t) {
    case 'S': return v;
    case 'N': return num(v);
    case 'BOOL': return Boolean(v);
    case 'NULL': return null;
    case 'M': return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unmarshal(x)]));
    case 'L': return v.map(unmarshal);
    case 'SS': case 'BS': return v.slice();
    case 'NS': return v.map(num);
    case 'B': return v;
    default: throw new core.EventError(`unsupported DynamoDB AttributeValue type ${JSON.stringify(t)}`);
  }
}

function unmarshalItem(item) {
  if (item == null) return null;
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, unmarshal(v)]));
}

const ACTIONS = { INSERT: 'insert', MODIFY: 'modify', REMOVE: 'remove' };

function tableEvents(ev, config) {
  return ev.Records.map((r) => {
    const arn = r.eventSourceARN || '';
    const tableArn = arn.split('/stream/')[0];
    const tname = tableArn.includes(':table/') ? tableArn.split(':table/').pop() : arnName(tableArn);
    const [table] = core.resolveResource(config, ['table'], [arn, tableArn, tname], tname || null);
    const d = r.dynamodb || {};
    const action = ACTIONS[r.eventName];
    if (!action) throw new core.EventError(`unsupported DynamoDB stream event ${JSON.stringify(r.eventName)}`);
    return {
      type: 'table', table, action,
      key: unmarshalItem(d.Keys) || {},
      old: unmarshalItem(d.OldImage),
      new: unmarshalItem(d.NewImage),
    };
  });
}

const RESOURCE_FIELDS = ['NAME', 'ARN', 'URL', 'STREAM_ARN'];

// function.json with the deployment's native names merged into `native`: lowering sets
// NIMBUS_RESOURCE_<R>_{NAME,ARN,URL,STREAM_ARN} and NIMBUS_SCHEDULE_<T>_ARN
// (crates/nimbus-aws/src/env.rs); see core.withEnvNatives.
function withEnvNatives(config, env = process.env) {
  return core.withEnvNatives(config, RESOURCE_FIELDS, 'ARN', env);
}

// native event -> neutral event, or an array of them (S3 / DynamoDB: one per record)
function toNeutral(event, config) {
  const kind = kindOf(event);
  if (kind !== 'http') config = withEnvNatives(config);
  switch (kind) {
    case 'http': return httpEvent(event, config);
    case 'queue': return queueEvent(event, config);
    case 'topic': return topicEvent(event, config);
    case 'schedule': return scheduleEvent(event, config);
    case 'bucket': return bucketEvents(event, config);
    default: return tableEvents(event, config);
  }
}

// ---------------------------------------------------------------------------- neutral -> native

function httpResponse(res, v2 = true) {
  const headers = {}; const multi = {}; const cookies = [];
  for (const [k, v] of core.headerPairs(res.headers)) {
    if (v2 && k.toLowerCase() === 'set-cookie') cookies.push(v);
    else if (v2) headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    else (multi[k] = multi[k] || []).push(v);
  }
  const out = { statusCode: res.status, body: res.body == null ? '' : res.body, isBase64Encoded: Boolean(res.is_base64) };
  if (v2) {
    out.headers = headers;
    if (cookies.length) out.cookies = cookies;
  } else {
    out.headers = Object.fromEntries(Object.entries(multi).map(([k, vs]) => [k, vs[vs.length - 1]]));
    out.multiValueHeaders = multi;
  }
  return out;
}

// ---------------------------------------------------------------------------- the Lambda handler

function lambdaContext(fn, lc) {
  const rid = lc && lc.awsRequestId;
  const deadline = lc && typeof lc.getRemainingTimeInMillis === 'function'
    ? core.nowMs() + Number(lc.getRemainingTimeInMillis()) : undefined;
  return fn.context(rid, deadline);
}

async function handler(event, lambdaCtx) {
  const fn = await init();
  const ctx = lambdaContext(fn, lambdaCtx);
  const kind = kindOf(event);
  const neutral = toNeutral(event, fn.config);
  switch (kind) {
    case 'http':
      return httpResponse(core.normalizeHttp(await fn.invoke(neutral, ctx)), isV2(event));
    case 'queue': {
      const failed = core.normalizeBatch(await fn.invoke(neutral, ctx), neutral);
      return { batchItemFailures: failed.map((id) => ({ itemIdentifier: id })) };
    }
    case 'topic': {
      const failed = core.normalizeBatch(await fn.invoke(neutral, ctx), neutral);
      if (failed.length) throw new core.BatchItemFailure(failed);
      return null;
    }
    case 'schedule':
      await fn.invoke(neutral, ctx);
      return null;
    case 'bucket':
      for (const e of neutral) await fn.invoke(e, ctx);
      return null;
    default: {
      // DynamoDB Streams: on the first failure report its sequence number so Lambda retries from there
      for (let i = 0; i < neutral.length; i++) {
        try {
          await fn.invoke(neutral[i], ctx);
        } catch (err) {
          const seq = (event.Records[i].dynamodb || {}).SequenceNumber;
          if (seq == null) throw err;
          console.error(err);
          return { batchItemFailures: [{ itemIdentifier: seq }] };
        }
      }
      return { batchItemFailures: [] };
    }
  }
}

module.exports = {
  PROVIDER, init, kindOf, toNeutral, httpEvent, queueEvent, topicEvent, scheduleEvent, bucketEvents,
  tableEvents, unmarshal, unmarshalItem, httpResponse, handler, withEnvNatives,
};
