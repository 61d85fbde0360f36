'use strict';
// Argument checks shared by every provider's resource clients (Node.js, CommonJS, no dependencies).
//
// `context.resources[name]` has the same API on every provider (local runtime, AWS, ...), so the checks
// of the arguments a handler passes, and their errors (TypeError/RangeError and messages), are the same
// too: they live here, once, and each provider's *_resources.js uses them before it sends anything.
// See docs/function-contract.md, "Resource clients".

const core = require('./core.js');

// The name of v's type in error messages.
function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (Buffer.isBuffer(v)) return 'Buffer';
  return typeof v === 'object' ? (v.constructor && v.constructor.name) || 'object' : typeof v;
}

function isPlainObject(v) {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// A table key/item: a plain object holding the declared key fields.
function checkKey(what, key, fields) {
  if (!isPlainObject(key)) throw new TypeError(`${what} must be a plain object, got ${typeName(key)}`);
  if (!Object.keys(key).length) throw new RangeError(`${what} must not be empty`);
  const missing = fields.filter((f) => !(f in key) || key[f] === undefined);
  if (missing.length) {
    throw new RangeError(`${what} lacks the table's key field(s) ${missing.map((f) => JSON.stringify(f)).join(', ')} ` +
      `(key: ${fields.join(', ')})`);
  }
  return key;
}

// A query/scan limit: a positive integer, or null (undefined as null).
function checkLimit(limit) {
  if (limit === undefined || limit === null) return null;
  if (typeof limit !== 'number' || !Number.isInteger(limit)) {
    throw new TypeError(`limit must be a positive integer or null, got ${typeName(limit)}`);
  }
  if (limit < 1) throw new RangeError(`limit must be a positive integer or null, got ${limit}`);
  return limit;
}

// A message body: a string as it is, a plain object/array as JSON.
function checkBody(body) {
  if (typeof body === 'string') return body;
  if (Array.isArray(body) || isPlainObject(body)) return core.dumps(body);
  throw new TypeError(`body must be a string, or a plain object/array (sent as JSON), got ${typeName(body)}`);
}

// Message attributes: null/undefined or an object of string -> string (a copy).
function checkAttributes(attributes) {
  if (attributes === undefined || attributes === null) return {};
  if (!isPlainObject(attributes)) throw new TypeError(`attributes must be an object of string -> string, got ${typeName(attributes)}`);
  const out = {};
  for (const [k, v] of Object.entries(attributes)) {
    if (!k) throw new TypeError('attribute names must be non-empty strings');
    if (typeof v !== 'string') {
      throw new TypeError(`attribute ${JSON.stringify(k)} must be a string, got ${typeName(v)} (convert it with String())`);
    }
    out[k] = v;
  }
  return out;
}

// A queue send delay: an integer >= 0 (null/undefined as 0).
function checkDelaySeconds(delaySeconds) {
  if (delaySeconds === undefined || delaySeconds === null) return 0;
  if (typeof delaySeconds !== 'number' || !Number.isInteger(delaySeconds)) {
    throw new TypeError(`delay_seconds must be an integer, got ${typeName(delaySeconds)}`);
  }
  if (delaySeconds < 0) throw new RangeError(`delay_seconds must be >= 0, got ${delaySeconds}`);
  return delaySeconds;
}

// A bucket object key: a non-empty string.
function checkBucketKey(key) {
  if (typeof key !== 'string') throw new TypeError(`bucket key must be a string, got ${typeName(key)}`);
  if (!key) throw new RangeError('bucket key must be a non-empty string');
  return key;
}

// Bucket object data: a Buffer/Uint8Array (as a Buffer) or a string (as UTF-8).
function checkBucketData(data) {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (core.isBytes(data)) return core.toBuffer(data);
  throw new TypeError(`bucket data must be a Buffer/Uint8Array or a string, got ${typeName(data)}`);
}

// A bucket object content type: a string or null (undefined as null).
function checkContentType(contentType) {
  if (contentType === undefined || contentType === null) return null;
  if (typeof contentType !== 'string') {
    throw new TypeError(`content_type must be a string or null, got ${typeName(contentType)}`);
  }
  return contentType;
}

// A bucket list prefix: a string (null/undefined as '').
function checkPrefix(prefix) {
  if (prefix === undefined || prefix === null) return '';
  if (typeof prefix !== 'string') throw new TypeError(`prefix must be a string, got ${typeName(prefix)}`);
  return prefix;
}

module.exports = {
  typeName, isPlainObject, checkKey, checkLimit, checkBody, checkAttributes, checkDelaySeconds,
  checkBucketKey, checkBucketData, checkContentType, checkPrefix,
};
