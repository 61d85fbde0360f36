'use strict';
// AWS Lambda shim (Node.js): real fixtures through `_nimbus_aws.handler`, as Lambda calls it.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { buildPackage, config, fixture, expected, Recorder } = require('./helpers.js');

const FIXTURES = ['apigw-v2-request-multi-value-parameters', 'apigw-v2-request-no-authorizer', 'apigw-request',
  'sqs-event', 'sns-event', 'eventbridge-schedule', 's3-event', 'dynamodb-event'];

// the properties Lambda's Node.js runtime gives a handler's context
const lambdaContext = (remaining = 7000) => ({
  functionName: 'shop-dev-probe',
  awsRequestId: 'lambda-req-1',
  getRemainingTimeInMillis: () => remaining,
});

const rec = new Recorder();
process.env.NIMBUS_TEST_RECORD = rec.path;

function lambda(cfg) {
  const root = buildPackage('aws', cfg || config('aws'));
  return { mod: require(path.join(root, '_nimbus_aws.js')), aws: require(path.join(root, '_nimbus', 'aws.js')), root };
}

const { mod, aws } = lambda();

for (const name of FIXTURES) {
  test(`native -> neutral: ${name}`, async () => {
    const fn = await aws.init();
    assert.deepEqual(aws.toNeutral(fixture(`aws/${name}.json`), fn.config), expected('aws', name));
  });
}

test('http v2 end to end', async () => {
  const out = await mod.handler(fixture('aws/apigw-v2-request-multi-value-parameters.json'), lambdaContext());
  assert.equal(out.statusCode, 200);
  assert.equal(out.isBase64Encoded, false);
  assert.deepEqual(out.headers, { 'x-handler': 'probe', 'content-type': 'application/json' });
  const body = JSON.parse(out.body);
  assert.deepEqual(body.event, expected('aws', 'apigw-v2-request-multi-value-parameters'));
  assert.deepEqual(body.context, {
    function_name: 'probe', request_id: 'lambda-req-1', service: 'shop', stage: 'dev', provider: 'aws',
    deadline_ms: body.context.deadline_ms, remaining_ok: true, resources: ['images', 'order-events', 'orders', 'refunds'],
  });
});

test('http v1 end to end', async () => {
  const ev = fixture('aws/apigw-request.json');
  let out = await mod.handler(ev, lambdaContext());
  assert.equal(out.statusCode, 200);
  assert.deepEqual(out.multiValueHeaders, { 'x-handler': ['probe'], 'content-type': ['application/json'] });
  assert.deepEqual(JSON.parse(out.body).event, expected('aws', 'apigw-request'));
  ev.path = '/hello/cookies';
  out = await mod.handler(ev, lambdaContext());
  assert.equal(out.statusCode, 201);
  assert.deepEqual(out.multiValueHeaders['set-cookie'], ['a=1', 'b=2']);
});

function v2(p, method = 'GET', body, b64 = false) {
  const ev = fixture('aws/apigw-v2-request-no-authorizer.json');
  ev.rawPath = p;
  ev.requestContext.http.method = method;
  ev.requestContext.http.path = p;
  if (body !== undefined) { ev.body = body; ev.isBase64Encoded = b64; }
  return ev;
}

test('http result shapes', async () => {
  const h = mod.handler;
  assert.deepEqual(await h(v2('/x/text'), lambdaContext()), {
    statusCode: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'hello text', isBase64Encoded: false,
  });
  let out = await h(v2('/x/bytes'), lambdaContext());
  assert.equal(out.isBase64Encoded, true);
  assert.deepEqual(Buffer.from(out.body, 'base64'), Buffer.from([0, 1, 0xff, 0x62, 0x69, 0x6e]));
  assert.equal(out.headers['content-type'], 'application/octet-stream');
  assert.deepEqual(await h(v2('/x/none'), lambdaContext()), { statusCode: 204, headers: {}, body: '', isBase64Encoded: false });
  assert.equal((await h(v2('/x/list'), lambdaContext())).body, '[1,2,3]');
  out = await h(v2('/x/cookies'), lambdaContext());
  assert.equal(out.statusCode, 201);
  assert.deepEqual(out.cookies, ['a=1', 'b=2']);
  assert.deepEqual(out.headers, { 'x-multi': 'v', 'content-type': 'text/plain; charset=utf-8' });
  await assert.rejects(h(v2('/x/error'), lambdaContext()), /boom from handler/);
});

