'use strict';
// Azure resource clients (Node.js, _nimbus/azure_resources.js) against a real Azurite and a real
// Cosmos DB API server.
//
// Queues and buckets run against Azurite, tables against @vercel/cosmosdb-server (npm, started
// through tests/support/cosmos_server.js), through Microsoft's libraries; every effect is checked
// with the test's own clients. The server's certificate is made at start, after this process
// read NODE_EXTRA_CA_CERTS, so TLS verification is off in this test process (tests only; the
// Rust tests run the Node apps with NODE_EXTRA_CA_CERTS instead). Service Bus has no emulator here: the topic client is
// checked against a recording stand-in of ServiceBusClient (what nimbus sends, not Service Bus).
// Ends with a handler run through the Azure HTTP adapter with @azure/functions' HttpRequest.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { TOOLS_NODE, buildPackage, config, freePort, Server, requireTool, sleep } = require('./helpers.js');

const cosmos = requireTool('@azure/cosmos');
const blobs = requireTool('@azure/storage-blob');
const queues = requireTool('@azure/storage-queue');
const functions = requireTool('@azure/functions');

const ACCOUNT = 'devstoreaccount1';
// Azurite's published development key.
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

let azurite = null;
let conn = null;
let cosmosServer = null;
let cosmosConn = null;
// The key a client addresses the Cosmos DB API server with (it checks none; the SDK needs one).
const COSMOS_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

test.before(async () => {
  assert.ok(fs.existsSync(path.join(TOOLS_NODE, '@vercel', 'cosmosdb-server')),
    `@vercel/cosmosdb-server is not installed in ${TOOLS_NODE}: run scripts/test (tests/package.json)`);
  const cosmosPort = await freePort();
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'nimbus-cosmos-'));
  cosmosServer = await Server.start([process.execPath, path.join(__dirname, '..', '..', 'support', 'cosmos_server.js'), String(cosmosPort), dir],
    { cwd: dir, env: { ...process.env, NIMBUS_TEST_NODE_MODULES: TOOLS_NODE }, port: cosmosPort });
  cosmosConn = `AccountEndpoint=https://127.0.0.1:${cosmosPort}/;AccountKey=${COSMOS_KEY};`;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const ports = { blob: await freePort(), queue: await freePort(), table: await freePort() };
  const bin = path.join(TOOLS_NODE, '.bin', 'azurite');
  assert.ok(fs.existsSync(bin), `azurite is not installed at ${bin}: run scripts/test (tests/package.json)`);
  azurite = await Server.start([bin, '--blobHost', '127.0.0.1', '--blobPort', String(ports.blob), '--queueHost', '127.0.0.1',
    '--queuePort', String(ports.queue), '--tableHost', '127.0.0.1', '--tablePort', String(ports.table),
    '--inMemoryPersistence', '--disableTelemetry', '--skipApiVersionCheck', '--loose'], { cwd: TOOLS_NODE, env: process.env, port: ports.table });
  conn = `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};` +
    Object.entries(ports).map(([s, p]) => `${s[0].toUpperCase()}${s.slice(1)}Endpoint=http://127.0.0.1:${p}/${ACCOUNT};`).join('');
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      await blobs.BlobServiceClient.fromConnectionString(conn).getProperties();
      await queues.QueueServiceClient.fromConnectionString(conn).getProperties();
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`azurite did not answer: ${e}\n${azurite.output}`);
      await sleep(200);
    }
  }
});

test.after(async () => {
  if (shim) await shim.ar.resetClients();
  if (azurite) await azurite.stop();
  if (cosmosServer) await cosmosServer.stop();
});

let shim = null;
function loadShim() {
  if (!shim) {
    const root = buildPackage('azure', config('azure', 'handlers/probe.js'));
    fs.symlinkSync(TOOLS_NODE, path.join(root, 'node_modules'), 'dir');
    shim = {
      root,
      az: require(path.join(root, '_nimbus', 'azure.js')),
      ar: require(path.join(root, '_nimbus', 'azure_resources.js')),
    };
  }
  return shim;
}

