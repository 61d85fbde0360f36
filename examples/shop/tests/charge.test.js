'use strict';
// Unit tests of payments/charge.js, run with `node --test examples/shop/tests/`.
// The handler is called directly with neutral queue events and a context whose `resources`
// hold an in-memory fake of the contract's table client (async get/put/delete/query/scan).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const { handler } = require(path.join(__dirname, '..', 'payments', 'charge.js'));

class FakeTable {
  constructor(keyField) {
    this.keyField = keyField;
    this.items = new Map();
    this.puts = 0;
  }
  async get(key) {
    const item = this.items.get(key[this.keyField]);
    return item === undefined ? null : structuredClone(item);
  }
  async put(item) {
    this.puts += 1;
    this.items.set(item[this.keyField], JSON.parse(JSON.stringify(item)));
  }
  async delete(key) {
    this.items.delete(key[this.keyField]);
  }
  async query(key, limit = null) {
    const rows = [...this.items.values()].filter((i) => Object.entries(key).every(([k, v]) => i[k] === v));
    return limit == null ? rows : rows.slice(0, limit);
  }
  async scan(limit = null) {
    const rows = [...this.items.values()].map((i) => structuredClone(i));
    return limit == null ? rows : rows.slice(0, limit);
  }
}

function makeContext(resources) {
  const deadlineMs = Date.now() + 10_000;
  return {
    functionName: 'charge-payment',
    requestId: 'req-1',
    service: 'shop',
    stage: 'test',
    provider: 'local',
    deadlineMs,
    remainingMs: () => Math.max(0, deadlineMs - Date.now()),
    resources,
  };
}

function queueEvent(messages) {
  return {
    type: 'queue',
    source: 'payments',
    messages: messages.map(([id, body, receiveCount = 1]) => ({
      id,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      attributes: {},
      receive_count: receiveCount,
    })),
  };
}

function seed(orders, ...ids) {
  for (const id of ids) {
    orders.items.set(id, { id, items: [{ sku: 'mug', qty: 1 }], email: 'a@b.c', amount: 10, status: 'placed', created_at: '2026-11-24T12:00:00Z' });
  }
}

const KEY = 'sk_test_shop_0123456789';

// Silence the handler's per-message log lines during tests (kept, to check the key is never
// printed), and give it the payment provider's key, as the platform does from the secret.
let logged = [];
test.beforeEach((t) => {
  logged = [];
  t.mock.method(console, 'log', (...args) => logged.push(args.join(' ')));
  process.env.PAYMENT_API_KEY = KEY;
});
test.afterEach(() => {
  assert.ok(!logged.some((l) => l.includes(KEY)), 'the key was printed');
});

test('good messages mark their orders paid; no failures means undefined', async () => {
  const orders = new FakeTable('id');
  seed(orders, 'o1', 'o2');
  const res = await handler(queueEvent([['m1', { order_id: 'o1', amount: 10 }], ['m2', { order_id: 'o2', amount: 0.5 }]]), makeContext({ orders }));
  assert.equal(res, undefined);
  for (const id of ['o1', 'o2']) {
    const order = await orders.get({ id });
    assert.equal(order.status, 'paid');
    assert.match(order.paid_at, /^\d{4}-\d\d-\d\dT/);
    assert.equal(order.email, 'a@b.c'); // rest of the order kept
    assert.match(order.payment_ref, /^[0-9a-f]{24}$/);
    assert.ok(!JSON.stringify(order).includes(KEY), 'the key is not stored');
  }
  // The reference is signed with the key: the same payment with another key, another reference.
  const ref = (await orders.get({ id: 'o1' })).payment_ref;
  process.env.PAYMENT_API_KEY = 'sk_test_other_key';
  const again = new FakeTable('id');
  seed(again, 'o1');
  await handler(queueEvent([['m1', { order_id: 'o1', amount: 10 }]]), makeContext({ orders: again }));
  assert.notEqual((await again.get({ id: 'o1' })).payment_ref, ref);
});

