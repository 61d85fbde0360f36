'use strict';
// GCP resource clients (Node.js, _nimbus/gcp_resources.js) against Google's Firestore and Pub/Sub
// emulators and fake-gcs-server, started for this file by crates/nimbus-gcp/tests/support/gcp_env.py
// (from the test venv: .tools/venv, or next to NIMBUS_TEST_PYTHON) and stopped when it ends.
//
// Every op of every client runs through Google's client libraries (as inside Cloud Functions); its
// effect is checked with the emulators' own REST APIs, not with the clients.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { ROOT, TOOLS_NODE, buildPackage, config } = require('./helpers.js');

const PROJECT = 'nimbus-shim-test';
const KEY = ['customer', 'id'];

function venvPython() {
  return process.env.NIMBUS_TEST_PYTHON || path.join(ROOT, '.tools', 'venv', 'bin', 'python');
}

let envProc = null;
let urls = null;

// Starts the emulators; resolves with their URLs, or with `{missing}` (how to install the tool):
// every test then fails with that message, never skips.
function startEmulators() {
  return new Promise((resolve, reject) => {
    const script = path.join(ROOT, 'crates', 'nimbus-gcp', 'tests', 'support', 'gcp_env.py');
    envProc = spawn(venvPython(), [script, '--with', 'storage,pubsub,firestore'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    envProc.on('error', reject);
    envProc.stdout.on('data', (b) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    envProc.on('exit', (code) => reject(new Error(`gcp_env.py exited with ${code}: ${out}`)));
  });
}

test.before(async () => {
  urls = await startEmulators();
  if (urls.missing) return;
  Object.assign(process.env, {
    FIRESTORE_EMULATOR_HOST: urls.firestore.replace('http://', ''),
    PUBSUB_EMULATOR_HOST: urls.pubsub.replace('http://', ''),
    STORAGE_EMULATOR_HOST: urls.storage,
    NIMBUS_GCP_PROJECT: PROJECT,
  });
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
});

test.after(async () => {
  if (shim) await shim.gr.resetClients();
  if (envProc && envProc.exitCode === null) {
    const exited = new Promise((r) => envProc.on('exit', r));
    envProc.stdin.end(); // the launcher stops every emulator when its stdin closes
    await exited;
  }
});

// A test that needs the emulators fails without them, with the install command.
function needEmulators() {
  if (!urls) throw new Error('the GCP emulators did not start (crates/nimbus-gcp/tests/support/gcp_env.py)');
  if (urls.missing) throw new Error(urls.missing);
}

async function rest(base, method, urlPath, body) {
  const r = await fetch(base + urlPath, {
    method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

function resourcesConfig(access = {}) {
  return {
    orders: { type: 'table', access: access.orders || 'read_write', key: KEY, native: {} },
    refunds: { type: 'queue', access: 'send', native: {} },
    'order-events': { type: 'topic', access: 'publish', native: {} },
    images: { type: 'bucket', access: access.images || 'read_write', native: {} },
  };
}

let shim = null;
function loadShim() {
  if (!shim) {
    const root = buildPackage('gcp', config('gcp', 'handlers/probe.js', { resources: resourcesConfig() }));
    fs.symlinkSync(TOOLS_NODE, path.join(root, 'node_modules'), 'dir'); // as `npm install` in Cloud Build
    shim = {
      core: require(path.join(root, '_nimbus', 'core.js')),
      gcp: require(path.join(root, '_nimbus', 'gcp.js')),
      gr: require(path.join(root, '_nimbus', 'gcp_resources.js')),
    };
  }
  return shim;
}

function resources(access) {
  const { core } = loadShim();
  return core.makeResources({ function: 'probe', resources: resourcesConfig(access) }, 'gcp');
}

// A fresh set of resources in the emulators, with the env vars pointing at them.
async function world() {
  const tag = crypto.randomBytes(4).toString('hex');
  const w = {
    collection: `orders-${tag}`, queueTopic: `projects/${PROJECT}/topics/refunds-${tag}`,
    topic: `projects/${PROJECT}/topics/order-events-${tag}`, bucket: `images-${tag}`,
  };
  for (const t of [w.queueTopic, w.topic]) {
    assert.equal((await rest(urls.pubsub, 'PUT', `/v1/${t}`, {})).status, 200);
    assert.equal((await rest(urls.pubsub, 'PUT', `/v1/${t.replace('/topics/', '/subscriptions/')}-check`, { topic: t })).status, 200);
  }
  assert.equal((await rest(urls.storage, 'POST', `/storage/v1/b?project=${PROJECT}`, { name: w.bucket })).status, 200);
  Object.assign(process.env, {
    NIMBUS_RESOURCE_ORDERS_COLLECTION: w.collection,
    NIMBUS_RESOURCE_ORDERS_DATABASE: `projects/${PROJECT}/databases/(default)`,
    NIMBUS_RESOURCE_REFUNDS_TOPIC: w.queueTopic,
    NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC: w.topic,
    NIMBUS_RESOURCE_IMAGES_NAME: w.bucket,
  });
  return w;
}

async function documentOf(w, id) {
  const r = await rest(urls.firestore, 'GET', `/v1/projects/${PROJECT}/databases/(default)/documents/${w.collection}/${encodeURIComponent(id)}`);
  return r.status === 200 ? r.body : null;
}

async function pull(topic, n = 1) {
  const sub = `/v1/${topic.replace('/topics/', '/subscriptions/')}-check:pull`;
  const got = [];
  for (let i = 0; i < 20 && got.length < n; i++) {
    const r = await rest(urls.pubsub, 'POST', sub, { maxMessages: 10 });
    got.push(...((r.body || {}).receivedMessages || []).map((m) => m.message));
  }
  return got;
}

test('table put/get/delete', async (t) => {
  needEmulators();
  const w = await world();
  const orders = resources().orders;
  const item = {
    customer: 'c1', id: 'o/1', total: 12, price: 3.25, paid: true, note: null,
    lines: [{ sku: 'a', qty: 2 }], meta: { gift: false, tags: ['x', 'y'] },
  };
  assert.equal(await orders.put(item), null);
  const f = (await documentOf(w, 'c1,o%2F1')).fields; // the same document id as the Python clients'
  assert.deepEqual(f.total, { integerValue: '12' });
  assert.deepEqual(f.price, { doubleValue: 3.25 });
  assert.deepEqual(f.paid, { booleanValue: true });
  assert.deepEqual(f.note, { nullValue: null });
  assert.deepEqual(await orders.get({ customer: 'c1', id: 'o/1' }), item);
  assert.equal(await orders.get({ customer: 'c1', id: 'nope' }), null);
  assert.equal(await orders.delete({ customer: 'c1', id: 'o/1' }), null);
  assert.equal(await documentOf(w, 'c1,o%2F1'), null);
  assert.equal(await orders.get({ customer: 'c1', id: 'o/1' }), null);
});

test('table query and scan', async (t) => {
  needEmulators();
  await world();
  const orders = resources().orders;
  for (let i = 0; i < 5; i++) await orders.put({ customer: 'c1', id: `o${i}`, n: i });
  await orders.put({ customer: 'c2', id: 'o9', n: 9 });
  const items = await orders.query({ customer: 'c1' });
  assert.deepEqual(items.map((i) => i.id), ['o0', 'o1', 'o2', 'o3', 'o4']);
  assert.equal(items[2].n, 2);
  assert.deepEqual((await orders.query({ customer: 'c1' }, 3)).map((i) => i.id), ['o0', 'o1', 'o2']);
  assert.deepEqual(await orders.query({ customer: 'nobody' }), []);
  assert.deepEqual((await orders.scan()).map((i) => i.id).sort(), ['o0', 'o1', 'o2', 'o3', 'o4', 'o9']);
  assert.equal((await orders.scan(4)).length, 4);
  await assert.rejects(orders.get('c1'), TypeError);
  await assert.rejects(orders.put({ customer: 'c1' }), /lacks the table's key field/);
  await assert.rejects(async () => resources({ orders: 'read' }).orders.put({ customer: 'c1', id: 'o1' }), /does not allow put/);
});

test('document ids are the Python clients\' ids', () => {
  const { gr } = loadShim();
  assert.equal(gr.documentId({ id: 'o-1' }, ['id']), 'o-1');
  assert.equal(gr.documentId({ id: 'a.b_c/é' }, ['id']), 'a%2Eb%5Fc%2F%C3%A9');
  assert.equal(gr.documentId({ id: 42 }, ['id']), '42');
  assert.equal(gr.documentId({ id: 2.0 }, ['id']), '2');
  assert.equal(gr.documentId({ c: 'x', i: 7 }, ['c', 'i']), 'x,7');
  assert.equal(gr.documentId({ b: '2', a: '1' }, []), '1,2');
  assert.throws(() => gr.documentId({ id: true }, ['id']), /must be a string or a number/);
  assert.throws(() => gr.documentId({ id: '' }, ['id']), /must not be empty/);
});

test('queue send publishes to the queue\'s topic; topic publish', async (t) => {
  needEmulators();
  const w = await world();
  const res = resources();
  const mid = await res.refunds.send({ order: 'o1', amount: 5 }, { reason: 'damaged' });
  const [m] = await pull(w.queueTopic);
  assert.equal(m.messageId, mid);
  assert.deepEqual(JSON.parse(Buffer.from(m.data, 'base64').toString()), { order: 'o1', amount: 5 });
  assert.deepEqual(m.attributes, { reason: 'damaged' });
  await assert.rejects(res.refunds.send('x', null, 5), (e) => e.type === 'BadRequest' && /cannot delay/.test(e.message));
  const pid = await res['order-events'].publish('placed', { kind: 'placed' });
  const [p] = await pull(w.topic);
  assert.equal(p.messageId, pid);
  assert.equal(Buffer.from(p.data, 'base64').toString(), 'placed');
});

test('bucket ops', async (t) => {
  needEmulators();
  const w = await world();
  const images = resources().images;
  const png = Buffer.from([...Array(256).keys()]);
  assert.equal(await images.put('a/one.png', png, 'image/png'), null);
  await images.put('a/two.txt', 'héllo');
  await images.put('b/three.txt', Buffer.from('3'));
  const meta = (await rest(urls.storage, 'GET', `/storage/v1/b/${w.bucket}/o/a%2Fone.png`)).body;
  assert.equal(meta.contentType, 'image/png');
  assert.equal(Number(meta.size), png.length);
  assert.deepEqual(await images.get('a/one.png'), png);
  assert.equal((await images.get('a/two.txt')).toString(), 'héllo');
  assert.equal(await images.get('missing'), null);
  assert.deepEqual(await images.list(), ['a/one.png', 'a/two.txt', 'b/three.txt']);
  assert.deepEqual(await images.list('a/'), ['a/one.png', 'a/two.txt']);
  assert.equal(await images.delete('a/one.png'), null);
  assert.equal(await images.delete('a/one.png'), null); // a missing object: fine
  assert.equal(await images.get('a/one.png'), null);
  await assert.rejects(images.put('k', 42), TypeError);
  await assert.rejects(async () => resources({ images: 'write' }).images.get('a/two.txt'), /does not allow get/);
});

test('Google errors become ResourceErrors; a missing variable is clear', async (t) => {
  needEmulators();
  const w = await world();
  const { gr } = loadShim();
  const bucket = gr.makeClient('images', { type: 'bucket' }, { env: { NIMBUS_RESOURCE_IMAGES_NAME: `no-such-${w.bucket}` } });
  await assert.rejects(bucket.get('k'), (e) => e instanceof gr.ResourceError && e.type === 'NotFound' && /does not exist/.test(e.message));
  const topic = gr.makeClient('order-events', { type: 'topic' }, { env: { NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC: `${w.topic}-gone` } });
  await assert.rejects(topic.publish('x'), (e) => e.type === 'NotFound' && e.gcpCode === 'NOT_FOUND' && e.op === 'publish');
  const unset = gr.makeClient('order-events', { type: 'topic' }, { env: {} });
  await assert.rejects(unset.publish('x'), (e) => e.type === 'NotConfigured' && /NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC is not set/.test(e.message));
  const native = gr.makeClient('order-events', { type: 'topic', native: { topic: w.topic } }, { env: {} });
  const mid = await native.publish('via native');
  assert.deepEqual((await pull(w.topic)).map((m) => m.messageId), [mid]);
  assert.equal(gr.errorType('PERMISSION_DENIED'), 'AccessDenied');
  assert.equal(gr.errorType(null, 429), 'Throttled');
  assert.equal(gr.envVar('order-events', 'TOPIC'), 'NIMBUS_RESOURCE_ORDER_EVENTS_TOPIC');
});
