'use strict';
// AWS shim secrets (Node.js, _nimbus/aws_secrets.js): NIMBUS_SECRET_<VAR> references resolved from a
// real moto_server's Secrets Manager at cold start, before the handler module is loaded, in a real
// Node.js process started like Lambda starts one; cached for the process's life; failures name the
// variable and the ARN, never a value. Starts its own moto_server from the test venv.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { ROOT, TOOLS_NODE, buildPackage, config, fixture, freePort, Server, requireTool, sleep } = require('./helpers.js');

const REGION = 'us-east-1';
const smSdk = requireTool('@aws-sdk/client-secrets-manager');

let moto = null;
let endpoint = process.env.NIMBUS_TEST_AWS_ENDPOINT || null;
let sm = null;

test.before(async () => {
  if (!endpoint) {
    const venvBin = process.env.NIMBUS_TEST_PYTHON ? path.dirname(process.env.NIMBUS_TEST_PYTHON) : path.join(ROOT, '.tools', 'venv', 'bin');
    const port = await freePort();
    moto = await Server.start([path.join(venvBin, 'moto_server'), '-H', '127.0.0.1', '-p', String(port)], { cwd: ROOT, env: process.env, port });
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
  sm = new smSdk.SecretsManagerClient({ endpoint, region: REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});

test.after(async () => {
  if (sm) sm.destroy();
  if (moto) await moto.stop();
});

async function secret(value) {
  // Named as a deploy names it; referenced by its full ARN, as the deploy writes NIMBUS_SECRET_<VAR>.
  const name = `shop-dev/api-key-${crypto.randomBytes(4).toString('hex')}`;
  const input = typeof value === 'string' ? { Name: name, SecretString: value } : { Name: name, SecretBinary: value };
  return (await sm.send(new smSdk.CreateSecretCommand(input))).ARN;
}

// An AWS package whose node_modules holds the SDK (as the Lambda runtime provides it).
function awsPackage() {
  const root = buildPackage('aws', config('aws', 'handlers/secret_probe.js'));
  fs.symlinkSync(TOOLS_NODE, path.join(root, 'node_modules'), 'dir');
  return root;
}

// Two invocations in one fresh Node.js process; ROTATE (an ARN) is given a new value between them.
const SCRIPT = `
const m = require('./_nimbus_aws.js');
const ctx = { functionName: 'probe', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 10000 };
(async () => {
  const ev = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const out = [await m.handler(ev, ctx)];
  if (process.env.ROTATE) {
    const sdk = require('@aws-sdk/client-secrets-manager');
    await new sdk.SecretsManagerClient({}).send(new sdk.PutSecretValueCommand({ SecretId: process.env.ROTATE, SecretString: 'rotated' }));
  }
  out.push(await m.handler(ev, ctx));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String((e && e.stack) || e)); process.exit(1); });
`;

function run(refs, extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('NIMBUS_SECRET_') && k !== 'API_KEY' && k !== 'DB_PASSWORD'));
  Object.assign(env, {
    AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION, AWS_CONFIG_FILE: path.join(ROOT, '.no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(ROOT, '.no-aws-credentials'),
  }, extra);
  for (const [k, v] of Object.entries(refs)) env[`NIMBUS_SECRET_${k}`] = v;
  return spawnSync(process.execPath, ['-e', SCRIPT], {
    cwd: awsPackage(), env, input: JSON.stringify(fixture('aws/apigw-v2-request-no-authorizer.json')), encoding: 'utf8', timeout: 120000,
  });
}

test('secrets are in process.env before the handler module is loaded, and kept for the process life', async () => {
  const api = await secret('sk_live_node_1');
  const db = await secret('p@ss word\nline2');
  const proc = run({ API_KEY: api, DB_PASSWORD: db }, { ROTATE: api });
  assert.equal(proc.status, 0, proc.stderr);
  const [first, second] = JSON.parse(proc.stdout.trim().split('\n').pop()).map((r) => JSON.parse(r.body));
  const want = { API_KEY: 'sk_live_node_1', DB_PASSWORD: 'p@ss word\nline2' };
  assert.deepEqual(first, { at_import: want, now: want });
  assert.deepEqual(second, first); // rotated in AWS after the cold start: the process keeps its value
});

test('a missing secret fails the invocation naming the variable and the ARN, never a value', async () => {
  const good = await secret('never-printed-value');
  const missing = `arn:aws:secretsmanager:${REGION}:123456789012:secret:shop/dev/gone-AbCdEf`;
  const proc = run({ API_KEY: good, DB_PASSWORD: missing });
  assert.notEqual(proc.status, 0);
  assert.match(proc.stderr, /SecretError/);
  assert.ok(proc.stderr.includes(`environment variable DB_PASSWORD (${missing})`), proc.stderr);
  assert.match(proc.stderr, /ResourceNotFoundException/);
  assert.match(proc.stderr, /nimbus secret set/);
  assert.ok(!(proc.stderr + proc.stdout).includes('never-printed-value'));
});

test('a binary secret is refused with how to fix', async () => {
  const arn = await secret(Buffer.from([0, 1]));
  const proc = run({ API_KEY: arn });
  assert.notEqual(proc.status, 0);
  assert.ok(proc.stderr.includes(`environment variable API_KEY (${arn}) holds binary data`), proc.stderr);
});

test('without references no SDK client is made and the environment is untouched', async () => {
  const root = awsPackage();
  const secrets = require(path.join(root, '_nimbus', 'aws_secrets.js'));
  const env = { PATH: '/bin', NIMBUS_SECRET_: 'x', NIMBUS_SECRET_EMPTY: '' };
  assert.deepEqual(secrets.references(env), {});
  assert.deepEqual(await secrets.resolveInto(env, { getSecretValue: () => { throw new Error('called'); } }), []);
  assert.deepEqual(env, { PATH: '/bin', NIMBUS_SECRET_: 'x', NIMBUS_SECRET_EMPTY: '' });
});