async function world() {
  const tag = crypto.randomBytes(4).toString('hex');
  const w = { container: `images-${tag}`, queue: `payments-${tag}`, table: 'orders', database: `shop-${tag}` };
  w.blob = blobs.BlobServiceClient.fromConnectionString(conn);
  w.queues = queues.QueueServiceClient.fromConnectionString(conn);
  await w.blob.createContainer(w.container);
  await w.queues.createQueue(w.queue);
  const { database } = await new cosmos.CosmosClient(cosmosConn).databases.create({ id: w.database });
  // As the template creates it: partition key /pk, TTL on without a default.
  const { container } = await database.containers.create({ id: w.table, partitionKey: { paths: ['/pk'] }, defaultTtl: -1 });
  w.orders = container;
  w.document = async (id, pk) => (await container.item(id, pk).read()).resource ?? null;
  w.env = {
    NIMBUS_AZURE_STORAGE_CONNECTION_STRING: conn, NIMBUS_AZURE_COSMOS_CONNECTION_STRING: cosmosConn,
    NIMBUS_AZURE_COSMOS_DATABASE: w.database, NIMBUS_RESOURCE_IMAGES_NAME: w.container,
    NIMBUS_RESOURCE_PAYMENTS_NAME: w.queue, NIMBUS_RESOURCE_ORDERS_NAME: w.table,
  };
  return w;
}

const spec = (type, key = null, access = 'read_write') => ({ type, access, native: {}, ...(key ? { key } : {}) });

test('table round-trips JSON items by partition and sort key', async () => {
  const { ar } = loadShim();
  const w = await world();
  const t = ar.makeClient('orders', spec('table', ['customer', 'id']), null, { env: w.env });
  const item = { customer: 'c/1#?', id: 7, total: 12.5, tags: ['a', 'b'], ship: { to: 'x' }, paid: null };
  await t.put(item);
  assert.deepEqual(await t.get({ customer: 'c/1#?', id: 7 }), item);
  assert.equal(await t.get({ customer: 'c/1#?', id: 8 }), null);
  await t.put({ customer: 'c/1#?', id: 8, total: 1 });
  await t.put({ customer: 'other', id: 1 });
  assert.deepEqual((await t.query({ customer: 'c/1#?' })).map((i) => i.id), [7, 8]);
  assert.equal((await t.query({ customer: 'c/1#?' }, 1)).length, 1);
  assert.equal((await t.scan()).length, 3);
  // What Cosmos DB holds: the same layout as the Python client.
  let doc = await w.document('7', 'c%2F1%23%3F');
  assert.deepEqual([doc.item, doc.key, doc.op, doc.old], [item, { customer: 'c/1#?', id: 7 }, 'insert', null]);
  await t.put({ ...item, total: 13 });
  doc = await w.document('7', 'c%2F1%23%3F');
  assert.deepEqual([doc.op, doc.old, doc.item.total], ['modify', item, 13]);
  // Deletes are tombstones that reads never return.
  await t.delete({ customer: 'c/1#?', id: 7 });
  doc = await w.document('7', 'c%2F1%23%3F');
  assert.deepEqual([doc.deleted, doc.ttl, doc.op, doc.item, doc.old.total], [true, 3600, 'remove', null, 13]);
  await t.delete({ customer: 'c/1#?', id: 7 });
  assert.equal((await w.document('7', 'c%2F1%23%3F'))._etag, doc._etag, 'deleting what is gone writes nothing');
  assert.equal(await t.get({ customer: 'c/1#?', id: 7 }), null);
  assert.deepEqual((await t.query({ customer: 'c/1#?' })).map((i) => i.id), [8]);
  assert.equal((await t.scan()).length, 2);
  await t.put(item);
  assert.deepEqual([(await w.document('7', 'c%2F1%23%3F')).op, await t.get({ customer: 'c/1#?', id: 7 })], ['insert', item]);
  const missing = ar.makeClient('orders', spec('table', ['id']), null, { env: { ...w.env, NIMBUS_RESOURCE_ORDERS_NAME: `missing${w.table}` } });
  await assert.rejects(missing.put({ id: '1' }), (e) => e.type === 'NotFound' && e.op === 'put');
});

