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
