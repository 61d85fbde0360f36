'use strict';
// Provider-independent part of the Nimbus Node.js shim (CommonJS, no dependencies).
//
// Loads _nimbus/function.json and the user's handler (CommonJS or ESM) at cold
// start, builds the neutral `context` (with `context.resources`), invokes the
// handler and normalizes its result. Provider adapters (_nimbus/aws.js, gcp.js,
// azure.js, local_worker.js) only convert native events and responses.
// The contract is documented in docs/function-contract.md.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { pathToFileURL } = require('node:url');

const SHIM_VERSION = '1';
const EVENT_TYPES = ['http', 'queue', 'topic', 'schedule', 'bucket', 'table'];
const RESOURCE_TYPES = ['table', 'queue', 'topic', 'bucket'];

// ---------------------------------------------------------------------------- errors

class NimbusError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}
// A provider refused or failed a resource operation of a handler. `type` (also `code`) is the
// neutral error type, `detail` the provider's message; `resource`, `op` name the call. Every
// provider's resource clients throw this class (the AWS clients a subclass that also keeps
// AWS's error code).
class ResourceError extends NimbusError {
  constructor(message, type = 'ResourceError', resource = null, op = null, options = undefined) {
    const t = String(type || 'ResourceError');
    const m = message == null ? '' : String(message);
    const where = resource != null && op != null ? `${resource}.${op}: ` : '';
    super(t === 'ResourceError' ? `${where}${m}` : `${where}${t}: ${m}`, options);
    this.type = t;
    this.code = t;
    this.resource = resource;
    this.op = op;
    this.detail = m;
  }
}
class ConfigError extends NimbusError {}
class HandlerLoadError extends NimbusError {}
class EventError extends NimbusError {}
class ResultError extends NimbusError {}
class ResourceAccessError extends NimbusError {}
class ResourceUnavailableError extends NimbusError {}
class BatchItemFailure extends NimbusError {
  constructor(failed) {
    super(`handler reported failed message(s) ${failed.map((f) => JSON.stringify(f)).join(', ')}; ` +
      'failing the invocation so that the platform retries them');
    this.failed = failed.slice();
  }
}

// ---------------------------------------------------------------------------- package & config

function packageRoot() {
  if (process.env.NIMBUS_PACKAGE_ROOT) return path.resolve(process.env.NIMBUS_PACKAGE_ROOT);
  return path.dirname(__dirname);
}

function loadConfig(root) {
  root = root || packageRoot();
  const file = path.join(root, '_nimbus', 'function.json');
  let cfg;
  try {
    cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') throw new ConfigError(`Nimbus shim: ${file} not found (is this a Nimbus package?)`);
    throw new ConfigError(`Nimbus shim: cannot read ${file}: ${e.message}`);
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw new ConfigError(`Nimbus shim: ${file} must hold a JSON object`);
  }
  if (!cfg.handler || typeof cfg.handler !== 'object' || !cfg.handler.file) {
    throw new ConfigError(`Nimbus shim: ${file} needs "handler": {"file": ..., "export": ...}`);
  }
  if (cfg.resources == null) cfg.resources = {};
  if (cfg.triggers == null) cfg.triggers = [];
  if (typeof cfg.resources !== 'object' || Array.isArray(cfg.resources) || !Array.isArray(cfg.triggers)) {
    throw new ConfigError(`Nimbus shim: ${file}: "resources" must be an object and "triggers" a list`);
  }
  return cfg;
}

function parseTarget(target) {
  if (typeof target !== 'string' || !target.trim()) throw new HandlerLoadError('Nimbus shim: empty handler reference');
  const t = target.trim();
  const i = t.lastIndexOf(':');
  if (i < 0) return [t, 'handler'];
  if (i === 0) throw new HandlerLoadError(`Nimbus shim: handler reference ${JSON.stringify(target)} has no file part`);
  return [t.slice(0, i), t.slice(i + 1) || 'handler'];
}

// ---------------------------------------------------------------------------- handler loading

async function importModule(abs) {
  if (abs.endsWith('.mjs')) return import(pathToFileURL(abs).href);
  try {
    return require(abs);
  } catch (e) {
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return import(pathToFileURL(abs).href);
    }
    throw e;
  }
}

