'use strict';
// W3C trace context across triggers, on every provider (docs/tracing.md); the Node twin of
// _nimbus/trace.py. Each invocation continues the trace its event carries — an HTTP request's
// `traceparent` header, or the `traceparent` attribute of the (first) message of a batch, taken
// out of the attributes the handler sees — or starts a new one. While the handler runs (across
// its awaits, through AsyncLocalStorage) its context is `current()` (and
// `context.traceparent`); the provider's queue and topic clients add it to what they send.

const { AsyncLocalStorage } = require('node:async_hooks');
const crypto = require('node:crypto');

const TRACEPARENT = 'traceparent';
const FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const storage = new AsyncLocalStorage();

// [traceId, spanId] of a valid traceparent, else null.
function parse(value) {
  const m = typeof value === 'string' ? FORMAT.exec(value.trim()) : null;
  if (!m) return null;
  const [, version, traceId, spanId, , rest] = m;
  if (version === 'ff' || (version === '00' && rest)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return [traceId, spanId];
}

// A new span's traceparent: in `parent`'s trace, else in a new one.
function child(parent) {
  const ids = parse(parent);
  const traceId = ids ? ids[0] : crypto.randomBytes(16).toString('hex');
  let spanId = crypto.randomBytes(8).toString('hex');
  if (/^0+$/.test(spanId)) spanId = '0000000000000001';
  return `00-${traceId}-${spanId}-01`;
}

// The context `event` carries; messages' `traceparent` attributes are removed.
function parentOf(event) {
  if (!event || typeof event !== 'object') return null;
  if (event.type === 'http') {
    const v = event.headers && event.headers[TRACEPARENT];
    return parse(v) ? v : null;
  }
  let found = null;
  for (const m of Array.isArray(event.messages) ? event.messages : []) {
    const attrs = m && m.attributes;
    if (attrs && typeof attrs === 'object' && TRACEPARENT in attrs) {
      const v = attrs[TRACEPARENT];
      delete attrs[TRACEPARENT];
      if (found === null && parse(v)) found = v;
    }
  }
  return found;
}

// Runs `fn` as the invocation of `event`: (context.traceparent is set to its span).
function run(event, context, fn) {
  const value = child(parentOf(event));
  context.traceparent = value;
  return storage.run(value, fn);
}

const current = () => storage.getStore() || null;

// `attrs` plus the running invocation's traceparent (unless the handler set one).
function withTrace(attrs) {
  const out = { ...(attrs || {}) };
  const value = current();
  if (value && !(TRACEPARENT in out)) out[TRACEPARENT] = value;
  return out;
}

module.exports = { TRACEPARENT, parse, child, parentOf, run, current, withTrace };