test('queue send is Base64 with an envelope for attributes', async () => {
  const { ar, az } = loadShim();
  const w = await world();
  const q = ar.makeClient('payments', spec('queue', null, 'send'), null, { env: w.env });
  const plain = await q.send({ order: 42 });
  const withAttrs = await q.send('hi', { kind: 'card' });
  const got = await w.queues.getQueueClient(w.queue).receiveMessages({ numberOfMessages: 10 });
  const texts = Object.fromEntries(got.receivedMessageItems.map((m) => [m.messageId, Buffer.from(m.messageText, 'base64').toString()]));
  assert.equal(texts[plain], '{"order":42}');
  assert.deepEqual(JSON.parse(texts[withAttrs]), { nimbus: 1, body: 'hi', attributes: { kind: 'card' } });
  const event = az.queueEvent(texts[withAttrs], { triggerMetadata: { id: withAttrs, dequeueCount: 1 } }, config('azure'), 'payments');
  assert.equal(event.messages[0].body, 'hi');
  assert.deepEqual(event.messages[0].attributes, { kind: 'card' });
});

test('bucket put, get, list, delete', async () => {
  const { ar } = loadShim();
  const w = await world();
  const b = ar.makeClient('images', spec('bucket'), null, { env: w.env });
  await b.put('uploads/a b.png', Buffer.from([0x89, 0x50]), 'image/png');
  await b.put('uploads/c.txt', 'text');
  await b.put('other.txt', 'x');
  assert.deepEqual(await b.get('uploads/a b.png'), Buffer.from([0x89, 0x50]));
  assert.equal(await b.get('nope'), null);
  assert.deepEqual(await b.list('uploads/'), ['uploads/a b.png', 'uploads/c.txt']);
  const props = await w.blob.getContainerClient(w.container).getBlobClient('uploads/a b.png').getProperties();
  assert.equal(props.contentType, 'image/png');
  await b.delete('uploads/c.txt');
  await b.delete('uploads/c.txt');
  assert.deepEqual(await b.list(), ['other.txt', 'uploads/a b.png']);
});

test('topic publish sends a Service Bus message (recording stand-in)', async () => {
  const { ar } = loadShim();
  const sent = [];
  const bus = { createSender: (topic) => ({ sendMessages: async (m) => sent.push([topic, m]), close: async () => {} }) };
  const t = ar.makeClient('order-events', spec('topic', null, 'publish'), null, { env: { NIMBUS_RESOURCE_ORDER_EVENTS_NAME: 'order-events' }, client: bus });
  const id = await t.publish({ id: 1 }, { type: 'placed' });
  assert.deepEqual(sent, [['order-events', { body: '{"id":1}', messageId: id, applicationProperties: { type: 'placed' } }]]);
});

// A resource that already exists (existing.azure) may be in an account or namespace of its own:
// NIMBUS_RESOURCE_<R>_ENDPOINT replaces the deployment's endpoint for that resource only.
test('an existing resource is reached at its own endpoint', async () => {
  const { ar } = loadShim();
  const env = {
    AZURE_CLIENT_ID: '00000000-0000-0000-0000-0000000000c1',
    NIMBUS_AZURE_BLOB_ENDPOINT: 'https://shopdata1234.blob.core.windows.net/',
    NIMBUS_AZURE_QUEUE_ENDPOINT: 'https://shopdata1234.queue.core.windows.net/',
    NIMBUS_AZURE_SERVICEBUS_NAMESPACE: 'shop-dev-1234.servicebus.windows.net',
    NIMBUS_RESOURCE_IMAGES_NAME: 'images',
    NIMBUS_RESOURCE_REPORTS_NAME: 'reports',
    NIMBUS_RESOURCE_REPORTS_ENDPOINT: 'https://finance.blob.core.windows.net/',
    NIMBUS_RESOURCE_JOBS_NAME: 'jobs',
    NIMBUS_RESOURCE_JOBS_ENDPOINT: 'https://finance.queue.core.windows.net/',
    NIMBUS_RESOURCE_EVENTS_NAME: 'events',
    NIMBUS_RESOURCE_EVENTS_ENDPOINT: 'finance.servicebus.windows.net',
  };
  assert.equal(ar.makeClient('images', spec('bucket'), null, { env }).svc('get').accountName, 'shopdata1234');
  assert.equal(ar.makeClient('reports', spec('bucket'), null, { env }).svc('get').accountName, 'finance');
  assert.equal(ar.makeClient('jobs', spec('queue', null, 'send'), null, { env }).svc('send').accountName, 'finance');
  const bus = ar.makeClient('events', spec('topic', null, 'publish'), null, { env }).svc('publish');
  assert.equal(bus.fullyQualifiedNamespace, 'finance.servicebus.windows.net');
  await ar.resetClients();
});