async function loadHandler(root, file, exportName) {
  let rel = String(file).replace(/\\/g, '/');
  while (rel.startsWith('./')) rel = rel.slice(2);
  if (path.isAbsolute(rel) || rel.split('/').includes('..')) {
    throw new HandlerLoadError(`Nimbus shim: handler file ${JSON.stringify(file)} must be relative to the package root`);
  }
  const abs = path.join(root, rel);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) {
    throw new HandlerLoadError(`Nimbus shim: handler file ${JSON.stringify(rel)} not found in the package (root ${root})`);
  }
  let mod;
  try {
    mod = await importModule(abs);
  } catch (e) {
    const err = new HandlerLoadError(
      `Nimbus shim: loading handler file ${JSON.stringify(rel)} failed: ${(e && e.name) || 'Error'}: ${(e && e.message) || e}` +
      (e instanceof SyntaxError && /import|export/.test(String(e.message))
        ? ' (ES modules need a .mjs file or "type": "module" in the nearest package.json)' : ''),
      { cause: e });
    err.userStack = e && e.stack;
    throw err;
  }
  let fn = mod == null ? undefined : mod[exportName];
  if (fn === undefined && mod && mod.default && typeof mod.default === 'object') fn = mod.default[exportName];
  if (fn === undefined) {
    const names = Object.keys(mod || {}).filter((k) => typeof mod[k] === 'function').sort();
    throw new HandlerLoadError(`Nimbus shim: ${JSON.stringify(rel)} does not export ${JSON.stringify(exportName)} ` +
      `(exported functions: ${names.join(', ') || 'none'})`);
  }
  if (typeof fn !== 'function') {
    throw new HandlerLoadError(`Nimbus shim: ${rel}:${exportName} is a ${typeof fn}, not a function`);
  }
  return fn;
}

// ---------------------------------------------------------------------------- resources

const READ = { table: ['get', 'query', 'scan'], bucket: ['get', 'list'], queue: [], topic: [] };
const WRITE = { table: ['put', 'delete'], bucket: ['put', 'delete'], queue: ['send'], topic: ['publish'] };
const METHODS = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, [...READ[t], ...WRITE[t]]]));
// The manifest's access levels (`uses: [{resource, access}]`): `write` is write/delete without reads.
const ACCESS_LEVELS = {
  table: { read: READ.table, write: WRITE.table, read_write: METHODS.table },
  bucket: { read: READ.bucket, write: WRITE.bucket, read_write: METHODS.bucket },
  queue: { send: METHODS.queue },
  topic: { publish: METHODS.topic },
};

// provider -> factory(name, spec, functionConfig) -> client with the neutral methods (returning Promises)
const FACTORIES = new Map();
function registerResourceFactory(provider, factory) {
  FACTORIES.set(provider, factory);
}

