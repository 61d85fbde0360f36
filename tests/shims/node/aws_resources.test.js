'use strict';
// AWS resource clients (Node.js, _nimbus/aws_resources.js) against a real moto_server.
//
// Every op of every client runs against moto through the AWS SDK v3 (as inside Lambda); its effect is
// checked with the test's own SDK calls. Ends with a run through the Lambda entry point
// `_nimbus_aws.handler`. Starts its own moto_server from the test venv (.tools/venv, or next to
// NIMBUS_TEST_PYTHON), or uses the one at NIMBUS_TEST_AWS_ENDPOINT.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { ROOT, TOOLS_NODE, buildPackage, config, fixture, freePort, Server, requireTool, sleep } = require('./helpers.js');

const REGION = 'us-east-1';
const KEY = ['customer', 'id'];

const ddbSdk = requireTool('@aws-sdk/client-dynamodb');
const sqsSdk = requireTool('@aws-sdk/client-sqs');
const snsSdk = requireTool('@aws-sdk/client-sns');
const s3Sdk = requireTool('@aws-sdk/client-s3');

function motoServerBin() {
  const venvBin = process.env.NIMBUS_TEST_PYTHON ? path.dirname(process.env.NIMBUS_TEST_PYTHON) : path.join(ROOT, '.tools', 'venv', 'bin');
  return path.join(venvBin, 'moto_server');
}

let moto = null;
let endpoint = process.env.NIMBUS_TEST_AWS_ENDPOINT || null;

test.before(async () => {
  if (!endpoint) {
    const port = await freePort();
    moto = await Server.start([motoServerBin(), '-H', '127.0.0.1', '-p', String(port)], { cwd: ROOT, env: process.env, port });
    endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30000;
    for (;;) { // listening is not answering: wait for a real reply
      try {
        if ((await moto.request('POST', '/moto-api/reset')).status === 200) break;
      } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`moto_server did not answer:\n${moto.output}`);
      await sleep(100);
    }
  }
  for (const v of ['AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete process.env[v];
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION, AWS_CONFIG_FILE: path.join(ROOT, '.no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(ROOT, '.no-aws-credentials'),
  });
});

test.after(async () => {
  if (shim) shim.ar.resetClients();
  for (const c of Object.values(own || {})) c.destroy();
  if (moto) await moto.stop();
});

// the test's own SDK clients, to create resources and check effects
let own = null;
function ownClients() {
  if (!own) {
    const cfg = { endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
    own = {
      ddb: new ddbSdk.DynamoDBClient(cfg), sqs: new sqsSdk.SQSClient(cfg), sns: new snsSdk.SNSClient(cfg),
      s3: new s3Sdk.S3Client({ ...cfg, forcePathStyle: true }),
    };
  }
  return own;
}

function resourcesConfig(access = {}) {
  return {
    orders: { type: 'table', access: access.orders || 'read_write', key: KEY, native: {} },
    refunds: { type: 'queue', access: 'send', native: {} },
    'order-events': { type: 'topic', access: 'publish', native: {} },
    images: { type: 'bucket', access: access.images || 'read_write', native: {} },
  };
}

// Lay out an AWS package whose node_modules holds the SDK (as the Lambda runtime provides it).
function awsPackage(cfg) {
  const root = buildPackage('aws', cfg);
  fs.symlinkSync(TOOLS_NODE, path.join(root, 'node_modules'), 'dir');
  return root;
}

let shim = null;
function loadShim() {
  if (!shim) {
    const root = awsPackage(config('aws', 'handlers/probe.js', { resources: resourcesConfig() }));
    shim = {
      root,
      core: require(path.join(root, '_nimbus', 'core.js')),
      aws: require(path.join(root, '_nimbus', 'aws.js')),
      ar: require(path.join(root, '_nimbus', 'aws_resources.js')),
    };
  }
  return shim;
}

function resources(access) {
  const { core } = loadShim();
  return core.makeResources({ function: 'probe', resources: resourcesConfig(access) }, 'aws');
}

// A fresh set of resources in moto, with the env vars pointing at them.
async function world() {
  const c = ownClients();
  const tag = crypto.randomBytes(4).toString('hex');
  const w = { table: `orders-${tag}`, bucket: `images-${tag}` };
  await c.ddb.send(new ddbSdk.CreateTableCommand({
    TableName: w.table, BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'customer', AttributeType: 'S' }, { AttributeName: 'id', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'customer', KeyType: 'HASH' }, { AttributeName: 'id', KeyType: 'RANGE' }],
  }));
  w.queueUrl = (await c.sqs.send(new sqsSdk.CreateQueueCommand({ QueueName: `refunds-${tag}` }))).QueueUrl;
  w.topicArn = (await c.sns.send(new snsSdk.CreateTopicCommand({ Name: `order-events-${tag}` }))).TopicArn;
  await c.s3.send(new s3Sdk.CreateBucketCommand({ Bucket: w.bucket }));
  Object.assign(process.env, {
    NIMBUS_RESOURCE_ORDERS_NAME: w.table, NIMBUS_RESOURCE_REFUNDS_URL: w.queueUrl,
    NIMBUS_RESOURCE_ORDER_EVENTS_ARN: w.topicArn, NIMBUS_RESOURCE_IMAGES_NAME: w.bucket,
  });
  return w;
}

