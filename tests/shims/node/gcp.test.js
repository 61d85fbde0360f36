'use strict';
// GCP shim (Node.js) served by the real @google-cloud/functions-framework CLI, from a package laid
// out as the packager lays it out (package.json {"main":"_nimbus_gcp.js"} + _nimbus/ + user code).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { buildPackage, config, fixture, localEvent, expected, Recorder, freePort, Server, headerValues, TESTS, TOOLS_NODE, readJson } =
  require('./helpers.js');

const CASES = readJson(path.join(TESTS, 'cases', 'gcp-cloudevents.json'));
const FF_MAIN = path.join(TOOLS_NODE, '@google-cloud', 'functions-framework', 'build', 'src', 'main.js');
const PRELOAD = path.join(__dirname, 'loopback-preload.cjs');

function caseData(c) {
  const data = c.data.fixture ? fixture(c.data.fixture) : localEvent(c.data.local);
  for (const k of c.data.drop || []) delete data[k];
  return data;
}

async function startFF(cfg, signatureArg) {
  const root = buildPackage('gcp', cfg);
  const rec = new Recorder();
  const port = await freePort();
  const argv = [process.execPath, '--require', PRELOAD, FF_MAIN, '--target=nimbus_entry', `--source=${root}`, `--port=${port}`];
  if (signatureArg) argv.push(`--signature-type=${signatureArg}`);
  const env = { ...process.env, NIMBUS_TEST_RECORD: rec.path };
  delete env.NIMBUS_PACKAGE_ROOT;
  delete env.NODE_ENV;
  const srv = await Server.start(argv, { cwd: root, env, port });
  srv.rec = rec;
  return srv;
}

function binary(c, data) {
  const headers = Object.fromEntries(Object.entries(c.ce).map(([k, v]) => [`ce-${k}`, v]));
  headers['content-type'] = 'application/json';
  return { headers, body: JSON.stringify(data) };
}

function structured(c, data) {
  return { headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify({ ...c.ce, datacontenttype: 'application/json', data }) };
}