test('without the payment key nothing is charged and every message is retried', async () => {
  delete process.env.PAYMENT_API_KEY;
  const orders = new FakeTable('id');
  seed(orders, 'o1');
  const res = await handler(queueEvent([['m1', { order_id: 'o1', amount: 10 }], ['m2', 'not json']]), makeContext({ orders }));
  assert.deepEqual(res, { failed: ['m1', 'm2'] });
  assert.equal((await orders.get({ id: 'o1' })).status, 'placed');
  assert.equal(orders.puts, 0);
  assert.ok(logged.some((l) => l.includes('no payment provider key')), logged.join('\n'));
});

test('partial batch failure: only poison and failing messages are reported', async () => {
  const orders = new FakeTable('id');
  seed(orders, 'o1', 'o2', 'o3');
  const res = await handler(queueEvent([
    ['m1', { order_id: 'o1', amount: 10 }],
    ['m2', { order_id: 'o2', amount: 0 }],     // poison: zero
    ['m3', { order_id: 'o3', amount: -5 }],    // poison: negative
    ['m4', 'this is not json'],                // poison: unparseable
    ['m5', { order_id: 'missing', amount: 3 }], // unknown order
    ['m6', { order_id: 'o2', amount: '10' }],  // poison: not a number
  ]), makeContext({ orders }));
  assert.deepEqual(res, { failed: ['m2', 'm3', 'm4', 'm5', 'm6'] });
  assert.equal((await orders.get({ id: 'o1' })).status, 'paid');
  assert.equal((await orders.get({ id: 'o2' })).status, 'placed');
  assert.equal((await orders.get({ id: 'o3' })).status, 'placed');
  assert.equal(orders.items.has('missing'), false);
});

test('poison message fails on every receive', async () => {
  const orders = new FakeTable('id');
  seed(orders, 'o1');
  for (let receive = 1; receive <= 5; receive += 1) {
    const res = await handler(queueEvent([['m1', { order_id: 'o1', amount: 0 }, receive]]), makeContext({ orders }));
    assert.deepEqual(res, { failed: ['m1'] }, `receive ${receive}`);
  }
  assert.equal((await orders.get({ id: 'o1' })).status, 'placed');
  assert.equal(orders.puts, 0);
});

test('flaky message fails on its first receive and succeeds on the retry', async () => {
  const orders = new FakeTable('id');
  seed(orders, 'o1', 'o2');
  const ctx = makeContext({ orders });
  const first = await handler(queueEvent([
    ['m1', { order_id: 'o1', amount: 10, flaky: true }, 1],
    ['m2', { order_id: 'o2', amount: 10 }, 1],
  ]), ctx);
  assert.deepEqual(first, { failed: ['m1'] });
  assert.equal((await orders.get({ id: 'o1' })).status, 'placed');
  assert.equal((await orders.get({ id: 'o2' })).status, 'paid');

  const retry = await handler(queueEvent([['m1', { order_id: 'o1', amount: 10, flaky: true }, 2]]), ctx);
  assert.equal(retry, undefined);
  assert.equal((await orders.get({ id: 'o1' })).status, 'paid');
});

test('redelivery of an already paid order is idempotent', async () => {
  const orders = new FakeTable('id');
  seed(orders, 'o1');
  const ctx = makeContext({ orders });
  assert.equal(await handler(queueEvent([['m1', { order_id: 'o1', amount: 10 }]]), ctx), undefined);
  const paidAt = (await orders.get({ id: 'o1' })).paid_at;
  assert.equal(await handler(queueEvent([['m1', { order_id: 'o1', amount: 10 }, 2]]), ctx), undefined);
  assert.equal(orders.puts, 1);
  assert.equal((await orders.get({ id: 'o1' })).paid_at, paidAt);
});

test('a table error fails only that message', async () => {
  const orders = new FakeTable('id');
  seed(orders, 'o1', 'o2');
  const realPut = orders.put.bind(orders);
  orders.put = async (item) => {
    if (item.id === 'o1') throw new Error('throttled');
    return realPut(item);
  };
  const res = await handler(queueEvent([['m1', { order_id: 'o1', amount: 10 }], ['m2', { order_id: 'o2', amount: 10 }]]), makeContext({ orders }));
  assert.deepEqual(res, { failed: ['m1'] });
  assert.equal((await orders.get({ id: 'o2' })).status, 'paid');
});

test('empty batch succeeds', async () => {
  assert.equal(await handler({ type: 'queue', source: 'payments', messages: [] }, makeContext({ orders: new FakeTable('id') })), undefined);
});