test('http binary request body', async () => {
  const out = await mod.handler(v2('/upload', 'POST', Buffer.from([0xff, 0]).toString('base64'), true), lambdaContext());
  const ev = JSON.parse(out.body).event;
  assert.equal(ev.is_base64, true);
  assert.deepEqual(Buffer.from(ev.body, 'base64'), Buffer.from([0xff, 0]));
  assert.equal(ev.method, 'POST');
});

function sqs(bodies) {
  const base = fixture('aws/sqs-event.json').Records[0];
  return { Records: bodies.map((b, i) => ({ ...JSON.parse(JSON.stringify(base)), messageId: `m${i}`, body: b })) };
}

test('SQS batchItemFailures', async () => {
  rec.clear();
  assert.deepEqual(await mod.handler(fixture('aws/sqs-event.json'), lambdaContext()), { batchItemFailures: [] });
  assert.deepEqual(rec.last().event, expected('aws', 'sqs-event'));
  assert.deepEqual(await mod.handler(sqs(['ok', 'please fail', 'ok too', 'fail again']), lambdaContext()), {
    batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm3' }],
  });
  await assert.rejects(mod.handler(sqs(['ok', 'boom']), lambdaContext()), /batch boom/);
});

test('SNS', async () => {
  rec.clear();
  assert.equal(await mod.handler(fixture('aws/sns-event.json'), lambdaContext()), null);
  assert.deepEqual(rec.last().event, expected('aws', 'sns-event'));
  const ev = fixture('aws/sns-event.json');
  ev.Records[0].Sns.Message = 'fail';
  ev.Records[0].Sns.MessageAttributes = { kind: { Type: 'String', Value: 'x' } };
  await assert.rejects(mod.handler(ev, lambdaContext()), (e) => e.name === 'BatchItemFailure' && e.message.includes('82833b5c'));
  assert.deepEqual(rec.last().event.messages[0].attributes, { kind: 'x' });
});

test('schedule, S3, DynamoDB', async () => {
  rec.clear();
  assert.equal(await mod.handler(fixture('aws/eventbridge-schedule.json'), lambdaContext()), null);
  assert.deepEqual(rec.last().event, expected('aws', 'eventbridge-schedule'));
  rec.clear();
  assert.equal(await mod.handler(fixture('aws/s3-event.json'), lambdaContext()), null);
  assert.deepEqual(rec.all().map((r) => r.event), expected('aws', 's3-event'));
  rec.clear();
  assert.deepEqual(await mod.handler(fixture('aws/dynamodb-event.json'), lambdaContext()), { batchItemFailures: [] });
  assert.deepEqual(rec.all().map((r) => r.event), expected('aws', 'dynamodb-event'));
});

test('S3 removed and encoded key', async () => {
  const ev = fixture('aws/s3-event.json');
  ev.Records[0].eventName = 'ObjectRemoved:Delete';
  ev.Records[0].s3.object = { key: 'uploads/a+b%2Bc.png', sequencer: 'x' };
  await mod.handler(ev, lambdaContext());
  assert.deepEqual(rec.last().event, { type: 'bucket', bucket: 'images', key: 'uploads/a b+c.png', size: null, action: 'deleted' });
  ev.Records[0].s3.object.key = 'boom.png';
  await assert.rejects(mod.handler(ev, lambdaContext()), /bucket boom/);
});