function guardClient(name, type, access, functionName, client) {
  const allowed = ACCESS_LEVELS[type][access] || [];
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON' || prop === 'constructor') {
        return prop === 'then' ? undefined : Reflect.get(target, prop, receiver);
      }
      if (!METHODS[type].includes(prop)) {
        throw new TypeError(`${type} resource ${JSON.stringify(name)} has no method ${JSON.stringify(prop)} ` +
          `(methods: ${METHODS[type].slice().sort().join(', ')})`);
      }
      if (!allowed.includes(prop)) {
        throw new ResourceAccessError(`function ${JSON.stringify(functionName)} has ${JSON.stringify(access)} access to ` +
          `${type} ${JSON.stringify(name)}, which does not allow ${prop}(); grant more in its \`uses\` in nimbus.yaml`);
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

// `context.resources`: resource name -> neutral client, for granted resources only.
function makeResources(config, provider) {
  const fnName = config.function || '?';
  const specs = config.resources || {};
  const clients = new Map();
  const granted = () => Object.keys(specs).filter((n) => specs[n] && typeof specs[n] === 'object' && specs[n].access).sort();
  const passthrough = new Set(['then', 'toJSON', 'constructor', 'inspect', 'valueOf', 'toString']);
  const get = (name) => {
    const spec = specs[name];
    if (!spec || typeof spec !== 'object' || !spec.access) {
      throw new ResourceAccessError(`resource ${JSON.stringify(name)} is not granted to function ${JSON.stringify(fnName)}: ` +
        `add \`- { resource: ${name}, access: ... }\` to its \`uses\` in nimbus.yaml (granted: ${granted().join(', ') || 'none'})`);
    }
    let client = clients.get(name);
    if (client) return client;
    const { type, access } = spec;
    if (!RESOURCE_TYPES.includes(type)) throw new ResourceUnavailableError(`resource ${JSON.stringify(name)} has unknown type ${JSON.stringify(type)}`);
    if (!ACCESS_LEVELS[type][access]) {
      throw new ResourceAccessError(`resource ${JSON.stringify(name)} (${type}) has unknown access level ${JSON.stringify(access)} ` +
        `(one of: ${Object.keys(ACCESS_LEVELS[type]).sort().join(', ')})`);
    }
    const factory = FACTORIES.get(provider);
    if (!factory) {
      throw new ResourceUnavailableError(`resource ${JSON.stringify(name)} (${type}): no ${type} client for provider ` +
        `${JSON.stringify(provider)} in this version of the Nimbus Node.js shim yet`);
    }
    const raw = factory(name, spec, config);
    if (!raw) throw new ResourceUnavailableError(`resource ${JSON.stringify(name)} (${type}): provider ${JSON.stringify(provider)} has no ${type} client yet`);
    client = guardClient(name, type, access, fnName, raw);
    clients.set(name, client);
    return client;
  };
  return new Proxy(Object.create(null), {
    get(_t, prop) {
      if (typeof prop === 'symbol' || passthrough.has(prop)) {
        if (prop === 'toJSON') return () => granted();
        if (prop === 'toString') return () => `[nimbus resources ${granted().join(', ')}]`;
        return undefined;
      }
      return get(prop);
    },
    has(_t, prop) { return typeof prop === 'string' && granted().includes(prop); },
    ownKeys() { return granted(); },
    getOwnPropertyDescriptor(_t, prop) {
      if (typeof prop === 'string' && granted().includes(prop)) {
        return { configurable: true, enumerable: true, get: () => get(prop) };
      }
      return undefined;
    },
    set() { throw new TypeError('context.resources is read-only'); },
  });
}

// ---------------------------------------------------------------------------- context & function

const nowMs = () => Date.now();

function makeContext({ functionName, requestId, service, stage, provider, deadlineMs, resources }) {
  return {
    functionName,
    requestId,
    service,
    stage,
    provider,
    deadlineMs: Math.trunc(deadlineMs),
    remainingMs() { return Math.max(0, this.deadlineMs - nowMs()); },
    resources,
  };
}

class NimbusFunction {
  constructor({ root, config, provider, file, exportName }) {
    this.root = root;
    this.config = config;
    this.provider = provider || config.provider || 'unknown';
    this.file = file;
    this.export = exportName;
    this.name = config.function || path.basename(file).replace(/\.[cm]?js$/, '');
    this.timeoutMs = Number(config.timeout_ms) || 10000;
    this.resources = makeResources(config, this.provider);
    this.handler = null;
    this.loadMs = 0;
  }

  context(requestId, deadlineMs) {
    return makeContext({
      functionName: this.name,
      requestId: requestId || crypto.randomUUID(),
      service: this.config.service,
      stage: this.config.stage,
      provider: this.provider,
      deadlineMs: deadlineMs != null ? Number(deadlineMs) : nowMs() + this.timeoutMs,
      resources: this.resources,
    });
  }

  async invoke(event, context) {
    // The event's trace context (a message's is taken out of its attributes) is continued.
    return await require('./trace.js').run(event, context, () => this.handler(event, context));
  }

  triggers(...types) {
    return (this.config.triggers || []).filter((t) => t && types.includes(t.type));
  }
}

async function createFunction({ root, target, provider, config } = {}) {
  const t0 = process.hrtime.bigint();
  root = path.resolve(root || packageRoot());
  config = config || loadConfig(root);
  let file, exportName;
  if (target) [file, exportName] = parseTarget(target);
  else { file = config.handler.file; exportName = config.handler.export || 'handler'; }
  const fn = new NimbusFunction({ root, config, provider, file, exportName });
  fn.handler = await loadHandler(root, file, exportName);
  fn.loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return fn;
}

const functions = new Map();
// The process-wide loaded function (a Promise) for `target` (default: function.json's handler).
function getFunction({ target, provider, root } = {}) {
  const key = JSON.stringify([path.resolve(root || packageRoot()), target || null, provider || null]);
  let p = functions.get(key);
  if (!p) {
    p = createFunction({ root, target, provider });
    p.catch(() => {}); // reported to whoever awaits it
    functions.set(key, p);
  }
  return p;
}

// ---------------------------------------------------------------------------- JSON & time helpers

function isBytes(v) {
  return Buffer.isBuffer(v) || v instanceof Uint8Array || v instanceof ArrayBuffer;
}
function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function dumps(obj) {
  return JSON.stringify(obj, function replacer(key, value) {
    if (typeof value === 'bigint') return value.toString();
    if (value && typeof value === 'object') {
      if (value.type === 'Buffer' && Array.isArray(value.data) && Object.keys(value).length === 2) {
        return Buffer.from(value.data).toString('base64');
      }
      if (value instanceof Uint8Array || value instanceof ArrayBuffer) return toBuffer(value).toString('base64');
      if (value instanceof Set) return Array.from(value);
      if (value instanceof Map) return Object.fromEntries(value);
    }
    return value;
  });
}

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

// RFC 3339 UTC with a `Z` suffix; milliseconds kept only when non-zero.
function rfc3339(value) {
  let d;
  if (value == null) d = new Date();
  else if (value instanceof Date) d = value;
  else if (typeof value === 'number') d = new Date(value * 1000);
  else {
    let s = String(value).trim();
    // keep millisecond precision of longer fractions (Date.parse handles up to ms)
    s = s.replace(/(\.\d{3})\d+/, '$1');
    if (!/[zZ]|[+-]\d\d:?\d\d$/.test(s.slice(10))) s += 'Z';
    d = new Date(s);
  }
  if (Number.isNaN(d.getTime())) throw new EventError(`invalid timestamp ${JSON.stringify(value)}`);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  return ms ? `${base}.${pad(ms, 3)}Z` : `${base}Z`;
}

function b64decodeText(data) {
  if (data == null) return '';
  return (typeof data === 'string' ? Buffer.from(data, 'base64') : toBuffer(data)).toString('utf8');
}

function textOf(raw) {
  if (raw == null) return '';
  if (typeof raw === 'string') return raw;
  if (isBytes(raw)) return toBuffer(raw).toString('utf8');
  return dumps(raw);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
// raw request bytes -> [body, isBase64]: text when valid UTF-8, else base64; empty -> null
function bodyOf(raw) {
  if (raw == null) return [null, false];
  if (typeof raw === 'string') return [raw === '' ? null : raw, false];
  const buf = toBuffer(raw);
  if (buf.length === 0) return [null, false];
  try {
    return [strictUtf8.decode(buf), false];
  } catch {
    return [buf.toString('base64'), true];
  }
}

// iterable of [name, value] -> {lower-cased name: values joined with ", "}
function joinHeaders(pairs) {
  const out = {};
  for (const [k, v] of pairs) {
    if (v == null) continue;
    const name = String(k).toLowerCase();
    const vals = Array.isArray(v) ? v.map(String) : [String(v)];
    for (const val of vals) out[name] = name in out ? `${out[name]}, ${val}` : val;
  }
  return out;
}

// iterable of [key, value] -> {key: values joined with ","}
function joinQuery(pairs) {
  const out = {};
  for (const [k, v] of pairs) {
    const val = v == null ? '' : String(v);
    out[k] = k in out ? `${out[k]},${val}` : val;
  }
  return out;
}

function queryFromString(qs) {
  return joinQuery(new URLSearchParams(qs || '').entries());
}

function firstIp(value) {
  if (!value) return null;
  let ip = String(value).split(',')[0].trim();
  if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(ip)) ip = ip.slice(0, ip.lastIndexOf(':'));
  else if (ip.startsWith('[') && ip.includes(']')) ip = ip.slice(1, ip.indexOf(']'));
  return ip || null;
}

// ---------------------------------------------------------------------------- routes

// `/files/{path+}` -> [['lit', 'files'], ['greedy', 'path']]; Azure's `{*path}` is greedy too.
function routeSegments(template) {
  return String(template).split('/').filter(Boolean).map((seg) => {
    const m = /^\{(\*?)([A-Za-z_][A-Za-z0-9_-]*)(\+?)\}$/.exec(seg);
    if (!m) return ['lit', seg];
    return [(m[1] || m[3]) ? 'greedy' : 'param', m[2]];
  });
}

const RANK = { lit: 0, param: 1, greedy: 2 };

// The neutral precedence of two routes (negative: `a` wins): segment by segment from the left a
// literal beats a `{param}`, which beats a greedy `{rest+}`; then the longer template; then a
// named method beats `ANY`. The local router (nimbus-local/src/router.rs) sorts alike.
function compareRoutes(a, b) {
  const ra = routeSegments(a.path).map(([k]) => RANK[k]);
  const rb = routeSegments(b.path).map(([k]) => RANK[k]);
  for (let i = 0; i < Math.min(ra.length, rb.length); i += 1) if (ra[i] !== rb[i]) return ra[i] - rb[i];
  if (ra.length !== rb.length) return ra.length - rb.length;
  const anyA = ['ANY', '*'].includes(String(a.method || 'ANY').toUpperCase());
  const anyB = ['ANY', '*'].includes(String(b.method || 'ANY').toUpperCase());
  return Number(anyA) - Number(anyB);
}

function decodeSegment(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

// Path parameters of `rawPath` (percent-encoded, as sent) under `template`, or null. Empty
// segments are ignored; each segment is decoded on its own (an encoded `/` stays inside its
// segment); a greedy parameter takes one or more segments, joined with `/` (no leading `/`).
function matchTemplate(template, rawPath) {
  const parts = String(rawPath || '/').split('?')[0].split('/').filter(Boolean);
  const segs = routeSegments(template);
  const params = {};
  for (let i = 0; i < segs.length; i += 1) {
    const [kind, value] = segs[i];
    if (kind === 'greedy') {
      if (i >= parts.length) return null;
      params[value] = parts.slice(i).map(decodeSegment).join('/');
      return params;
    }
    if (i >= parts.length) return null;
    if (kind === 'lit') {
      if (decodeSegment(parts[i]) !== value) return null;
    } else {
      params[value] = decodeSegment(parts[i]);
    }
  }
  return segs.length === parts.length ? params : null;
}

// [route, pathParams] of the function's most specific http trigger matching method and the raw
// (percent-encoded) path; HEAD is served by a GET route; [null, {}] if none.
function matchRoute(triggers, method, rawPath) {
  const m = String(method || '').toUpperCase();
  const http = (triggers || []).filter((t) => t && t.type === 'http' && t.path);
  const sorted = http.map((t, i) => [t, i]).sort(([a, i], [b, j]) => compareRoutes(a, b) || i - j).map(([t]) => t);
  let headByGet = null;
  for (const t of sorted) {
    const tm = String(t.method || 'ANY').toUpperCase();
    const head = m === 'HEAD' && tm === 'GET';
    if (!['ANY', '*', m].includes(tm) && !head) continue;
    const params = matchTemplate(t.path, rawPath);
    if (!params) continue;
    if (!head) return [t.path, params];
    // HEAD falls back to a GET route only when no route takes HEAD itself
    if (!headByGet) headByGet = [t.path, params];
  }
  return headByGet || [null, {}];
}

// ---------------------------------------------------------------------------- resource names

// `order-events` -> `ORDER_EVENTS`: a neutral name inside a deployment's variable names (the
// providers' env.rs `var_part`).
const envVarPart = (name) => String(name).toUpperCase().replace(/-/g, '_');

// function.json with the deployment's native names merged into `native`, for providers whose
// packaging leaves `native` empty: NIMBUS_RESOURCE_<R>_<FIELD> for each of `resourceFields`
// (set as {field.toLowerCase(): value} on resource R) and NIMBUS_SCHEDULE_<T>_<scheduleField>
// for each schedule trigger T. With them, resolveResource / resolveSchedule map a native source
// to its neutral name exactly, also for two triggers of the same type. Returns a copy.
function withEnvNatives(config, resourceFields, scheduleField, env = process.env) {
  let out = config;
  const resources = config.resources;
  if (resources && typeof resources === 'object' && !Array.isArray(resources)) {
    const merged = {};
    for (const [name, spec0] of Object.entries(resources)) {
      let spec = spec0;
      if (spec && typeof spec === 'object') {
        const extra = {};
        for (const field of resourceFields) {
          const v = env[`NIMBUS_RESOURCE_${envVarPart(name)}_${field}`];
          if (v) extra[field.toLowerCase()] = v;
        }
        if (Object.keys(extra).length) spec = { ...spec, native: [spec.native, extra] };
      }
      merged[name] = spec;
    }
    out = { ...out, resources: merged };
  }
  if (Array.isArray(config.triggers)) {
    out = {
      ...out,
      triggers: config.triggers.map((t) => {
        if (!t || t.type !== 'schedule' || typeof t.name !== 'string') return t;
        const v = env[`NIMBUS_SCHEDULE_${envVarPart(t.name)}_${scheduleField}`];
        return v ? { ...t, native: [t.native, { [scheduleField.toLowerCase()]: v }] } : t;
      }),
    };
  }
  return out;
}

function nativeStrings(native, out = []) {
  if (typeof native === 'string') out.push(native);
  else if (Array.isArray(native)) native.forEach((v) => nativeStrings(v, out));
  else if (native && typeof native === 'object') Object.values(native).forEach((v) => nativeStrings(v, out));
  return out;
}

// Neutral resource name for a native source -> [name, type]:
// 1. a resource of one of `types` whose `native` holds a candidate; 2. the resource of the
// function's only trigger of those types; 3. `fallback` (the native name).
function resolveResource(config, types, candidates, fallback = null) {
  const cands = new Set((candidates || []).filter(Boolean));
  for (const [name, spec] of Object.entries(config.resources || {})) {
    if (spec && types.includes(spec.type) && nativeStrings(spec.native).some((s) => cands.has(s))) return [name, spec.type];
  }
  const trig = (config.triggers || []).filter((t) => t && types.includes(t.type));
  if (trig.length === 1 && trig[0].resource) return [trig[0].resource, trig[0].type];
  const ttype = trig.length && trig.every((t) => t.type === trig[0].type) ? trig[0].type : types[0];
  return [fallback == null || fallback === '' ? null : fallback, ttype];
}

function resolveSchedule(config, candidates, fallback = null) {
  const cands = new Set((candidates || []).filter(Boolean));
  const trig = (config.triggers || []).filter((t) => t && t.type === 'schedule');
  for (const t of trig) {
    // a job/rule path also matches its short name
    if (t.name && nativeStrings(t.native).some((s) => cands.has(s) || cands.has(s.split('/').pop()))) return t.name;
  }
  if (trig.length === 1 && trig[0].name) return trig[0].name;
  return fallback || config.function || null;
}

// ---------------------------------------------------------------------------- results

function headerGet(headers, name) {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

// handler result -> {status, headers, body, is_base64}; header values are strings or arrays of strings
// Whether an HTTP `event` reached a function none of whose routes matches it: a platform whose
// catch-all also takes an empty tail (GCP's `{x=**}`, Azure's `{*x}`) calls it for `/files/`
// where the neutral `/files/{x+}` needs one segment. The shim answers NOT_FOUND then, as AWS and
// the local gateway do, and the handler never runs.
function unrouted(event, config) {
  const http = (config.triggers || []).filter((t) => t && typeof t === 'object' && t.type === 'http');
  return http.length > 0 && event.route == null;
}

// The answer to a request no route serves: API Gateway HTTP API's own 404.
const NOT_FOUND = Object.freeze({
  status: 404, headers: { 'content-type': 'application/json' }, body: '{"message":"Not Found"}', is_base64: false,
});

function normalizeHttp(result) {
  if (result === undefined || result === null) return { status: 204, headers: {}, body: null, is_base64: false };
  if (typeof result === 'string') {
    return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: result, is_base64: false };
  }
  if (isBytes(result)) {
    return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: toBuffer(result).toString('base64'), is_base64: true };
  }
  if (typeof result === 'object' && !Array.isArray(result) && 'status' in result) {
    const status = result.status;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new ResultError(`http result status must be an integer 100..599, got ${JSON.stringify(status)}`);
    }
    const rawHeaders = result.headers == null ? {} : result.headers;
    if (typeof rawHeaders !== 'object' || Array.isArray(rawHeaders)) {
      throw new ResultError(`http result headers must be an object, got ${Array.isArray(rawHeaders) ? 'array' : typeof rawHeaders}`);
    }
    const headers = {};
    for (const [k, v] of Object.entries(rawHeaders)) {
      if (v === undefined || v === null) continue;
      headers[k] = Array.isArray(v) ? v.map(String) : String(v);
    }
    let body = result.body === undefined ? null : result.body;
    let isB64 = Boolean(result.is_base64);
    if (body === null) {
      // no body
    } else if (typeof body === 'string') {
      if (headerGet(headers, 'content-type') === undefined) {
        headers['content-type'] = isB64 ? 'application/octet-stream' : 'text/plain; charset=utf-8';
      }
    } else if (isBytes(body)) {
      body = toBuffer(body).toString('base64');
      isB64 = true;
      if (headerGet(headers, 'content-type') === undefined) headers['content-type'] = 'application/octet-stream';
    } else {
      body = dumps(body);
      isB64 = false;
      if (headerGet(headers, 'content-type') === undefined) headers['content-type'] = 'application/json';
    }
    return { status, headers, body, is_base64: isB64 };
  }
  if (typeof result === 'object' || typeof result === 'number' || typeof result === 'boolean') {
    return { status: 200, headers: { 'content-type': 'application/json' }, body: dumps(result), is_base64: false };
  }
  throw new ResultError(`http handler returned unsupported ${typeof result}`);
}

