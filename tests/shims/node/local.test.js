'use strict';
// Local worker (Node.js): a real subprocess speaking the framed protocol on fds 3 (in) and 4 (out).

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { buildPackage, config } = require('./helpers.js');

class Worker {
  // `files`: stdout and stderr go to these files (as the local runtime does) instead of pipes.
  constructor(root, handler, files) {
    const out = files ? files.map((f) => fs.openSync(f, 'a')) : ['pipe', 'pipe'];
    this.proc = spawn(process.execPath, ['_nimbus/local_worker.js'], {
      cwd: root,
      env: { ...process.env, NIMBUS_PACKAGE_ROOT: '' },
      stdio: ['ignore', ...out, 'pipe', 'pipe'], // fd 3: runtime -> worker, fd 4: worker -> runtime
    });
    if (files) out.forEach((fd) => fs.closeSync(fd));
    this.handler = handler;
    this.stdout = Buffer.alloc(0);
    this.stderr = Buffer.alloc(0);
    if (!files) {
      this.proc.stdout.on('data', (b) => { this.stdout = Buffer.concat([this.stdout, b]); });
      this.proc.stderr.on('data', (b) => { this.stderr = Buffer.concat([this.stderr, b]); });
    }
    this.toWorker = this.proc.stdio[3];
    this.fromWorker = this.proc.stdio[4];
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.eof = false;
    this.fromWorker.on('data', (chunk) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0);
        this.frames.push(JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8')));
        this.buf = this.buf.subarray(4 + n);
      }
      this.flush();
    });
    this.fromWorker.on('end', () => { this.eof = true; this.flush(); });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }

  flush() {
    while (this.waiters.length && (this.frames.length || this.eof)) this.waiters.shift()(this.frames.length ? this.frames.shift() : null);
  }

  recv() {
    return new Promise((resolve) => { this.waiters.push(resolve); this.flush(); });
  }

  send(obj) {
    const data = Buffer.from(JSON.stringify(obj));
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(data.length);
    this.toWorker.write(Buffer.concat([hdr, data]));
  }

  sendRaw(buf) { this.toWorker.write(buf); }

  invoke(id, event, deadlineIn = 5000, requestId) {
    this.send({ id, event, deadline_ms: Date.now() + deadlineIn, request_id: requestId || `req-${id}` });
    return this.recv();
  }

  async close() {
    this.toWorker.end();
    return this.exited;
  }
}

const workers = [];
function start(handler = 'handlers/probe.js', files) {
  const w = new Worker(buildPackage('local', config('local', handler)), handler, files);
  workers.push(w);
  return w;
}
test.after(() => { for (const w of workers) if (w.proc.exitCode === null) w.proc.kill('SIGKILL'); });

const HTTP = {
  type: 'http', method: 'POST', path: '/orders', route: '/orders', path_params: {}, query: {},
  headers: { 'content-type': 'application/json' }, body: '{"a":1}', is_base64: false, source_ip: '127.0.0.1',
};

test('ready, invocations, EOF', async () => {
  const w = start();
  const ready = await w.recv();
  assert.equal(ready.ready, true);
  assert.ok(ready.load_ms >= 0);
  assert.equal(ready.pid, w.proc.pid);
  const deadline = Date.now() + 4000;
  w.send({ id: 1, event: HTTP, deadline_ms: deadline, request_id: 'req-abc' });
  const r = await w.recv();
  assert.equal(r.id, 1);
  assert.equal(r.ok, true);
  assert.ok(r.duration_ms >= 0);
  assert.equal(r.result.status, 200);
  assert.deepEqual(r.result.headers, { 'x-handler': 'probe', 'content-type': 'application/json' });
  const body = JSON.parse(r.result.body);
  assert.deepEqual(body.event, HTTP);
  assert.deepEqual(body.context, {
    function_name: 'probe', request_id: 'req-abc', service: 'shop', stage: 'dev', provider: 'local',
    deadline_ms: deadline, remaining_ok: true, resources: ['orders'],
  });
  const q = {
    type: 'queue', source: 'payments', messages: [
      { id: 'm1', body: 'ok', attributes: {}, receive_count: 1 },
      { id: 'm2', body: 'please fail', attributes: { a: 'b' }, receive_count: 2 }],
  };
  let x = await w.invoke('two', q);
  assert.deepEqual([x.id, x.ok, x.result], ['two', true, { failed: ['m2'] }]);
  q.messages[1].body = 'fine';
  assert.deepEqual((await w.invoke(3, q)).result, { failed: [] });
  assert.equal((await w.invoke(4, { type: 'schedule', name: 'nightly', time: '2026-11-25T03:00:00Z' })).result, null);
  x = await w.invoke(5, { ...HTTP, path: '/x/bytes' });
  assert.deepEqual(x.result, { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: 'AAH/Ymlu', is_base64: true });
  x = await w.invoke(6, { ...HTTP, path: '/x/none' });
  assert.deepEqual(x.result, { status: 204, headers: {}, body: null, is_base64: false });
  assert.equal(await w.close(), 0);
});