test('GCP http signature', async (t) => {
  const srv = await startFF(config('gcp'), null);
  t.after(() => srv.stop());

  await t.test('http request -> neutral event', async () => {
    srv.rec.clear();
    const r = await srv.request('GET', '/orders/42?x=1&x=2&y=&z=a%20b', {
      headers: { 'X-Custom': 'v', 'Function-Execution-Id': 'exec-1', 'X-Forwarded-For': '203.0.113.9, 10.0.0.1' },
    });
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(headerValues(r.rawHeaders, 'x-handler'), ['probe']);
    assert.deepEqual(headerValues(r.rawHeaders, 'content-type'), ['application/json']);
    const out = JSON.parse(r.body);
    const ev = out.event;
    const pick = Object.fromEntries(['type', 'method', 'path', 'route', 'path_params', 'query', 'body', 'is_base64', 'source_ip'].map((k) => [k, ev[k]]));
    assert.deepEqual(pick, {
      type: 'http', method: 'GET', path: '/orders/42', route: '/orders/{id}', path_params: { id: '42' },
      query: { x: '1,2', y: '', z: 'a b' }, body: null, is_base64: false, source_ip: '203.0.113.9',
    });
    assert.equal(ev.headers['x-custom'], 'v');
    assert.ok(ev.headers.host.startsWith('127.0.0.1'));
    assert.deepEqual(out.context, {
      function_name: 'probe', request_id: 'exec-1', service: 'shop', stage: 'dev', provider: 'gcp',
      deadline_ms: out.context.deadline_ms, remaining_ok: true, resources: ['images', 'order-events', 'orders'],
    });
    assert.deepEqual(srv.rec.last().event, ev);
  });

  await t.test('request bodies', async () => {
    let r = await srv.request('POST', '/orders/7', { headers: { 'content-type': 'application/json' }, body: '{"a": 1}' });
    let ev = JSON.parse(r.body).event;
    assert.equal(r.status, 200);
    assert.equal(ev.body, '{"a": 1}');
    assert.equal(ev.is_base64, false);
    r = await srv.request('PUT', '/blob', { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0xff, 0, 0xfe]) });
    ev = JSON.parse(r.body).event;
    assert.equal(ev.is_base64, true);
    assert.deepEqual(Buffer.from(ev.body, 'base64'), Buffer.from([0xff, 0, 0xfe]));
    assert.equal(ev.route, '/{path+}');
    assert.deepEqual(ev.path_params, { path: 'blob' });
  });

  await t.test('a path none of its routes takes (an empty catch-all tail) gets 404 without the handler', async () => {
    const r = await srv.request('GET', '/');
    assert.equal(r.status, 404);
    assert.deepEqual(JSON.parse(r.body), { message: 'Not Found' });
  });

  await t.test('results', async () => {
    let r = await srv.request('GET', '/x/text');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hello text');
    assert.deepEqual(headerValues(r.rawHeaders, 'content-type'), ['text/plain; charset=utf-8']);
    r = await srv.request('GET', '/x/bytes');
    assert.deepEqual(r.body, Buffer.from([0, 1, 0xff, 0x62, 0x69, 0x6e]));
    r = await srv.request('GET', '/x/none');
    assert.equal(r.status, 204);
    assert.equal(r.body.length, 0);
    r = await srv.request('GET', '/x/cookies');
    assert.equal(r.status, 201);
    assert.equal(r.body.toString(), 'made');
    assert.deepEqual(headerValues(r.rawHeaders, 'set-cookie'), ['a=1', 'b=2']);
    r = await srv.request('GET', '/x/error');
    assert.equal(r.status, 500);
    // The stack trace stays in the logs: only the local runtime answers it (the Functions
    // Framework answers the message alone).
    assert.doesNotMatch(r.body.toString(), /probe\.js|\sat /);
  });

  await t.test('resources', async () => {
    const r = JSON.parse((await srv.request('GET', '/x/resources')).body);
    assert.deepEqual(r.granted, ['images', 'order-events', 'orders']);
    assert.ok(r.not_granted.message.includes('"secrets" is not granted to function "probe"'));
    // the GCP clients exist; `orders` is granted `write`, which does not allow reads
    assert.equal(r.no_client.type, 'ResourceAccessError');
    assert.ok(r.no_client.message.includes('table "orders", which does not allow get()'), r.no_client.message);
  });

  await t.test('Cloud Scheduler HTTP POST -> schedule', async () => {
    srv.rec.clear();
    const r = await srv.request('POST', '/', {
      headers: {
        'content-type': 'application/octet-stream', 'X-CloudScheduler': 'true', 'X-CloudScheduler-JobName': 'nightly-job',
        'X-CloudScheduler-ScheduleTime': '2026-11-25T03:00:00.000Z', 'User-Agent': 'Google-Cloud-Scheduler',
      },
      body: JSON.stringify(fixture('gcp/scheduler-job-simple.json')),
    });
    assert.equal(r.status, 204);
    assert.deepEqual(srv.rec.last().event, { type: 'schedule', name: 'nightly', time: '2026-11-25T03:00:00Z' });
  });
});