test('DynamoDB partial failure', async () => {
  const ev = fixture('aws/dynamodb-event.json');
  ev.Records[0].dynamodb.SequenceNumber = '111';
  ev.Records[1].dynamodb.SequenceNumber = '222';
  ev.Records[1].eventName = 'MODIFY';
  ev.Records[1].dynamodb.OldImage = { key: { S: 'binary' }, n: { N: '-7' } };
  ev.Records[1].dynamodb.NewImage.boom = { BOOL: true };
  const orig = console.error;
  console.error = () => {};
  try {
    assert.deepEqual(await mod.handler(ev, lambdaContext()), { batchItemFailures: [{ itemIdentifier: '222' }] });
  } finally {
    console.error = orig;
  }
  const last = rec.last().event;
  assert.equal(last.action, 'modify');
  assert.deepEqual(last.old, { key: 'binary', n: -7 });
});

test('fallback to native names', async () => {
  const { mod: m } = lambda(config('aws', 'handlers/probe.js', { resources: {}, triggers: [] }));
  await m.handler(fixture('aws/sqs-event.json'), lambdaContext());
  assert.equal(rec.last().event.source, 'SQSQueue');
  await m.handler(fixture('aws/sns-event.json'), lambdaContext());
  assert.equal(rec.last().event.source, 'snsNetTest');
  await m.handler(fixture('aws/eventbridge-schedule.json'), lambdaContext());
  assert.equal(rec.last().event.name, 'my-scheduled-rule');
  await m.handler(fixture('aws/s3-event.json'), lambdaContext());
  assert.equal(rec.last().event.bucket, 'sourcebucket');
  await m.handler(fixture('aws/dynamodb-event.json'), lambdaContext());
  assert.equal(rec.last().event.table, 'Example-Table');
});

test('resources in the handler', async () => {
  const r = JSON.parse((await mod.handler(v2('/x/resources'), lambdaContext())).body);
  assert.deepEqual(r.granted, ['images', 'order-events', 'orders', 'refunds']);
  assert.equal(r.has_orders, true);
  assert.equal(r.has_secrets, false);
  assert.equal(r.not_granted.type, 'ResourceAccessError');
  assert.ok(r.not_granted.message.includes('"secrets" is not granted to function "probe"'));
  assert.ok(r.trigger_only.message.includes('"payments" is not granted'));
  // the AWS clients exist (_nimbus/aws_resources.js): "orders" is write-only, so get() is refused
  assert.equal(r.no_client.type, 'ResourceAccessError');
  assert.ok(r.no_client.message.includes('"write" access to table "orders"') && r.no_client.message.includes('get()'));
});

test('unsupported event', async () => {
  await assert.rejects(mod.handler({ hello: 'world' }, lambdaContext()), /unsupported AWS event/);
});

test('load error surfaces on invoke', async () => {
  const { mod: m } = lambda(config('aws', 'handlers/broken.js'));
  await assert.rejects(m.handler(fixture('aws/sqs-event.json'), lambdaContext()),
    (e) => e.name === 'HandlerLoadError' && e.message.includes('broken on purpose'));
});