test('handler exceptions keep the worker alive', async () => {
  const w = start();
  assert.equal((await w.recv()).ready, true);
  let r = await w.invoke(1, { ...HTTP, path: '/x/error' });
  assert.equal(r.ok, false);
  assert.equal(r.error.type, 'Error');
  assert.equal(r.error.message, 'boom from handler');
  assert.match(r.error.stack, /probe\.js/);
  // The user's frames only: the first is the handler's file:line, no shim or Node frame.
  const frames = r.error.stack.split('\n').filter((l) => /^\s+at /.test(l));
  assert.match(frames[0], /probe\.js:\d+:\d+/);
  assert.doesNotMatch(r.error.stack, /_nimbus|node:internal/);
  r = await w.invoke(2, { type: 'queue', source: 'payments', messages: [{ id: 'm1', body: 'boom', attributes: {}, receive_count: 1 }] });
  assert.equal(r.ok, false);
  assert.equal(r.error.message, 'batch boom');
  assert.equal((await w.invoke(3, HTTP)).ok, true);
  assert.equal(await w.close(), 0);
});

test('protocol errors', async () => {
  const w = start();
  assert.equal((await w.recv()).ready, true);
  w.send({ id: 7, event: { nope: 1 } });
  let r = await w.recv();
  assert.deepEqual([r.id, r.ok, r.error.type], [7, false, 'ProtocolError']);
  const bad = Buffer.from('{bad}');
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(bad.length);
  w.sendRaw(Buffer.concat([hdr, bad]));
  r = await w.recv();
  assert.equal(r.id, null);
  assert.equal(r.error.type, 'ProtocolError');
  assert.match(r.error.message, /not UTF-8 JSON/);
  r = await w.invoke(8, { type: 'topic', source: 't', messages: [{ id: 'x', body: 'fail', attributes: {} }, { id: 'y', body: 'ok', attributes: {} }] });
  assert.deepEqual(r.result, { failed: ['x'] });
  assert.equal(await w.close(), 0);
});

test('load error', async () => {
  const w = start('handlers/broken.js');
  const r = await w.recv();
  assert.equal(r.ready, false);
  assert.equal(r.error.type, 'HandlerLoadError');
  assert.match(r.error.message, /broken on purpose/);
  assert.match(r.error.stack, /broken\.js/);
  assert.equal(await w.recv(), null);
  assert.equal(await w.exited, 1);
});

test('stdout does not corrupt the protocol', async () => {
  const w = start('handlers/printer.js');
  assert.equal((await w.recv()).ready, true);
  for (let i = 0; i < 3; i++) {
    const r = await w.invoke(i, HTTP);
    assert.equal(r.ok, true);
    assert.equal(r.result.body, 'printed');
  }
  assert.equal(await w.close(), 0);
  const out = w.stdout.toString('latin1');
  assert.equal(out.split('log line from the handler\n').length - 1, 3);
  assert.ok(out.includes('{"id":"x1"}'));
  assert.equal(w.stderr.toString().split('to stderr').length - 1, 3);
});

test('with stdout and stderr in files, replies say where each invocation\'s output ends', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nimbus-output-'));
  const files = [path.join(dir, 'stdout'), path.join(dir, 'stderr')];
  const w = start('handlers/printer.js', files);
  const sizes = () => files.map((f) => fs.statSync(f).size);
  const ready = await w.recv();
  assert.equal(ready.ready, true);
  assert.deepEqual(ready.output, sizes());
  for (let i = 0; i < 3; i++) {
    const r = await w.invoke(i, HTTP);
    assert.equal(r.result.body, 'printed');
    assert.deepEqual(r.output, sizes(), 'flushed: nothing more is written after the reply');
    assert.ok(r.output[0] > ready.output[0] && r.output[1] > 0);
  }
  assert.equal(await w.close(), 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('timeout_ms counts from the start of the invocation', async () => {
  const w = start();
  assert.equal((await w.recv()).ready, true);
  const before = Date.now();
  w.send({ id: 1, event: HTTP, timeout_ms: 3000, request_id: 'req-1' });
  w.send({ id: 2, event: HTTP, timeout_ms: 3000, request_id: 'req-2' }); // sent ahead
  const replies = [await w.recv(), await w.recv()];
  const after = Date.now();
  assert.deepEqual(replies.map((r) => r.id), [1, 2]);
  for (const r of replies) {
    const deadline = JSON.parse(r.result.body).context.deadline_ms;
    assert.ok(deadline >= before + 3000 && deadline <= after + 3000, `${deadline}`);
  }
  assert.equal(await w.close(), 0);
});

test('ESM handler', async () => {
  const w = start('handlers/esm_probe.mjs');
  assert.equal((await w.recv()).ready, true);
  const r = await w.invoke(1, HTTP);
  assert.deepEqual(JSON.parse(r.result.body), { module: 'esm', type: 'http', function_name: 'probe' });
  assert.equal(await w.close(), 0);
});