// An existing Cosmos DB container (existing.azure) is in its owner's account and database:
// NIMBUS_RESOURCE_<R>_ENDPOINT and NIMBUS_RESOURCE_<R>_DATABASE replace the deployment's, for that
// table only; against the Cosmos DB API server, its items land in the owner's database.
test('an existing table is reached in its own account and database', async () => {
  const { ar } = loadShim();
  const env = {
    NIMBUS_AZURE_COSMOS_ENDPOINT: 'https://shop-dev-1234.documents.azure.com:443/',
    NIMBUS_RESOURCE_USERS_ENDPOINT: 'https://acmedocs.documents.azure.com:443/',
  };
  assert.equal(ar.withResourceEndpoint('cosmos', 'users', env).NIMBUS_AZURE_COSMOS_ENDPOINT, 'https://acmedocs.documents.azure.com:443/');
  assert.equal(ar.withResourceEndpoint('cosmos', 'orders', env), env);
  const w = await world();
  const ownerDb = `app-${crypto.randomBytes(4).toString('hex')}`;
  const { database } = await new cosmos.CosmosClient(cosmosConn).databases.create({ id: ownerDb });
  const { container: users } = await database.containers.create({ id: 'users', partitionKey: { paths: ['/pk'] }, defaultTtl: -1 });
  const t = ar.makeClient('users', spec('table', ['id']), null, { env: { ...w.env, NIMBUS_RESOURCE_USERS_NAME: 'users', NIMBUS_RESOURCE_USERS_DATABASE: ownerDb } });
  await t.put({ id: 'u1', name: 'Ada' });
  assert.deepEqual(await t.get({ id: 'u1' }), { id: 'u1', name: 'Ada' });
  assert.deepEqual((await users.item('u1', 'u1').read()).resource.item, { id: 'u1', name: 'Ada' });
  const own = new cosmos.CosmosClient(cosmosConn).database(w.database);
  const { resources } = await own.containers.readAll().fetchAll();
  assert.deepEqual(resources.map((c) => c.id), ['orders'], 'nothing in the deployment database');
});

test('a handler uses its resources through the HTTP adapter', async () => {
  const w = await world();
  const cfg = config('azure', 'handlers/orders.js', {
    resources: { orders: spec('table', ['id']), images: spec('bucket', null, 'write') },
    triggers: [{ type: 'http', method: 'POST', path: '/orders/{id}' }],
    azure: { route_prefix: '' },
  });
  const root = buildPackage('azure', cfg);
  fs.symlinkSync(TOOLS_NODE, path.join(root, 'node_modules'), 'dir');
  fs.writeFileSync(path.join(root, 'handlers', 'orders.js'), `exports.handler = async (event, context) => {
  const orders = context.resources.orders;
  await orders.put({ id: event.path_params.id, qty: 2 });
  await context.resources.images.put('receipts/' + event.path_params.id, event.body);
  return { status: 201, body: await orders.get({ id: event.path_params.id }) };
};\n`);
  const saved = { ...process.env };
  Object.assign(process.env, w.env, { NIMBUS_PACKAGE_ROOT: root });
  try {
    const az = require(path.join(root, '_nimbus', 'azure.js'));
    const req = new functions.HttpRequest({ method: 'POST', url: 'https://app.azurewebsites.net/orders/42', params: { id: '42' }, body: { string: 'paid' } });
    const res = await az.http(req, new functions.InvocationContext());
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse(res.body), { id: '42', qty: 2 });
  } finally {
    process.env = saved;
  }
  assert.deepEqual((await w.document('42', '42')).item, { id: '42', qty: 2 });
  assert.equal((await w.blob.getContainerClient(w.container).getBlobClient('receipts/42').downloadToBuffer()).toString(), 'paid');
});