async function receive(queueUrl, n = 1, waitMs = 10000) {
  const got = [];
  const deadline = Date.now() + waitMs;
  while (got.length < n && Date.now() < deadline) {
    const out = await ownClients().sqs.send(new sqsSdk.ReceiveMessageCommand({
      QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'],
    }));
    got.push(...(out.Messages || []));
  }
  return got;
}

async function rawItem(table, customer, id) {
  return (await ownClients().ddb.send(new ddbSdk.GetItemCommand({ TableName: table, Key: { customer: { S: customer }, id: { S: id } } }))).Item;
}

// An SDK client whose list/scan/query pages are 2 long: exercises the clients' paging.
function paging(client, param) {
  return {
    send(cmd) {
      if (['ListObjectsV2Command', 'ScanCommand', 'QueryCommand'].includes(cmd.constructor.name) && cmd.input[param] === undefined) {
        cmd.input[param] = 2;
      }
      return client.send(cmd);
    },
  };
}

// ---------------------------------------------------------------------------- table

test('table put/get/delete', async () => {
  const w = await world();
  const orders = resources().orders;
  const item = { customer: 'c1', id: 'o1', total: 12, price: 3.25, paid: true, note: null,
    lines: [{ sku: 'a', qty: 2 }], meta: { gift: false, tags: ['x', 'y'] } };
  assert.equal(await orders.put(item), null);
  const raw = await rawItem(w.table, 'c1', 'o1');
  assert.deepEqual(raw.total, { N: '12' });
  assert.deepEqual(raw.price, { N: '3.25' });
  assert.deepEqual(raw.paid, { BOOL: true });
  assert.deepEqual(raw.note, { NULL: true });
  assert.deepEqual(raw.lines.L[0].M.qty, { N: '2' });
  assert.deepEqual(await orders.get({ customer: 'c1', id: 'o1' }), item);
  assert.equal(await orders.get({ customer: 'c1', id: 'nope' }), null);
  assert.equal(await orders.delete({ customer: 'c1', id: 'o1' }), null);
  assert.equal(await rawItem(w.table, 'c1', 'o1'), undefined);
  assert.equal(await orders.get({ customer: 'c1', id: 'o1' }), null);
});

test('table query and scan', async () => {
  const w = await world();
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
  const { ar } = loadShim();
  const paged = ar.makeClient('orders', resourcesConfig().orders, { client: paging(ar.awsClient('dynamodb'), 'Limit') });
  assert.deepEqual((await paged.query({ customer: 'c1' })).map((i) => i.id), ['o0', 'o1', 'o2', 'o3', 'o4']);
  assert.equal((await paged.scan()).length, 6);
  assert.equal((await paged.scan(3)).length, 3);
  const count = (await ownClients().ddb.send(new ddbSdk.ScanCommand({ TableName: w.table }))).Count;
  assert.equal(count, 6);
});