// Two triggers of every type, `native` left empty as packaging does: only the deployment's
// NIMBUS_RESOURCE_<R>_* / NIMBUS_SCHEDULE_<T>_ARN variables (crates/nimbus-aws/src/env.rs) tell them apart.
const PAIRS_CONFIG = {
  resources: {
    payments: { type: 'queue', access: null, native: {} },
    refunds: { type: 'queue', access: null, native: {} },
    'order-events': { type: 'topic', access: null, native: {} },
    'audit-events': { type: 'topic', access: null, native: {} },
    images: { type: 'bucket', access: null, native: {} },
    thumbs: { type: 'bucket', access: null, native: {} },
    orders: { type: 'table', access: null, key: ['id'], native: {} },
    audit: { type: 'table', access: null, key: ['id'], native: {} },
  },
  triggers: [
    { type: 'queue', resource: 'payments', batch_size: 10 },
    { type: 'queue', resource: 'refunds', batch_size: 10 },
    { type: 'topic', resource: 'order-events' },
    { type: 'topic', resource: 'audit-events' },
    { type: 'schedule', name: 'probe-schedule-0', expression: 'cron(0 3 * * ? *)' },
    { type: 'schedule', name: 'probe-schedule-1', expression: 'rate(1 hour)' },
    { type: 'bucket', resource: 'images', events: ['created', 'deleted'] },
    { type: 'bucket', resource: 'thumbs', events: ['created'] },
    { type: 'table', resource: 'orders', events: ['insert', 'modify', 'remove'] },
    { type: 'table', resource: 'audit', events: ['insert'] },
  ],
};
const SCHEDULER_ARN = 'arn:aws:scheduler:us-east-1:123456789012:schedule/default/shop-dev-probe-schedule-1';
const PAIRS_ENV = {
  // the fixtures' own names for the first resource of each pair ...
  NIMBUS_RESOURCE_PAYMENTS_ARN: 'arn:aws:sqs:us-west-2:123456789012:SQSQueue',
  NIMBUS_RESOURCE_PAYMENTS_URL: 'https://sqs.us-west-2.amazonaws.com/123456789012/SQSQueue',
  NIMBUS_RESOURCE_ORDER_EVENTS_ARN: 'arn:aws:sns:us-east-1:246796806071:snsNetTest',
  NIMBUS_RESOURCE_ORDER_EVENTS_NAME: 'snsNetTest',
  NIMBUS_RESOURCE_IMAGES_NAME: 'sourcebucket',
  NIMBUS_RESOURCE_ORDERS_NAME: 'Example-Table',
  NIMBUS_RESOURCE_ORDERS_ARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table',
  NIMBUS_RESOURCE_ORDERS_STREAM_ARN:
    'arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table/stream/2016-12-01T00:00:00.000',
  NIMBUS_SCHEDULE_PROBE_SCHEDULE_0_ARN: 'arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule',
  // ... and different ones for the second, which the modified fixture copies below carry
  NIMBUS_RESOURCE_REFUNDS_NAME: 'shop-dev-refunds',
  NIMBUS_RESOURCE_REFUNDS_ARN: 'arn:aws:sqs:us-west-2:123456789012:shop-dev-refunds',
  NIMBUS_RESOURCE_AUDIT_EVENTS_ARN: 'arn:aws:sns:us-east-1:246796806071:shop-dev-audit-events',
  NIMBUS_RESOURCE_THUMBS_NAME: 'shop-dev-thumbs',
  NIMBUS_RESOURCE_THUMBS_ARN: 'arn:aws:s3:::shop-dev-thumbs',
  NIMBUS_RESOURCE_AUDIT_STREAM_ARN:
    'arn:aws:dynamodb:us-east-1:123456789012:table/shop-dev-audit/stream/2024-01-01T00:00:00.000',
  NIMBUS_SCHEDULE_PROBE_SCHEDULE_1_ARN: SCHEDULER_ARN,
};
const PAIR_FIXTURES = ['sqs-event', 'sns-event', 'eventbridge-schedule', 's3-event', 'dynamodb-event'];

