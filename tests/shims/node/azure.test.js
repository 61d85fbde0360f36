'use strict';
// Azure Functions shim (Node.js v4 model): adapters driven with the real @azure/functions types
// (HttpRequest, InvocationContext; results checked through the library's own HttpResponse).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { buildPackage, config, Recorder, requireTool } = require('./helpers.js');

const { HttpRequest, HttpResponse, InvocationContext } = requireTool('@azure/functions');

const rec = new Recorder();
process.env.NIMBUS_TEST_RECORD = rec.path;

const root = buildPackage('azure', config('azure'));
const az = require(path.join(root, '_nimbus', 'azure.js'));

const ctx = (triggerMetadata = {}) => new InvocationContext({ invocationId: 'az-inv-1', functionName: 'probe', triggerMetadata });

test('http', async () => {
  const req = new HttpRequest({
    method: 'POST', url: 'http://localhost:7071/api/orders/42?x=1&x=2&y=',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7:51234' },
    params: { id: '42' }, body: { string: '{"total": 3}' },
  });
  const init = await az.http(req, ctx(), 'handlers/probe.js:handler');
  const res = new HttpResponse(init);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-handler'), 'probe');
  assert.equal(res.headers.get('content-type'), 'application/json');
  const out = JSON.parse(await res.text());
  assert.deepEqual(out.event, {
    type: 'http', method: 'POST', path: '/orders/42', route: '/orders/{id}', path_params: { id: '42' },
    query: { x: '1,2', y: '' }, headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7:51234' },
    body: '{"total": 3}', is_base64: false, source_ip: '203.0.113.7',
  });
  assert.equal(out.context.request_id, 'az-inv-1');
  assert.equal(out.context.provider, 'azure');
  assert.deepEqual(out.context.resources, ['images', 'order-events', 'orders']);
});

test('a path none of its routes takes (an empty catch-all tail) gets 404 without the handler', async () => {
  const r = new HttpResponse(await az.http(new HttpRequest({ method: 'GET', url: 'http://localhost/api/' }), ctx()));
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), { message: 'Not Found' });
});

test('http results', async () => {
  const call = async (p, body) => new HttpResponse(await az.http(new HttpRequest({ method: 'GET', url: `http://localhost/api${p}`, body }), ctx()));
  let r = await call('/x/text');
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'hello text');
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  r = await call('/x/bytes');
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), Buffer.from([0, 1, 0xff, 0x62, 0x69, 0x6e]));
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  r = await call('/x/none');
  assert.equal(r.status, 204);
  r = await call('/x/cookies');
  assert.equal(r.status, 201);
  assert.equal(await r.text(), 'made');
  assert.deepEqual(r.headers.getSetCookie(), ['a=1', 'b=2']);
  await assert.rejects(call('/x/error'), /boom from handler/);
  const raw = await az.http(new HttpRequest({ method: 'PUT', url: 'http://localhost/api/raw', body: { bytes: new Uint8Array([0xff, 0xfe]) } }), ctx());
  const ev = JSON.parse(raw.body).event;
  assert.equal(ev.is_base64, true);
  assert.equal(ev.body, '//4=');
  assert.equal(ev.path, '/raw');
});

test('http resources', async () => {
  const out = JSON.parse((await az.http(new HttpRequest({ method: 'GET', url: 'http://localhost/api/x/resources' }), ctx())).body);
  assert.ok(out.not_granted.message.includes('"secrets" is not granted to function "probe"'));
  assert.ok(out.trigger_only.message.includes('"payments" is not granted'));
  // Azure has resource clients (azure_resources.test.js): the guard refuses a read on `write` access.
  assert.ok(out.no_client.message.includes("'write' access") || out.no_client.message.includes('"write" access'), out.no_client.message);
  assert.equal(out.no_client.type, 'ResourceAccessError');
});

test('storage queue', async () => {
  // the host hands a JSON queue message over already parsed
  assert.equal(await az.queue({ order: 42 }, ctx({ id: 'q-1', dequeueCount: 3 })), undefined);
  assert.deepEqual(rec.last().event, {
    type: 'queue', source: 'payments', messages: [{ id: 'q-1', body: '{"order":42}', attributes: {}, receive_count: 3 }],
  });
  await az.queue('plain text', ctx({ id: 'q-3', dequeueCount: 1 }), undefined, { resource: 'payments' });
  assert.equal(rec.last().event.messages[0].body, 'plain text');
  await assert.rejects(az.queue('please fail', ctx({ id: 'q-2', dequeueCount: 1 })), (e) => e.name === 'BatchItemFailure' && /q-2/.test(e.message));
});

