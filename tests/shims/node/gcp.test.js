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
    assert.equal(ev.route, null);
    assert.deepEqual(ev.path_params, {});
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
  });

  await t.test('resources', async () => {
    const r = JSON.parse((await srv.request('GET', '/x/resources')).body);
    assert.deepEqual(r.granted, ['images', 'order-events', 'orders']);
    assert.ok(r.not_granted.message.includes('"secrets" is not granted to function "probe"'));
    assert.ok(r.no_client.message.includes('"orders" (table)') && r.no_client.message.includes('"gcp"'));
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
  assert.equal(gcp.signature({}), 'http');
});