// copies of the real fixtures whose native names are those of the second resource of each pair
function secondOfEach() {
  const sqs = fixture('aws/sqs-event.json');
  for (const r of sqs.Records) r.eventSourceARN = 'arn:aws:sqs:us-west-2:123456789012:shop-dev-refunds';
  const sns = fixture('aws/sns-event.json');
  for (const r of sns.Records) r.Sns.TopicArn = 'arn:aws:sns:us-east-1:246796806071:shop-dev-audit-events';
  const sched = fixture('aws/eventbridge-schedule.json');
  sched.source = 'aws.scheduler';
  sched['detail-type'] = 'Scheduled Event';
  sched.resources = [SCHEDULER_ARN];
  const s3 = fixture('aws/s3-event.json');
  for (const r of s3.Records) {
    r.s3.bucket.name = 'shop-dev-thumbs';
    r.s3.bucket.arn = 'arn:aws:s3:::shop-dev-thumbs';
  }
  const ddb = fixture('aws/dynamodb-event.json');
  for (const r of ddb.Records) r.eventSourceARN = PAIRS_ENV.NIMBUS_RESOURCE_AUDIT_STREAM_ARN;
  return [sqs, sns, sched, s3, ddb];
}

function pairNames(a, cfg, events) {
  const [sqs, sns, sched, s3, ddb] = events.map((e) => a.toNeutral(e, cfg));
  return [sqs.source, sns.source, sched.name, [...new Set(s3.map((e) => e.bucket))].sort(),
    [...new Set(ddb.map((e) => e.table))].sort()];
}

function withEnv(vars, fn) {
  const saved = {};
  for (const k of Object.keys(PAIRS_ENV)) { saved[k] = process.env[k]; delete process.env[k]; }
  Object.assign(process.env, vars);
  const restore = () => {
    for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  };
  return Promise.resolve().then(fn).finally(restore);
}

test('two triggers per type: mapped through the NIMBUS_RESOURCE_/NIMBUS_SCHEDULE_ env vars', () => withEnv(PAIRS_ENV, async () => {
  const { mod: m, aws: a } = lambda(config('aws', 'handlers/probe.js', PAIRS_CONFIG));
  const fn = await a.init();
  assert.deepEqual(pairNames(a, fn.config, PAIR_FIXTURES.map((n) => fixture(`aws/${n}.json`))),
    ['payments', 'order-events', 'probe-schedule-0', ['images'], ['orders']]);
  assert.deepEqual(pairNames(a, fn.config, secondOfEach()),
    ['refunds', 'audit-events', 'probe-schedule-1', ['thumbs'], ['audit']]);
  // function.json itself is left as packaged
  assert.ok(Object.values(fn.config.resources).every((s) => Object.keys(s.native).length === 0));
  // and through the Lambda entry point
  const [sqs, , sched, , ddb] = secondOfEach();
  await m.handler(sqs, lambdaContext());
  assert.equal(rec.last().event.source, 'refunds');
  await m.handler(sched, lambdaContext());
  assert.equal(rec.last().event.name, 'probe-schedule-1');
  rec.clear();
  await m.handler(ddb, lambdaContext());
  assert.deepEqual(rec.all().map((r) => r.event.table), ddb.Records.map(() => 'audit'));
}));

test('two triggers per type: without the env vars the fallback is unchanged', () => withEnv({}, async () => {
  const { aws: a } = lambda(config('aws', 'handlers/probe.js', PAIRS_CONFIG));
  const fn = await a.init();
  // two triggers of the type and nothing to match: the native name, as before
  assert.deepEqual(pairNames(a, fn.config, PAIR_FIXTURES.map((n) => fixture(`aws/${n}.json`))),
    ['SQSQueue', 'snsNetTest', 'my-scheduled-rule', ['sourcebucket'], ['Example-Table']]);
  assert.deepEqual(pairNames(a, fn.config, secondOfEach()),
    ['shop-dev-refunds', 'shop-dev-audit-events', 'shop-dev-probe-schedule-1', ['shop-dev-thumbs'], ['shop-dev-audit']]);
  // one trigger of the type: that trigger's resource, as before
  const one = { ...PAIRS_CONFIG, triggers: PAIRS_CONFIG.triggers.filter((t) => t.resource !== 'refunds') };
  const { aws: a1 } = lambda(config('aws', 'handlers/probe.js', one));
  const fn1 = await a1.init();
  assert.equal(a1.toNeutral(secondOfEach()[0], fn1.config).source, 'payments');
}));