function httpBodyBuffer(res) {
  if (res.body == null) return Buffer.alloc(0);
  return res.is_base64 ? Buffer.from(res.body, 'base64') : Buffer.from(res.body, 'utf8');
}

function headerPairs(headers) {
  const out = [];
  for (const [k, v] of Object.entries(headers)) {
    if (Array.isArray(v)) v.forEach((x) => out.push([k, x]));
    else out.push([k, v]);
  }
  return out;
}

// queue/topic handler result -> failed message ids (batch order)
function normalizeBatch(result, event) {
  if (result == null || typeof result !== 'object' || Array.isArray(result) || !('failed' in result)) return [];
  const failed = result.failed;
  if (failed == null) return [];
  if (!Array.isArray(failed)) throw new ResultError(`"failed" must be a list of message ids, got ${typeof failed}`);
  const ids = (event.messages || []).map((m) => m.id);
  const wanted = new Set();
  for (const f of failed) {
    if (typeof f !== 'string') throw new ResultError(`"failed" must hold message ids (strings), got ${JSON.stringify(f)}`);
    if (!ids.includes(f)) throw new ResultError(`"failed" names ${JSON.stringify(f)}, which is not a message of this batch`);
    wanted.add(f);
  }
  return ids.filter((i) => wanted.has(i));
}

