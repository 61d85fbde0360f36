'use strict';
// Local resource clients (Node.js): _nimbus/local_resources.js.
//
// Unit tests drive the clients through a fake transport that records every call and answers with
// canned reply frames; the end-to-end test runs a real worker process and plays the local runtime's
// side of the rpc frames (worker -> fd 4 -> here, here -> fd 3 -> worker).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { buildPackage, config } = require('./helpers.js');

const SPECS = {
  orders: { type: 'table', access: 'read_write', key: ['id', 'line'], native: {} },
  audit: { type: 'table', access: 'read', key: ['id'], native: {} },
  payments: { type: 'queue', access: 'send', native: {} },
  events: { type: 'topic', access: 'publish', native: {} },
  images: { type: 'bucket', access: 'read_write', native: {} },
  incoming: { type: 'queue', access: null, native: {} },
};

const root = buildPackage('local', config('local', 'handlers/probe.js', { resources: structuredClone(SPECS) }));
const core = require(path.join(root, '_nimbus', 'core.js'));
const lr = require(path.join(root, '_nimbus', 'local_resources.js'));

const ok = (result = null) => ({ rpc: 1, ok: true, result });

// Records (resource, op, args) and answers with canned reply frames, in order (asynchronously).
function fakeTransport(...replies) {
  const calls = [];
  const call = async (resource, op, args) => {
    JSON.stringify({ rpc: 1, resource, op, args }); // frames must be JSON
    calls.push([resource, op, structuredClone(args)]);
    await new Promise((r) => setImmediate(r));
    return lr.resultOf(replies.length ? replies.shift() : ok(null), resource, op);
  };
  return { calls, call };
}

function client(name, ...replies) {
  const fake = fakeTransport(...replies);
  return [lr.makeClient(name, SPECS[name], fake.call), fake];
}

const rejectsWith = (p, Cls, re) => assert.rejects(p, (e) => {
  assert.ok(e instanceof Cls, `expected ${Cls.name}, got ${e && e.name}: ${e && e.message}`);
  assert.match(e.message, re);
  return true;
});

test('table: every op sends its frame', async () => {
  const [t, fake] = client('orders', ok({ id: '1', line: 2, total: 3 }), ok(null), ok(null), ok(null),
    ok([{ id: '1', line: 2 }]), ok([]), ok([{ id: '9', line: 1 }]));
  assert.deepEqual(await t.get({ id: '1', line: 2 }), { id: '1', line: 2, total: 3 });
  assert.equal(await t.get({ id: '2', line: 1 }), null);
  assert.equal(await t.put({ id: '1', line: 2, total: 3, tags: ['a'] }), null);
  assert.equal(await t.delete({ id: '1', line: 2 }), null);
  assert.deepEqual(await t.query({ id: '1' }, 10), [{ id: '1', line: 2 }]);
  assert.deepEqual(await t.query({ id: '1' }), []);
  assert.deepEqual(await t.scan(5), [{ id: '9', line: 1 }]);
  assert.deepEqual(await t.scan(), []); // default reply null -> []
  assert.deepEqual(fake.calls, [
    ['orders', 'get', { key: { id: '1', line: 2 } }],
    ['orders', 'get', { key: { id: '2', line: 1 } }],
    ['orders', 'put', { item: { id: '1', line: 2, total: 3, tags: ['a'] } }],
    ['orders', 'delete', { key: { id: '1', line: 2 } }],
    ['orders', 'query', { key: { id: '1' }, limit: 10 }],
    ['orders', 'query', { key: { id: '1' }, limit: null }],
    ['orders', 'scan', { limit: 5 }],
    ['orders', 'scan', { limit: null }],
  ]);
});

