'use strict';
// The CORS table (tests/shims/cases/cors.json) through the GCP shim (Node.js) served by the real
// @google-cloud/functions-framework: the shim answers preflights (the handler never runs) and
// replaces the handler's CORS headers with the policy's. The policy is the one the packager puts
// in function.json for the table's manifest (cors-policy.json, kept current by
// crates/nimbus-gcp/tests/cors.rs).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { buildPackage, config, freePort, Server, TESTS, TOOLS_NODE, readJson } = require('./helpers.js');

const TABLE = readJson(path.join(TESTS, 'cases', 'cors.json'));
const POLICY = readJson(path.join(TESTS, 'cases', 'cors-policy.json'));
const FF_MAIN = path.join(TOOLS_NODE, '@google-cloud', 'functions-framework', 'build', 'src', 'main.js');
const PRELOAD = path.join(__dirname, 'loopback-preload.cjs');

function check(c, target, status, headers) {
  const want = c[target] || c.expect;
  const origin = c.request.origin;
  const wrong = [];
  if (want.status !== status) wrong.push(`status ${status} (want ${want.status})`);
  const handled = headers['x-handled'] === 'yes';
  if (want.handler !== handled) wrong.push(`handler ran: ${handled} (want ${want.handler})`);
  const acao = headers['access-control-allow-origin'];
  const allowed = acao !== undefined && acao === origin;
  if (want.allowed !== allowed) wrong.push(`allowed: ${allowed} (want ${want.allowed}; access-control-allow-origin: ${acao})`);
  if (!allowed) {
    const leaked = Object.keys(headers).filter((k) => k.startsWith('access-control-'));
    if (leaked.length) wrong.push(`a refused request got ${leaked}`);
  }
  for (const [k, v] of Object.entries(want.headers || {})) {
    if (headers[k] !== v) wrong.push(`${k}: ${headers[k]} (want ${v})`);
  }
  return wrong;
}

test('GCP shim: the CORS table', async (t) => {
  const route = TABLE.route;
  const cfg = config('gcp', 'handlers/cors_probe.js', {
    resources: {},
    triggers: [{ type: 'http', method: route.method, path: route.path, cors: POLICY }],
  });
  const root = buildPackage('gcp', cfg);
  const port = await freePort();
  const argv = [process.execPath, '--require', PRELOAD, FF_MAIN, '--target=nimbus_entry', `--source=${root}`, `--port=${port}`];
  const env = { ...process.env };
  delete env.NIMBUS_PACKAGE_ROOT;
  delete env.NODE_ENV;
  const srv = await Server.start(argv, { cwd: root, env, port });
  t.after(() => srv.stop());
  for (const c of TABLE.cases) {
    await t.test(c.name, async () => {
      const r = c.request;
      const headers = {};
      for (const [key, header] of [['origin', 'Origin'], ['request_method', 'Access-Control-Request-Method'],
        ['request_headers', 'Access-Control-Request-Headers'], ['cookie', 'Cookie']]) {
        if (r[key] !== undefined) headers[header] = r[key];
      }
      const res = await srv.request(r.method, route.path, { headers });
      const got = {};
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const k = res.rawHeaders[i].toLowerCase();
        got[k] = got[k] !== undefined ? `${got[k]}, ${res.rawHeaders[i + 1]}` : res.rawHeaders[i + 1];
      }
      assert.deepEqual(check(c, 'gcp', res.status, got), [], JSON.stringify(got));
      if (res.status === 204) assert.equal(got.vary, 'Origin');
    });
  }
});
