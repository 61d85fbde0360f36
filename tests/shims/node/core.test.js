'use strict';
// The shared Node.js shim core: handler loading (CJS/ESM), results, context, resources.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { buildPackage, config } = require('./helpers.js');

const root = buildPackage('local', config('local'));
const core = require(path.join(root, '_nimbus', 'core.js'));

test('parseTarget', () => {
  assert.deepEqual(core.parseTarget('payments/charge.js:handler'), ['payments/charge.js', 'handler']);
  assert.deepEqual(core.parseTarget('payments/charge.js:main'), ['payments/charge.js', 'main']);
  assert.deepEqual(core.parseTarget('payments/charge.js'), ['payments/charge.js', 'handler']);
  assert.throws(() => core.parseTarget(':handler'), core.HandlerLoadError);
});

test('loads a CommonJS handler and builds the context', async () => {
  const fn = await core.createFunction({ root });
  assert.equal(fn.name, 'probe');
  assert.equal(fn.provider, 'local');
  assert.ok(fn.loadMs > 0);
  const ctx = fn.context('r-1', Date.now() + 5000);
  assert.deepEqual([ctx.functionName, ctx.requestId, ctx.service, ctx.stage, ctx.provider], ['probe', 'r-1', 'shop', 'dev', 'local']);
  assert.ok(ctx.remainingMs() > 0 && ctx.remainingMs() <= 5000);
  const ctx2 = fn.context();
  assert.ok(ctx2.requestId && ctx2.requestId !== 'r-1');
  assert.ok(ctx2.remainingMs() > 9000 && ctx2.remainingMs() <= 10000);
  assert.equal(fn.context(undefined, Date.now() - 10).remainingMs(), 0);
});

test('loads ESM handlers (.mjs and "type": "module")', async () => {
  const r1 = buildPackage('local', config('local', 'handlers/esm_probe.mjs'));
  const fn = await core.createFunction({ root: r1 });
  assert.deepEqual(await fn.invoke({ type: 'http' }, fn.context()), {
    status: 200, headers: {}, body: { module: 'esm', type: 'http', function_name: 'probe' },
  });
  const r2 = buildPackage('local', config('local', 'esm/handler.js'));
  fs.mkdirSync(path.join(r2, 'esm'));
  fs.writeFileSync(path.join(r2, 'esm', 'package.json'), '{"type":"module"}');
  fs.copyFileSync(path.join(r2, 'handlers', 'esm_probe.mjs'), path.join(r2, 'esm', 'handler.js'));
  const fn2 = await core.createFunction({ root: r2 });
  assert.equal((await fn2.invoke({ type: 'queue' }, fn2.context())).body.type, 'queue');
});

for (const [handler, needle] of [
  ['handlers/missing.js', 'not found'],
  ['handlers/probe.js:nope', 'does not export "nope" (exported functions: handler)'],
  ['handlers/broken.js', 'broken on purpose'],
  ['../outside.js', 'must be relative'],
]) {
  test(`load error: ${handler}`, async () => {
    const r = buildPackage('local', config('local', handler));
    await assert.rejects(core.createFunction({ root: r }), (e) => {
      assert.equal(e.name, 'HandlerLoadError');
      assert.ok(e.message.includes(needle), e.message);
      return true;
    });
  });
}

test('missing function.json', async () => {
  const r = buildPackage('local', config('local'));
  fs.unlinkSync(path.join(r, '_nimbus', 'function.json'));
  await assert.rejects(core.createFunction({ root: r }), /function\.json not found/);
});