test('table: argument validation', async () => {
  const [t, fake] = client('orders');
  await rejectsWith(t.get('1'), TypeError, /table key must be a plain object, got string/);
  await rejectsWith(t.delete([['id', '1']]), TypeError, /table key must be a plain object, got array/);
  await rejectsWith(t.get({}), RangeError, /table key must not be empty/);
  await rejectsWith(t.get({ id: '1' }), RangeError, /lacks the table's key field\(s\) "line" \(key: id, line\)/);
  await rejectsWith(t.put(null), TypeError, /table item must be a plain object, got null/);
  await rejectsWith(t.put({ line: 1, total: 2 }), RangeError, /table item lacks the table's key field\(s\) "id"/);
  await rejectsWith(t.query({ line: 1 }), RangeError, /query key lacks the table's key field\(s\) "id"/);
  await rejectsWith(t.scan('5'), TypeError, /limit must be a positive integer or null, got string/);
  await rejectsWith(t.query({ id: '1' }, 1.5), TypeError, /limit must be a positive integer/);
  await rejectsWith(t.scan(0), RangeError, /limit must be a positive integer or null, got 0/);
  assert.deepEqual(fake.calls, []); // nothing invalid reached the runtime
});

test('queue and topic: frames and JSON bodies', async () => {
  const [q, qfake] = client('payments', ok('m-1'), ok('m-2'), ok('m-3'));
  assert.equal(await q.send('hello'), 'm-1');
  assert.equal(await q.send({ order: 42, items: [1, 'x'], note: 'é' }, { kind: 'card' }, 30), 'm-2');
  assert.equal(await q.send([1, 2], null, 0), 'm-3');
  assert.deepEqual(qfake.calls, [
    ['payments', 'send', { body: 'hello', attributes: {}, delay_seconds: 0 }],
    ['payments', 'send', { body: '{"order":42,"items":[1,"x"],"note":"é"}', attributes: { kind: 'card' }, delay_seconds: 30 }],
    ['payments', 'send', { body: '[1,2]', attributes: {}, delay_seconds: 0 }],
  ]);
  const [tp, tfake] = client('events', ok('p-1'), ok('p-2'));
  assert.equal(await tp.publish('Hello\r\nworld!'), 'p-1');
  assert.equal(await tp.publish({ b: 1, a: { z: null, y: true } }, { source: 'shop' }), 'p-2');
  assert.deepEqual(tfake.calls, [
    ['events', 'publish', { body: 'Hello\r\nworld!', attributes: {} }],
    ['events', 'publish', { body: '{"b":1,"a":{"z":null,"y":true}}', attributes: { source: 'shop' } }],
  ]);
});

test('queue and topic: argument validation', async () => {
  const [q, fake] = client('payments');
  await rejectsWith(q.send(Buffer.from('raw')), TypeError, /body must be a string, or a plain object\/array \(sent as JSON\), got Buffer/);
  await rejectsWith(q.send(42), TypeError, /got number/);
  await rejectsWith(q.send('x', { n: 1 }), TypeError, /attribute "n" must be a string, got number/);
  await rejectsWith(q.send('x', ['a']), TypeError, /attributes must be an object of string -> string, got array/);
  await rejectsWith(q.send('x', null, 1.5), TypeError, /delay_seconds must be an integer, got number/);
  await rejectsWith(q.send('x', null, -1), RangeError, /delay_seconds must be >= 0, got -1/);
  const [tp, tfake] = client('events');
  await rejectsWith(tp.publish('x', { flag: true }), TypeError, /attribute "flag" must be a string, got boolean/);
  await rejectsWith(tp.publish(undefined), TypeError, /body must be a string/);
  assert.deepEqual(fake.calls, []);
  assert.deepEqual(tfake.calls, []);
});

test('bucket: frames and base64 both ways', async () => {
  const data = Buffer.from([0, 1, 0xff, 0x20, 0x62, 0x69, 0x6e, 0x80]);
  const [b, fake] = client('images', ok(null), ok(null), ok(null),
    ok({ data_b64: data.toString('base64'), content_type: 'image/png' }), ok(null), ok(null),
    ok(['uploads/a b.png', 'uploads/c']), ok([]));
  assert.equal(await b.put('uploads/a b.png', data, 'image/png'), null);
  assert.equal(await b.put('notes/é.txt', 'héllo'), null); // string -> UTF-8
  assert.equal(await b.put('raw', new Uint8Array([0x61, 0x62])), null);
  const got = await b.get('uploads/a b.png');
  assert.ok(Buffer.isBuffer(got));
  assert.deepEqual(got, data);
  assert.equal(await b.get('missing'), null);
  assert.equal(await b.delete('uploads/a b.png'), null);
  assert.deepEqual(await b.list('uploads/'), ['uploads/a b.png', 'uploads/c']);
  assert.deepEqual(await b.list(), []);
  assert.deepEqual(fake.calls, [
    ['images', 'put', { key: 'uploads/a b.png', data_b64: 'AAH/IGJpboA=', content_type: 'image/png' }],
    ['images', 'put', { key: 'notes/é.txt', data_b64: Buffer.from('héllo', 'utf8').toString('base64'), content_type: null }],
    ['images', 'put', { key: 'raw', data_b64: 'YWI=', content_type: null }],
    ['images', 'get', { key: 'uploads/a b.png' }],
    ['images', 'get', { key: 'missing' }],
    ['images', 'delete', { key: 'uploads/a b.png' }],
    ['images', 'list', { prefix: 'uploads/' }],
    ['images', 'list', { prefix: '' }],
  ]);
});

test('bucket: argument validation and bad replies', async () => {
  const [b, fake] = client('images', ok({ content_type: null }), ok({ data_b64: '**not base64**' }));
  await rejectsWith(b.get(3), TypeError, /bucket key must be a string, got number/);
  await rejectsWith(b.put('', Buffer.from('x')), RangeError, /bucket key must be a non-empty string/);
  await rejectsWith(b.delete(''), RangeError, /non-empty/);
  await rejectsWith(b.put('k', { a: 1 }), TypeError, /bucket data must be a Buffer\/Uint8Array or a string, got Object/);
  await rejectsWith(b.put('k', Buffer.from('x'), 5), TypeError, /content_type must be a string or null, got number/);
  await rejectsWith(b.list(1), TypeError, /prefix must be a string, got number/);
  assert.deepEqual(fake.calls, []);
  await assert.rejects(b.get('a'), (e) => e instanceof lr.ResourceError && e.type === 'ProtocolError' && /malformed bucket get reply/.test(e.message));
  await rejectsWith(b.get('b'), lr.ResourceError, /invalid base64/);
});

test('ok:false replies and runtime errors become ResourceError', async () => {
  const [t] = client('orders', { rpc: 3, ok: false, error: { type: 'ConditionFailed', message: 'item exists' } },
    { rpc: 4, ok: false, error: { message: 'no type' } });
  await assert.rejects(t.put({ id: '1', line: 1 }), (e) => {
    assert.ok(e instanceof lr.ResourceError && e instanceof core.NimbusError && e instanceof Error);
    assert.equal(e.name, 'ResourceError');
    assert.equal(e.type, 'ConditionFailed');
    assert.equal(e.code, 'ConditionFailed');
    assert.equal(e.message, 'orders.put: ConditionFailed: item exists');
    assert.equal(e.detail, 'item exists');
    assert.deepEqual([e.resource, e.op], ['orders', 'put']);
    assert.equal(core.errorInfo(e).type, 'ResourceError');
    return true;
  });
  await assert.rejects(t.scan(), (e) => e.type === 'ResourceError' && e.message === 'orders.scan: no type');
  assert.throws(() => lr.resultOf({ rpc: 1 }, 'orders', 'get'), /malformed reply/);

  // a transport that rejects with the runtime's error (as the worker's rpc does) -> ResourceError too
  const failing = async () => { throw Object.assign(new Error('slow down'), { error: { type: 'Throttled', message: 'slow down' } }); };
  await assert.rejects(lr.makeClient('payments', SPECS.payments, failing).send('x'),
    (e) => e instanceof lr.ResourceError && e.type === 'Throttled' && e.op === 'send' && e.cause.message === 'slow down');
  const typed = () => { throw Object.assign(new Error('gone'), { type: 'NotFound' }); }; // synchronous throw
  await assert.rejects(lr.makeClient('events', SPECS.events, typed).publish('x'),
    (e) => e instanceof lr.ResourceError && e.code === 'NotFound' && /gone/.test(e.message));
  const denied = async () => { throw new core.ResourceAccessError('the runtime says no'); }; // shim errors pass unchanged
  await assert.rejects(lr.makeClient('events', SPECS.events, denied).publish('x'),
    (e) => e instanceof core.ResourceAccessError && e.message === 'the runtime says no' && e.op === 'publish');
  const broken = async () => { throw Object.assign(new Error('pipe closed'), { code: 'EPIPE' }); }; // others pass unchanged
  await assert.rejects(lr.makeClient('events', SPECS.events, broken).publish('x'), (e) => !(e instanceof lr.ResourceError) && e.code === 'EPIPE');
});

test('factory registered for "local"; uses enforced before any frame', async () => {
  assert.equal(lr.makeClient('x', { type: 'nope' }, () => null), null);
  const worker = require(path.join(root, '_nimbus', 'local_worker.js'));
  const had = Object.prototype.hasOwnProperty.call(worker, 'rpc');
  const saved = worker.rpc;
  const calls = [];
  worker.rpc = async (resource, op, args) => { // the transport is looked up at call time
    calls.push([resource, op, args]);
    return op === 'get' ? { id: args.key.id, line: 1 } : null;
  };
  try {
    const res = core.makeResources({ ...config('local'), function: 'place-order', resources: structuredClone(SPECS) }, 'local');
    assert.deepEqual(Object.keys(res), ['audit', 'events', 'images', 'orders', 'payments']);
    assert.throws(() => res.secrets, (e) => e.name === 'ResourceAccessError' && /"secrets" is not granted to function "place-order"/.test(e.message));
    assert.throws(() => res.incoming, /"incoming" is not granted/); // trigger-only
    assert.throws(() => res.audit.put({ id: '1' }), (e) => e.name === 'ResourceAccessError' && /"read" access to table "audit".*put/.test(e.message));
    assert.throws(() => res.audit.send('x'), /has no method "send"/);
    assert.throws(() => res.payments.publish('x'), TypeError);
    assert.deepEqual(calls, []); // refused before any frame
    assert.deepEqual(await res.orders.get({ id: '7', line: 1 }), { id: '7', line: 1 });
    assert.equal(await res.payments.send({ a: 1 }), null);
    assert.deepEqual(calls, [
      ['orders', 'get', { key: { id: '7', line: 1 } }],
      ['payments', 'send', { body: '{"a":1}', attributes: {}, delay_seconds: 0 }],
    ]);
    assert.equal(res.orders, res.orders); // created once, reused
    delete worker.rpc;
    await assert.rejects(res.events.publish('x'), (e) => e.name === 'ResourceUnavailableError' && /no rpc/.test(e.message));
  } finally {
    if (had) worker.rpc = saved; else delete worker.rpc;
  }
});

// ---------------------------------------------------------------------------- end to end

const E2E_HANDLER = `'use strict';
exports.handler = async (event, context) => {
  const orders = context.resources.orders;
  if (event.path === '/fail') await orders.get({ id: 'boom' });
  await orders.put({ id: '42', total: 12, tags: ['a', 'b'] });
  const item = await orders.get({ id: '42' });
  const missing = await orders.get({ id: 'nope' });
  const images = context.resources['images'];
  await images.put('in/a.bin', Buffer.from([0, 255, 100, 97, 116, 97]), 'application/octet-stream');
  const data = await images.get('in/a.bin');
  let denied = null;
  try { context.resources.secrets; } catch (e) { denied = e.name; }
  let caught = null;
  try { await orders.get({ id: 'boom' }); } catch (e) { caught = [e.name, e.type, e.code]; }
  return { item, missing, data: [...data], isBuffer: Buffer.isBuffer(data), denied, caught };
};
`;

// The runtime's side of the rpc frames, backed by Maps.
class FakeRuntime {
  constructor() { this.table = new Map(); this.bucket = new Map(); this.frames = []; }

  answer(frame) {
    this.frames.push(frame);
    const { rpc, resource, op, args } = frame;
    const okr = (result) => ({ rpc, ok: true, result });
    if (resource === 'orders') {
      if (op === 'get' && args.key.id === 'boom') return { rpc, ok: false, error: { type: 'Exploded', message: 'boom from the runtime' } };
      if (op === 'put') { this.table.set(args.item.id, args.item); return okr(null); }
      if (op === 'get') return okr(this.table.get(args.key.id) || null);
    }
    if (resource === 'images') {
      if (op === 'put') { this.bucket.set(args.key, { data_b64: args.data_b64, content_type: args.content_type }); return okr(null); }
      if (op === 'get') return okr(this.bucket.get(args.key) || null);
    }
    return { rpc, ok: false, error: { type: 'UnknownOp', message: `${resource}.${op}` } };
  }
}

class Worker {
  constructor(pkgRoot) {
    this.proc = spawn(process.execPath, ['_nimbus/local_worker.js'], {
      cwd: pkgRoot,
      env: { ...process.env, NIMBUS_PACKAGE_ROOT: '' },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], // fd 3: runtime -> worker, fd 4: worker -> runtime
    });
    this.stderr = '';
    this.proc.stdout.resume();
    this.proc.stderr.on('data', (b) => { this.stderr += b.toString(); });
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.eof = false;
    this.proc.stdio[4].on('data', (chunk) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0);
        this.frames.push(JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8')));
        this.buf = this.buf.subarray(4 + n);
      }
      this.flush();
    });
    this.proc.stdio[4].on('end', () => { this.eof = true; this.flush(); });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }

  flush() {
    while (this.waiters.length && (this.frames.length || this.eof)) this.waiters.shift()(this.frames.length ? this.frames.shift() : null);
  }

  recv() { return new Promise((resolve) => { this.waiters.push(resolve); this.flush(); }); }

  send(obj) {
    const data = Buffer.from(JSON.stringify(obj));
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(data.length);
    this.proc.stdio[3].write(Buffer.concat([hdr, data]));
  }

  // one invocation, answering the worker's rpc frames from `rt` until the invocation's reply
  async invoke(rt, id, event) {
    this.send({ id, event, deadline_ms: Date.now() + 10000, request_id: `r-${id}` });
    for (;;) {
      const msg = await this.recv();
      assert.ok(msg, `worker exited: ${this.stderr}`);
      if ('rpc' in msg) this.send(rt.answer(msg));
      else return msg;
    }
  }

  close() { this.proc.stdio[3].end(); return this.exited; }
}