function normalizeResult(event, result) {
  if (event.type === 'http') return normalizeHttp(result);
  if (event.type === 'queue' || event.type === 'topic') return { failed: normalizeBatch(result, event) };
  return null;
}

// The stack as the user wrote it: the shim's frames and Node's internals are dropped, so the
// first frame is the user's file:line (source-mapped when the worker runs with
// --enable-source-maps and a .map exists); paths below the working directory (the package root,
// for the local worker) are made relative to it.
function userStack(stack) {
  if (!stack) return '';
  const cwd = process.cwd().replace(/\/+$/, '') + '/';
  return String(stack).split('\n')
    .filter((line) => !/^\s+at /.test(line) || !(/[\/\\]_nimbus[\/\\]/.test(line) || /\(node:|at node:|\(<anonymous>\)$/.test(line)))
    .map((line) => line.split('file://' + cwd).join('').split(cwd).join(''))
    .join('\n');
}

function errorInfo(err) {
  if (err instanceof Error) {
    return { type: err.name || err.constructor.name || 'Error', message: err.message, stack: userStack(err.userStack || err.stack) };
  }
  return { type: typeof err, message: String(err), stack: '' };
}

module.exports = {
  ResourceError,
  SHIM_VERSION, EVENT_TYPES, RESOURCE_TYPES, METHODS, ACCESS_LEVELS,
  NimbusError, ConfigError, HandlerLoadError, EventError, ResultError, ResourceAccessError,
  ResourceUnavailableError, BatchItemFailure,
  packageRoot, loadConfig, parseTarget, loadHandler, registerResourceFactory, makeResources,
  makeContext, createFunction, getFunction, nowMs,
  dumps, rfc3339, b64decodeText, textOf, bodyOf, isBytes, toBuffer, joinHeaders, joinQuery, queryFromString,
  firstIp, matchRoute, matchTemplate, resolveResource, resolveSchedule, envVarPart, withEnvNatives,
  unrouted, NOT_FOUND, normalizeHttp, httpBodyBuffer, headerPairs, normalizeBatch, normalizeResult, errorInfo, userStack,
};