test('normalizeHttp', () => {
  const n = core.normalizeHttp;
  assert.deepEqual(n(undefined), { status: 204, headers: {}, body: null, is_base64: false });
  assert.deepEqual(n(null), { status: 204, headers: {}, body: null, is_base64: false });
  assert.deepEqual(n('hi'), { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'hi', is_base64: false });
  assert.deepEqual(n(Buffer.from([0, 255])), { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: 'AP8=', is_base64: true });
  assert.deepEqual(n(new Uint8Array([0, 255])).body, 'AP8=');
  assert.deepEqual(n({ a: [1, 'é'] }), { status: 200, headers: { 'content-type': 'application/json' }, body: '{"a":[1,"é"]}', is_base64: false });
  assert.equal(n([1, 2]).body, '[1,2]');
  assert.deepEqual(n({ status: 201, headers: { 'X-A': 1, 'set-cookie': ['a=1', 'b=2'] }, body: { ok: true } }), {
    status: 201, headers: { 'X-A': '1', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'application/json' }, body: '{"ok":true}', is_base64: false,
  });
  assert.deepEqual(n({ status: 200, headers: { 'Content-Type': 'text/csv' }, body: 'a,b' }).headers, { 'Content-Type': 'text/csv' });
  assert.equal(n({ status: 200, body: 'AAE=', is_base64: true }).is_base64, true);
  assert.equal(n({ status: 404 }).body, null);
  for (const bad of [{ status: '200' }, { status: 99 }, { status: true }]) assert.throws(() => n(bad), core.ResultError);
  assert.throws(() => n(() => 1), core.ResultError);
});

test('normalizeBatch', () => {
  const ev = { type: 'queue', messages: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] };
  assert.deepEqual(core.normalizeBatch(undefined, ev), []);
  assert.deepEqual(core.normalizeBatch({ failed: [] }, ev), []);
  assert.deepEqual(core.normalizeBatch({ failed: ['c', 'a'] }, ev), ['a', 'c']);
  assert.deepEqual(core.normalizeBatch('ignored', ev), []);
  assert.throws(() => core.normalizeBatch({ failed: ['zz'] }, ev), /not a message of this batch/);
  assert.throws(() => core.normalizeBatch({ failed: 'a' }, ev), core.ResultError);
  assert.deepEqual(core.normalizeResult(ev, { failed: ['b'] }), { failed: ['b'] });
  assert.equal(core.normalizeResult({ type: 'schedule' }, 42), null);
});

test('rfc3339 and routes', () => {
  assert.equal(core.rfc3339('2015-10-08T16:53:06Z'), '2015-10-08T16:53:06Z');
  assert.equal(core.rfc3339('2021-02-05T04:06:14.109Z'), '2021-02-05T04:06:14.109Z');
  assert.equal(core.rfc3339('2026-01-02T03:04:05.678000+01:00'), '2026-01-02T02:04:05.678Z');
  assert.equal(core.rfc3339(0), '1970-01-01T00:00:00Z');
  const trig = [{ type: 'http', method: 'GET', path: '/orders/{id}' }, { type: 'http', method: 'ANY', path: '/files/{path+}' }];
  assert.deepEqual(core.matchRoute(trig, 'GET', '/orders/42'), ['/orders/{id}', { id: '42' }]);
  assert.deepEqual(core.matchRoute(trig, 'POST', '/orders/42'), [null, {}]);
  assert.deepEqual(core.matchRoute(trig, 'PUT', '/files/a/b.txt'), ['/files/{path+}', { path: 'a/b.txt' }]);
  assert.deepEqual(core.matchRoute(trig, 'GET', '/nope'), [null, {}]);
});

test('resolveResource order', () => {
  const cfg = {
    resources: { a: { type: 'queue', native: { arn: 'arn:x:q1' } }, b: { type: 'queue', native: {} } },
    triggers: [{ type: 'queue', resource: 'a' }, { type: 'queue', resource: 'b' }],
  };
  assert.deepEqual(core.resolveResource(cfg, ['queue'], ['arn:x:q1'], 'q1'), ['a', 'queue']);
  assert.deepEqual(core.resolveResource(cfg, ['queue'], ['arn:x:other'], 'other'), ['other', 'queue']);
  const one = { resources: { b: { type: 'queue', native: {} } }, triggers: [{ type: 'queue', resource: 'b' }] };
  assert.deepEqual(core.resolveResource(one, ['queue'], ['arn:x:other'], 'other'), ['b', 'queue']);
  assert.deepEqual(core.resolveResource({}, ['topic', 'queue'], ['t'], 't'), ['t', 'topic']);
});