test('end to end through a real worker: the handler reaches the runtime over rpc frames', async () => {
  const resources = {
    orders: { type: 'table', access: 'read_write', key: ['id'], native: {} },
    images: { type: 'bucket', access: 'read_write', native: {} },
  };
  const pkg = buildPackage('local', config('local', 'handlers/res_e2e.js', { resources }));
  fs.writeFileSync(path.join(pkg, 'handlers', 'res_e2e.js'), E2E_HANDLER);
  const w = new Worker(pkg);
  try {
    const ready = await w.recv();
    assert.ok(ready && ready.ready === true, `${JSON.stringify(ready)} ${w.stderr}`);
    const rt = new FakeRuntime();
    const http = { type: 'http', method: 'POST', path: '/orders', route: '/orders', path_params: {}, query: {}, headers: {},
      body: null, is_base64: false, source_ip: null };
    let r = await w.invoke(rt, 1, http);
    assert.equal(r.id, 1);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(JSON.parse(r.result.body), {
      item: { id: '42', total: 12, tags: ['a', 'b'] }, missing: null, data: [0, 255, 100, 97, 116, 97], isBuffer: true,
      denied: 'ResourceAccessError', caught: ['ResourceError', 'Exploded', 'Exploded'],
    });
    assert.deepEqual(rt.frames.map((f) => [f.resource, f.op, f.args]), [
      ['orders', 'put', { item: { id: '42', total: 12, tags: ['a', 'b'] } }],
      ['orders', 'get', { key: { id: '42' } }],
      ['orders', 'get', { key: { id: 'nope' } }],
      ['images', 'put', { key: 'in/a.bin', data_b64: 'AP9kYXRh', content_type: 'application/octet-stream' }],
      ['images', 'get', { key: 'in/a.bin' }],
      ['orders', 'get', { key: { id: 'boom' } }],
    ]);
    const ids = rt.frames.map((f) => f.rpc);
    assert.ok(ids.every(Number.isInteger) && new Set(ids).size === ids.length);
    // an uncaught runtime error fails the invocation; the worker goes on serving
    r = await w.invoke(rt, 2, { ...http, path: '/fail' });
    assert.equal(r.ok, false);
    assert.equal(r.error.type, 'ResourceError');
    assert.match(r.error.message, /boom from the runtime/);
    assert.equal((await w.invoke(rt, 3, http)).ok, true);
    assert.equal(await w.close(), 0);
  } finally {
    if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
  }
});