test('table validation and access', async () => {
  await world();
  const orders = resources().orders;
  await assert.rejects(orders.get('c1'), /table key must be a plain object/);
  await assert.rejects(orders.put({ customer: 'c1' }), /lacks the table's key field/);
  await assert.rejects(orders.query({ id: 'o1' }), /lacks the table's key field/);
  await assert.rejects(orders.scan(0), /limit must be a positive integer/);
  const { core } = loadShim();
  assert.throws(() => resources({ orders: 'read' }).orders.put, (e) => e instanceof core.ResourceAccessError && /does not allow put/.test(e.message));
});

// ---------------------------------------------------------------------------- queue

test('queue send', async () => {
  const w = await world();
  const refunds = resources().refunds;
  const id = await refunds.send({ order: 'o1', amount: 5 }, { reason: 'damaged', source: 'web' });
  assert.ok(typeof id === 'string' && id);
  const id2 = await refunds.send('plain text', null, 1);
  const msgs = await receive(w.queueUrl, 2);
  const byId = Object.fromEntries(msgs.map((m) => [m.MessageId, m]));
  assert.deepEqual(Object.keys(byId).sort(), [id, id2].sort());
  assert.deepEqual(JSON.parse(byId[id].Body), { order: 'o1', amount: 5 });
  assert.deepEqual(byId[id].MessageAttributes, {
    reason: { DataType: 'String', StringValue: 'damaged' }, source: { DataType: 'String', StringValue: 'web' },
  });
  assert.equal(byId[id2].Body, 'plain text');
  assert.equal(byId[id2].MessageAttributes, undefined);
  await assert.rejects(refunds.send('x', { n: 1 }), /attribute "n" must be a string/);
  await assert.rejects(refunds.send('x', null, -1), /delay_seconds must be >= 0/);
  await assert.rejects(refunds.send(42), /body must be a string/);
});

// ---------------------------------------------------------------------------- topic

test('topic publish reaches a subscribed queue', async () => {
  const w = await world();
  const c = ownClients();
  const sink = (await c.sqs.send(new sqsSdk.CreateQueueCommand({ QueueName: `sink-${crypto.randomBytes(4).toString('hex')}` }))).QueueUrl;
  const sinkArn = (await c.sqs.send(new sqsSdk.GetQueueAttributesCommand({ QueueUrl: sink, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  await c.sns.send(new snsSdk.SubscribeCommand({ TopicArn: w.topicArn, Protocol: 'sqs', Endpoint: sinkArn }));
  const events = resources()['order-events'];
  const id = await events.publish({ order: 'o1', status: 'placed' }, { kind: 'placed' });
  assert.ok(typeof id === 'string' && id);
  const msgs = await receive(sink, 1);
  assert.equal(msgs.length, 1);
  const envelope = JSON.parse(msgs[0].Body);
  assert.equal(envelope.MessageId, id);
  assert.equal(envelope.TopicArn, w.topicArn);
  assert.deepEqual(JSON.parse(envelope.Message), { order: 'o1', status: 'placed' });
  assert.deepEqual(envelope.MessageAttributes, { kind: { Type: 'String', Value: 'placed' } });
  assert.notEqual(await events.publish('second'), id);
});

// ---------------------------------------------------------------------------- bucket

test('bucket put/get/list/delete', async () => {
  const w = await world();
  const images = resources().images;
  const png = Buffer.alloc(768, 0).map((_, i) => i % 256);
  assert.equal(await images.put('a/one.png', png, 'image/png'), null);
  await images.put('a/two.txt', 'héllo');
  await images.put('b/three.txt', new Uint8Array([51]));
  const obj = await ownClients().s3.send(new s3Sdk.GetObjectCommand({ Bucket: w.bucket, Key: 'a/one.png' }));
  assert.deepEqual(Buffer.from(await obj.Body.transformToByteArray()), png);
  assert.equal(obj.ContentType, 'image/png');
  assert.deepEqual(await images.get('a/one.png'), png);
  assert.deepEqual(await images.get('a/two.txt'), Buffer.from('héllo'));
  assert.equal(await images.get('missing'), null);
  assert.deepEqual(await images.list(), ['a/one.png', 'a/two.txt', 'b/three.txt']);
  assert.deepEqual(await images.list('a/'), ['a/one.png', 'a/two.txt']);
  assert.deepEqual(await images.list('zzz'), []);
  for (let i = 0; i < 5; i++) await images.put(`p/${i}`, 'x');
  const { ar, core } = loadShim();
  const paged = ar.makeClient('images', resourcesConfig().images, { client: paging(ar.awsClient('s3'), 'MaxKeys') });
  assert.deepEqual(await paged.list('p/'), ['p/0', 'p/1', 'p/2', 'p/3', 'p/4']);
  assert.equal((await paged.list()).length, 8);
  assert.equal(await images.delete('a/one.png'), null);
  assert.equal(await images.get('a/one.png'), null);
  const listed = await ownClients().s3.send(new s3Sdk.ListObjectsV2Command({ Bucket: w.bucket }));
  assert.ok(!listed.Contents.some((o) => o.Key === 'a/one.png'));
  await assert.rejects(images.put('k', 42), /bucket data must be a Buffer\/Uint8Array or a string/);
  await assert.rejects(images.get(''), /bucket key must be a non-empty string/);
  assert.throws(() => resources({ images: 'write' }).images.get, (e) => e instanceof core.ResourceAccessError);
});

// ---------------------------------------------------------------------------- errors, configuration, reuse

test('AWS errors become ResourceError', async () => {
  const w = await world();
  const { ar, core } = loadShim();
  Object.assign(process.env, {
    NIMBUS_RESOURCE_ORDERS_NAME: 'no-such-table', NIMBUS_RESOURCE_REFUNDS_URL: `${w.queueUrl}-gone`,
    NIMBUS_RESOURCE_IMAGES_NAME: `no-such-bucket-${crypto.randomBytes(4).toString('hex')}`,
    NIMBUS_RESOURCE_ORDER_EVENTS_ARN: `${w.topicArn}-gone`,
  });
  const res = resources();
  const check = (type, op, awsCode) => (e) => {
    assert.ok(e instanceof ar.ResourceError && e instanceof core.NimbusError, String(e));
    assert.equal(e.type, type);
    assert.equal(e.code, type);
    assert.equal(e.op, op);
    if (awsCode) assert.equal(e.awsCode, awsCode);
    assert.ok(e.detail);
    return true;
  };
  await assert.rejects(res.orders.get({ customer: 'c1', id: 'o1' }), check('NotFound', 'get', 'ResourceNotFoundException'));
  await assert.rejects(res.refunds.send('x'), check('NotFound', 'send'));
  await assert.rejects(res.images.get('k'), check('NotFound', 'get', 'NoSuchBucket'));
  await assert.rejects(res['order-events'].publish('x'), check('NotFound', 'publish'));
  process.env.NIMBUS_RESOURCE_ORDERS_NAME = w.table;
  await assert.rejects(resources().orders.put({ customer: 1, id: 'o1' }), check('BadRequest', 'put', 'ValidationException'));
  assert.equal(ar.errorType('AccessDeniedException', 400), 'AccessDenied');
  assert.equal(ar.errorType('AuthorizationError', 403), 'AccessDenied');
  assert.equal(ar.errorType('Whatever', 500), 'Internal');
  assert.equal(ar.errorType('Whatever', 429), 'Throttled');
});

test('missing env var is a clear error; native block is the fallback', async () => {
  const w = await world();
  const { ar } = loadShim();
  delete process.env.NIMBUS_RESOURCE_ORDER_EVENTS_ARN;
  delete process.env.NIMBUS_RESOURCE_REFUNDS_URL;
  const res = resources();
  await assert.rejects(res['order-events'].publish('x'), (e) => e instanceof ar.ResourceError && e.type === 'NotConfigured' &&
    e.resource === 'order-events' && /NIMBUS_RESOURCE_ORDER_EVENTS_ARN is not set/.test(e.message));
  await assert.rejects(res.refunds.send('x'), /NIMBUS_RESOURCE_REFUNDS_URL is not set/);
  assert.equal(ar.envVar('order-events', 'ARN'), 'NIMBUS_RESOURCE_ORDER_EVENTS_ARN');
  const client = ar.makeClient('refunds', { ...resourcesConfig().refunds, native: { url: w.queueUrl } });
  assert.ok(await client.send('via native'));
  assert.deepEqual((await receive(w.queueUrl)).map((m) => m.Body), ['via native']);
});

test('SDK clients are created lazily, once per process', async () => {
  await world();
  const { ar } = loadShim();
  ar.resetClients();
  await resources().orders.put({ customer: 'c', id: '1' });
  const doc = ar.awsClient('dynamodb');
  await resources().orders.get({ customer: 'c', id: '1' });
  assert.equal(ar.awsClient('dynamodb'), doc);
  assert.equal(await doc.config.region(), REGION);
});

// ---------------------------------------------------------------------------- end to end through the Lambda entry point

const HANDLER = `'use strict';
exports.handler = async (event, context) => {
  const orders = context.resources.orders;
  await orders.put({ customer: 'c7', id: 'o1', total: 42, rate: 0.5 });
  return { status: 200, body: { item: await orders.get({ customer: 'c7', id: 'o1' }), query: await orders.query({ customer: 'c7' }) } };
};
`;

test('end to end through _nimbus_aws.handler', async () => {
  const w = await world();
  const cfg = config('aws', 'handlers/orders_rw.js', {
    function: 'orders', resources: resourcesConfig(), triggers: [{ type: 'http', method: 'ANY', path: '/{proxy+}' }],
  });
  const root = awsPackage(cfg);
  fs.writeFileSync(path.join(root, 'handlers', 'orders_rw.js'), HANDLER);
  const mod = require(path.join(root, '_nimbus_aws.js'));
  const out = await mod.handler(fixture('aws/apigw-v2-request-no-authorizer.json'),
    { functionName: 'shop-dev-orders', awsRequestId: 'lambda-req-res', getRemainingTimeInMillis: () => 7000 });
  assert.equal(out.statusCode, 200, JSON.stringify(out));
  const item = { customer: 'c7', id: 'o1', total: 42, rate: 0.5 };
  assert.deepEqual(JSON.parse(out.body), { item, query: [item] });
  const raw = await rawItem(w.table, 'c7', 'o1');
  assert.deepEqual(raw.total, { N: '42' });
  assert.deepEqual(raw.rate, { N: '0.5' });
  require(path.join(root, '_nimbus', 'aws_resources.js')).resetClients();
});

// ---------------------------------------------------------------------------- trace context (docs/tracing.md)

const TRACED = `'use strict';
exports.handler = async (event, context) => {
  await new Promise((r) => setTimeout(r, 5)); // the context survives awaits
  const seen = { traceparent: context.traceparent, attributes: event.messages.map((m) => m.attributes) };
  await context.resources.refunds.send(JSON.stringify(seen), { reason: 'traced' });
  await context.resources['order-events'].publish('placed');
};
`;
const INCOMING = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

test('trace context flows from an SQS message to what the handler sends', async () => {
  const w = await world();
  const c = ownClients();
  const sink = (await c.sqs.send(new sqsSdk.CreateQueueCommand({ QueueName: `sink-${crypto.randomBytes(4).toString('hex')}` }))).QueueUrl;
  const sinkArn = (await c.sqs.send(new sqsSdk.GetQueueAttributesCommand({ QueueUrl: sink, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  await c.sns.send(new snsSdk.SubscribeCommand({ TopicArn: w.topicArn, Protocol: 'sqs', Endpoint: sinkArn }));
  const cfg = config('aws', 'handlers/traced.js', {
    function: 'charge', resources: resourcesConfig(), triggers: [{ type: 'queue', resource: 'refunds', batch_size: 10 }],
  });
  const root = awsPackage(cfg);
  fs.writeFileSync(path.join(root, 'handlers', 'traced.js'), TRACED);
  const mod = require(path.join(root, '_nimbus_aws.js'));
  const event = fixture('aws/sqs-event.json'); // the native event, with the sender's traceparent
  event.Records[0].messageAttributes.traceparent = { stringValue: INCOMING, stringListValues: [], binaryListValues: [], dataType: 'String' };
  const out = await mod.handler(event, { functionName: 'shop-dev-charge', awsRequestId: 'lambda-req-tr', getRemainingTimeInMillis: () => 7000 });
  assert.deepEqual(out, { batchItemFailures: [] });
  const sent = await receive(w.queueUrl, 1);
  assert.equal(sent.length, 1);
  const seen = JSON.parse(sent[0].Body);
  const [version, traceId, spanId, flags] = seen.traceparent.split('-');
  assert.deepEqual([version, traceId, flags], ['00', '4bf92f3577b34da6a3ce929d0e0e4736', '01']);
  assert.ok(spanId.length === 16 && spanId !== '00f067aa0ba902b7');
  assert.ok(seen.attributes.every((a) => !('traceparent' in a)), JSON.stringify(seen.attributes));
  assert.deepEqual(sent[0].MessageAttributes, {
    reason: { DataType: 'String', StringValue: 'traced' }, traceparent: { DataType: 'String', StringValue: seen.traceparent },
  });
  const published = await receive(sink, 1);
  assert.deepEqual(JSON.parse(published[0].Body).MessageAttributes.traceparent, { Type: 'String', Value: seen.traceparent });
  // Outside an invocation nothing is added; trace.js validates as the W3C specification says.
  const trace = require(path.join(root, '_nimbus', 'trace.js'));
  assert.equal(trace.current(), null);
  assert.deepEqual(trace.withTrace({ a: '1' }), { a: '1' });
  assert.deepEqual(trace.parse(INCOMING), ['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7']);
  for (const bad of ['', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', null]) {
    assert.equal(trace.parse(bad), null, String(bad));
  }
  require(path.join(root, '_nimbus', 'aws_resources.js')).resetClients();
});