test('GCP cloudevent signature (registered from function.json)', async (t) => {
  // function.json says cloudevent, the command line says http: the registration must win
  const srv = await startFF(config('gcp', 'handlers/probe.js', { gcp: { signature: 'cloudevent' } }), 'http');
  t.after(() => srv.stop());

  await t.test('registration won', async () => {
    assert.ok(await srv.waitForOutput(/Signature type: cloudevent/), srv.output);
  });

  for (const c of CASES) {
    for (const [mode, mk] of [['binary', binary], ['structured', structured]]) {
      await t.test(`${c.name} (${mode})`, async () => {
        srv.rec.clear();
        const r = await srv.request('POST', '/', mk(c, caseData(c)));
        // the framework answers 204 when a cloudevent function returns nothing
        assert.ok(r.status === 200 || r.status === 204, `${r.status} ${r.body}${srv.output}`);
        const got = srv.rec.last();
        assert.deepEqual(got.event, expected('gcp', c.name));
        assert.equal(got.context.request_id, c.ce.id);
        assert.equal(got.context.provider, 'gcp');
      });
    }
  }

  await t.test('Pub/Sub failure -> 500 (redelivered)', async () => {
    const data = caseData(CASES[0]);
    data.message.data = Buffer.from('please fail').toString('base64');
    const r = await srv.request('POST', '/', binary(CASES[0], data));
    assert.equal(r.status, 500);
  });

  await t.test('Firestore protobuf payload is rejected clearly', async () => {
    const c = CASES.find((x) => x.name === 'firestore-written');
    const headers = Object.fromEntries(Object.entries(c.ce).map(([k, v]) => [`ce-${k}`, v]));
    headers['content-type'] = 'application/protobuf';
    const r = await srv.request('POST', '/', { headers, body: Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]) });
    assert.equal(r.status, 500);
    assert.ok(await srv.waitForOutput(/event data content type application\/json/), srv.output);
  });
});

test('http signature fallback parses CloudEvents when function.json says cloudevent', async (t) => {
  const root = buildPackage('gcp', config('gcp', 'handlers/probe.js', { gcp: { signature: 'cloudevent' } }));
  const rec = new Recorder();
  const port = await freePort();
  const env = { ...process.env, NIMBUS_TEST_RECORD: rec.path };
  delete env.NODE_ENV;
  // Run the real CLI from `node -e`: require.main is then undefined, so the shim finds no framework
  // instance shared with the CLI, cannot register, and the http signature stays in force.
  const srv = await Server.start([process.execPath, '--require', PRELOAD, '-e', `require(${JSON.stringify(FF_MAIN)})`, '--',
    '--target=nimbus_entry', `--source=${root}`, `--port=${port}`, '--signature-type=http'], { cwd: root, env, port });
  t.after(() => srv.stop());
  assert.ok(await srv.waitForOutput(/Signature type: http/), srv.output);
  for (const c of CASES) {
    for (const mk of [binary, structured]) {
      rec.clear();
      const r = await srv.request('POST', '/', mk(c, caseData(c)));
      assert.equal(r.status, 200, r.body.toString());
      assert.deepEqual(rec.last().event, expected('gcp', c.name));
    }
  }
});

test('signature derivation (when function.json has no gcp.signature)', () => {
  const gcp = require(path.join(buildPackage('gcp', config('gcp')), '_nimbus', 'gcp.js'));
  assert.equal(gcp.signature({ gcp: { signature: 'cloudevent' } }), 'cloudevent');
  assert.equal(gcp.signature({ triggers: [{ type: 'topic' }] }), 'cloudevent');
  assert.equal(gcp.signature({ triggers: [{ type: 'bucket' }, { type: 'table' }] }), 'cloudevent');
  assert.equal(gcp.signature({ triggers: [{ type: 'schedule' }] }), 'http');
  assert.equal(gcp.signature({ triggers: [{ type: 'schedule' }, { type: 'topic' }] }), 'http');
  assert.equal(gcp.signature({ triggers: [{ type: 'http' }, { type: 'queue' }] }), 'http');
  assert.equal(gcp.signature({ triggers: [{ type: 'queue' }] }), 'http'); // pushed over HTTP
  assert.equal(gcp.signature({ triggers: [{ type: 'queue' }, { type: 'topic' }] }), 'http');
  assert.equal(gcp.signature({}), 'http');
});

// What a push subscription POSTs to its endpoint (Pub/Sub's documented push format).
function pushEnvelope(subscription, data = '{"order":42}', attempt = 3) {
  return {
    message: {
      attributes: { kind: 'card' }, data: Buffer.from(data).toString('base64'), messageId: '2070443601311540',
      message_id: '2070443601311540', publishTime: '2026-02-26T19:13:55.749Z', publish_time: '2026-02-26T19:13:55.749Z',
    },
    subscription,
    deliveryAttempt: attempt,
  };
}