test('service bus topic and queue', async () => {
  await az.serviceBus('hello', ctx({ messageId: 'sb-1', deliveryCount: 1, applicationProperties: { kind: 'created', n: 2 } }), undefined,
    { resource: 'order-events' });
  assert.deepEqual(rec.last().event, {
    type: 'topic', source: 'order-events', messages: [{ id: 'sb-1', body: 'hello', attributes: { kind: 'created', n: '2' } }],
  });
  await az.serviceBus(['a', { b: 1 }], ctx({ messageIdArray: ['sb-2', 'sb-3'], deliveryCountArray: [1, 2], applicationPropertiesArray: [{}, { p: 'q' }] }),
    undefined, { resource: 'order-events' });
  assert.deepEqual(rec.last().event.messages, [
    { id: 'sb-2', body: 'a', attributes: {} }, { id: 'sb-3', body: '{"b":1}', attributes: { p: 'q' } }]);
  await assert.rejects(az.serviceBus(['ok', 'fail'], ctx({ messageIdArray: ['sb-4', 'sb-5'] }), undefined, { resource: 'order-events' }),
    (e) => e.name === 'BatchItemFailure');
  await az.serviceBus('work', ctx({ messageId: 'sb-9', deliveryCount: 4 }), undefined, { resource: 'payments' });
  assert.deepEqual(rec.last().event, {
    type: 'queue', source: 'payments', messages: [{ id: 'sb-9', body: 'work', attributes: {}, receive_count: 4 }],
  });
});

test('timer', async () => {
  const before = Math.floor(Date.now() / 1000) * 1000;
  const t = { isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: '2026-01-01T03:00:00', next: '2026-01-02T03:00:00', lastUpdated: '' } };
  await az.timer(t, ctx(), undefined, { schedule: 'nightly' });
  const ev = rec.last().event;
  assert.equal(ev.type, 'schedule');
  assert.equal(ev.name, 'nightly');
  assert.match(ev.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const at = Date.parse(ev.time);
  assert.ok(at >= before && at <= before + 5000);
  await az.timer(t, ctx());
  assert.equal(rec.last().event.name, 'nightly');
});

test('blob trigger', async () => {
  await az.blob(Buffer.from('abc'), ctx({ blobTrigger: 'images-container/uploads/a b.png', uri: 'http://127.0.0.1:10000/devstoreaccount1/images-container/uploads/a%20b.png' }));
  assert.deepEqual(rec.last().event, { type: 'bucket', bucket: 'images', key: 'uploads/a b.png', size: 3, action: 'created' });
  await assert.rejects(az.blob(Buffer.alloc(0), ctx({ blobTrigger: 'thumbs-container/boom.png' })), /bucket boom/);
  assert.equal(rec.last().event.bucket, 'thumbs');
});

test('event grid blob events', async () => {
  const eg = (eventType, subject, data) => ({
    id: 'eg-1', topic: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct',
    subject, eventType, eventTime: '2026-01-01T00:00:00Z', data, dataVersion: '', metadataVersion: '1',
  });
  await az.eventGrid(eg('Microsoft.Storage.BlobCreated', '/blobServices/default/containers/images-container/blobs/u/x.png',
    { api: 'PutBlob', contentLength: 524288 }), ctx());
  assert.deepEqual(rec.last().event, { type: 'bucket', bucket: 'images', key: 'u/x.png', size: 524288, action: 'created' });
  await az.eventGrid(eg('Microsoft.Storage.BlobDeleted', '/blobServices/default/containers/images-container/blobs/u/x.png', { api: 'DeleteBlob' }), ctx());
  assert.deepEqual(rec.last().event, { type: 'bucket', bucket: 'images', key: 'u/x.png', size: null, action: 'deleted' });
  await assert.rejects(az.eventGrid(eg('Microsoft.Storage.BlobRenamed', '/x', {}), ctx()), /BlobRenamed/);
});

test('cosmos DB change feed documents become table events; a tombstone is a remove', async () => {
  // The documents as the Cosmos DB trigger hands them to a v4 handler (tests/shims/events/azure).
  const docs = JSON.parse(require('node:fs').readFileSync(path.join(__dirname, '..', 'events', 'azure', 'cosmos-change-feed.json'), 'utf8'));
  const cfg = config('azure', 'handlers/probe.js', { triggers: [{ type: 'table', resource: 'orders', events: ['insert', 'modify', 'remove'] }] });
  const r = buildPackage('azure', cfg);
  const adapter = require(path.join(r, '_nimbus', 'azure.js'));
  rec.clear();
  await adapter.cosmosDB(docs, ctx(), null, { resource: 'orders' });
  assert.deepEqual(rec.all().map((x) => x.event), [
    { type: 'table', table: 'orders', action: 'insert', key: { id: 'o1' }, old: null, new: { id: 'o1', status: 'placed', total: 12.5 } },
    { type: 'table', table: 'orders', action: 'modify', key: { id: 'o2' }, old: { id: 'o2', status: 'placed', total: 3 }, new: { id: 'o2', status: 'paid', total: 3 } },
    { type: 'table', table: 'orders', action: 'remove', key: { id: 'o3' }, old: { id: 'o3', status: 'cancelled', total: 7 }, new: null },
    { type: 'table', table: 'orders', action: 'modify', key: { id: 'o4' }, old: null, new: { id: 'o4', status: 'imported' } },
  ]);
  assert.deepEqual(adapter.cosmosEvents(docs, { ...cfg, triggers: [{ type: 'table', resource: 'orders', events: ['remove'] }] }, 'orders').map((e) => e.action), ['remove']);
  assert.throws(() => adapter.cosmosEvents([[1]], cfg, 'orders'), /must be an object/);
});