test('context.resources mapping and `uses` enforcement', async () => {
  const cfg = {
    function: 'place-order',
    resources: {
      orders: { type: 'table', access: 'read_write', key: ['id'], native: {} },
      audit: { type: 'table', access: 'read', key: ['id'], native: {} },
      writer: { type: 'table', access: 'write', key: ['id'], native: {} },
      payments: { type: 'queue', access: null, native: {} },
      events: { type: 'topic', access: 'publish', native: {} },
      weird: { type: 'table', access: 'admin', native: {} },
    },
  };
  const res = core.makeResources(cfg, 'test-provider');
  assert.deepEqual(Object.keys(res), ['audit', 'events', 'orders', 'weird', 'writer']);
  assert.ok('orders' in res && !('payments' in res) && !('nope' in res));
  assert.throws(() => res.nope, (e) => e.name === 'ResourceAccessError' &&
    e.message.includes('"nope" is not granted to function "place-order"') && e.message.includes('uses'));
  assert.throws(() => res.payments, /"payments" is not granted/);
  assert.throws(() => res.orders, (e) => e.name === 'ResourceUnavailableError' &&
    e.message.includes('"orders" (table)') && e.message.includes('"test-provider"'));
  assert.equal(await Promise.resolve(res).then((r) => r === res), true); // not a thenable

  const made = [];
  const items = new Map();
  core.registerResourceFactory('test-provider', (name, spec) => {
    made.push(name);
    if (spec.type !== 'table') return null;
    return {
      async get(key) { return items.get(key.id) || null; },
      async put(item) { items.set(item.id, item); },
      async delete(key) { items.delete(key.id); },
      async query() { return []; },
      async scan() { return [...items.values()]; },
    };
  });
  const orders = res.orders;
  assert.equal(res.orders, orders);
  assert.deepEqual(made, ['orders']);
  await orders.put({ id: '1', total: 3 });
  assert.deepEqual(await orders.get({ id: '1' }), { id: '1', total: 3 });
  assert.deepEqual(await res.audit.scan(), [{ id: '1', total: 3 }]);
  assert.throws(() => res.audit.put({ id: '2' }), (e) => e.name === 'ResourceAccessError' && /"read" access to table "audit".*put/.test(e.message));
  await res.writer.put({ id: '3' });
  await res.writer.delete({ id: '3' });
  assert.throws(() => res.writer.get({ id: '3' }), /"write" access to table "writer".*get/);
  assert.throws(() => orders.send('x'), /has no method "send"/);
  assert.throws(() => res.events, /provider "test-provider" has no topic client/);
  assert.throws(() => res.weird, /unknown access level "admin"/);
});

test('the routing table through matchRoute (tests/routing)', () => {
  // Each function's http triggers from the routing app's manifest (flow-style lines only).
  const manifest = fs.readFileSync(path.join(__dirname, '..', '..', 'routing', 'nimbus.yaml'), 'utf8');
  const triggers = {};
  let fn = null;
  for (const line of manifest.split('\n')) {
    const f = /^ {2}([a-z][a-z0-9-]*):/.exec(line);
    if (f) fn = f[1];
    const h = /http: \{ method: (\w+), path: (?:"([^"]+)"|([^\s}]+)) \}/.exec(line);
    if (h && fn) (triggers[fn] = triggers[fn] || []).push({ type: 'http', method: h[1], path: h[2] || h[3] });
  }
  const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'routing', 'table.json'), 'utf8'));
  const served = table.requests.filter((r) => r.function);
  assert.ok(served.length >= 10 && Object.keys(triggers).length >= 5);
  for (const r of served) {
    assert.deepEqual(core.matchRoute(triggers[r.function], r.method, r.path), [r.route, r.params], `${r.method} ${r.path}`);
  }
  // HEAD is served by a GET route only when nothing takes HEAD itself
  const get = [{ type: 'http', method: 'GET', path: '/a' }];
  assert.deepEqual(core.matchRoute(get, 'HEAD', '/a'), ['/a', {}]);
  assert.deepEqual(core.matchRoute(get, 'HEAD', '/a?x=1'), ['/a', {}]);
  assert.deepEqual(core.matchTemplate('/a/{p+}', '/a/x%2Fy/z'), { p: 'x/y/z' });
  assert.deepEqual(core.matchTemplate('/a/{id}', '/a/x%2Fy'), { id: 'x/y' }, 'an encoded / stays in its segment');
  assert.equal(core.matchTemplate('/a/{p+}', '/a'), null, 'a greedy parameter takes one segment at least');
  assert.deepEqual(core.matchTemplate('/a/{p+}', '/a//b/'), { p: 'b' }, 'empty segments are ignored');
});