test('Pub/Sub push deliveries to a queue function (http signature)', async (t) => {
  const srv = await startFF(config('gcp'), null);
  t.after(() => srv.stop());

  await t.test('a push -> queue event, 204 acknowledges', async () => {
    srv.rec.clear();
    const r = await srv.request('POST', '/', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(pushEnvelope('projects/my-project/subscriptions/jobs-sub')),
    });
    assert.equal(r.status, 204, r.body.toString() + srv.output);
    assert.deepEqual(srv.rec.last().event, {
      type: 'queue', source: 'jobs',
      messages: [{ id: '2070443601311540', body: '{"order":42}', attributes: { kind: 'card' }, receive_count: 3 }],
    });
  });

  await t.test('a failed message -> 500 (redelivered, then dead-lettered)', async () => {
    const r = await srv.request('POST', '/', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(pushEnvelope('projects/my-project/subscriptions/jobs-sub', 'please fail')),
    });
    assert.equal(r.status, 500);
  });

  await t.test('a CloudEvent still reaches an Eventarc trigger of the same function', async () => {
    srv.rec.clear();
    const c = CASES.find((x) => x.name === 'pubsub-topic');
    const r = await srv.request('POST', '/', binary(c, caseData(c)));
    assert.equal(r.status, 200, r.body.toString());
    assert.deepEqual(srv.rec.last().event, expected('gcp', c.name));
  });
});

test('native names from the environment', () => {
  const gcp = require(path.join(buildPackage('gcp', config('gcp')), '_nimbus', 'gcp.js'));
  const env = {
    NIMBUS_RESOURCE_PAYMENTS_SUBSCRIPTION: 'projects/p/subscriptions/shop-dev-payments',
    NIMBUS_SCHEDULE_NIGHTLY_JOB: 'projects/p/locations/r/jobs/shop-dev-f-schedule-0',
  };
  const cfg = gcp.withEnvNatives(config('gcp'), env);
  const ev = gcp.pushEvent(pushEnvelope('projects/p/subscriptions/shop-dev-payments'), cfg);
  assert.deepEqual([ev.type, ev.source], ['queue', 'payments']);
  assert.equal(gcp.scheduleFromHttp({ 'x-cloudscheduler-jobname': 'shop-dev-f-schedule-0' }, cfg).name, 'nightly');
});

test('bucket events outside the triggers\' prefix and suffix are acknowledged, not handled', async (t) => {
  const cfg = config('gcp', 'handlers/probe.js', {
    triggers: [{ type: 'bucket', resource: 'images', events: ['created'], prefix: 'uploads/', suffix: '.jpg' }],
    resources: { images: { type: 'bucket', access: 'read_write', native: { name: 'sample-bucket' } } },
    gcp: { signature: 'cloudevent' },
  });
  const srv = await startFF(cfg, null);
  t.after(() => srv.stop());
  const created = CASES.find((x) => x.name === 'storage-finalized');
  const deleted = CASES.find((x) => x.name === 'storage-deleted');
  const deliver = (c, key) => srv.request('POST', '/', binary(c, { ...caseData(c), name: key }));
  srv.rec.clear();
  for (const key of ['thumbnails/cat.jpg', 'uploads/cat.png', 'cat.jpg']) {
    const r = await deliver(created, key);
    assert.ok(r.status === 200 || r.status === 204, `${r.status} ${r.body}`); // acknowledged: no redelivery
  }
  assert.ok((await deliver(deleted, 'uploads/cat.jpg')).status < 300); // `deleted` is not among the events
  assert.deepEqual(srv.rec.all(), []);
  assert.ok((await deliver(created, 'uploads/cat.jpg')).status < 300);
  assert.equal(srv.rec.last().event.key, 'uploads/cat.jpg');
});
