'use strict';
// Nimbus local worker (Node.js): runs one function for the local runtime.
//
// Started by the local runtime as `node _nimbus/local_worker.js` with cwd = the unpacked package
// root and two inherited pipes: fd 3 (runtime -> worker) and fd 4 (worker -> runtime); stdout and
// stderr stay the handler's own (logs). When NIMBUS_LIFE_FD names an fd (5), that is the read end of
// a pipe the runtime never writes to: it ends when the runtime is gone (even after `kill -9`), and
// a watchdog shell the worker starts then kills every process carrying its NIMBUS_WORKER_TAG
// (children that left the group: setsid, daemons) and its process group, so that nothing outlives
// the runtime, even while the handler blocks the event loop.
// Frames: 4-byte big-endian length + UTF-8 JSON.
// First frame: {"ready": true, "load_ms"} (or {"ready": false, "error"} and exit 1); then, one at a
// time and in the order received, {"id", "event", "timeout_ms" (or "deadline_ms"), "request_id"} ->
// {"id", "ok": true, "result", "duration_ms"} or {"id", "ok": false, "error": {"type", "message",
// "stack"}, "duration_ms"}. The runtime may send the next invocation before the reply (ahead): it
// starts right after that reply, and its deadline counts from then. When stdout and stderr
// are files (the runtime's), the ready frame and each reply also carry "output": [out, err], their
// sizes once flushed: where that invocation's output ends. Exit 0 on EOF of fd 3.
// During an invocation the handler (through the resource clients) may call `rpc(resource, op, args)`:
// it sends {"rpc": n, "resource", "op", "args"} and its Promise settles when the runtime answers
// {"rpc": n, "ok": true, "result"} or {"rpc": n, "ok": false, "error": {"type", "message"}}.
// The runtime starts node with --max-old-space-size=<memory_mb>.
// See docs/function-contract.md, "Local worker protocol".

const fs = require('node:fs');
const net = require('node:net');
const childProcess = require('node:child_process');
const core = require('./core.js');
require('./local_resources.js'); // registers the "local" resource clients

const IN_FD = 3;
const OUT_FD = 4;
const MAX_FRAME = 64 * 1024 * 1024;
const PROVIDER = 'local';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** A resource call through the local runtime failed (an `ok: false` RPC reply). */
class ResourceError extends core.NimbusError {
  constructor(type, message) {
    super(message);
    this.type = type; // the runtime's error type (NotFound, ValidationError, ...)
  }
}

// RPC state: whether the worker is serving and an invocation is running (RPC frames are only valid
// then), the last RPC number, and the calls waiting for their reply.
let serving = false;
let invoking = 0;
let rpcSeq = 0;
const rpcPending = new Map();

function resourceError(error) {
  const e = error && typeof error === 'object' ? error : {};
  const type = String(e.type || 'ResourceError');
  const message = String(e.message || 'resource call failed');
  const Cls = core[type];
  if (typeof Cls === 'function' && Cls.prototype instanceof core.NimbusError) {
    return Object.assign(new Cls(message), { type }); // the shim's own class, e.g. ResourceAccessError
  }
  return new ResourceError(type, message);
}

/**
 * Make one resource call through the local runtime. Resolves with the result; rejects with a
 * ResourceError (or the shim's own class when the runtime names one, e.g. ResourceAccessError).
 * Only possible while an invocation runs; several calls may be in flight at once.
 */
function rpc(resource, op, args) {
  if (!serving || !invoking) {
    return Promise.reject(new core.ResourceUnavailableError(
      `resource '${resource}': resource calls are only possible while the local runtime is invoking the handler`));
  }
  const n = ++rpcSeq;
  return new Promise((resolve, reject) => {
    rpcPending.set(n, { resolve, reject });
    try {
      writeFrame({ rpc: n, resource, op, args: args === undefined ? {} : args });
    } catch (err) {
      rpcPending.delete(n);
      reject(err);
    }
  });
}

function settleRpc(msg) {
  const call = rpcPending.get(msg.rpc);
  if (!call) return; // a reply nobody waits for (cannot happen with a well-behaved runtime)
  rpcPending.delete(msg.rpc);
  if (msg.ok === true) call.resolve(msg.result === undefined ? null : msg.result);
  else call.reject(resourceError(msg.error));
}

function writeFrame(obj) {
  writeEncoded(core.dumps(obj));
}

// Writes one frame whose JSON is already encoded: the text is encoded straight into the frame.
function writeEncoded(text) {
  const size = Buffer.byteLength(text, 'utf8');
  const buf = Buffer.allocUnsafe(4 + size);
  buf.writeUInt32BE(size, 0);
  buf.write(text, 4, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(OUT_FD, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(sleeper, 0, 0, 1); // the runtime is slow to read: wait 1 ms
    }
  }
}

function openInput() {
  try {
    return new net.Socket({ fd: IN_FD, readable: true, writable: false });
  } catch {
    return fs.createReadStream(null, { fd: IN_FD });
  }
}

// Output the handler wrote is written out before the reply, so that the reply marks the end of the
// invocation's output. (Writes to a full pipe are queued by Node: wait until they are flushed.)
// Returns null when nothing is pending, so that the caller need not wait a tick.
function flushStdio() {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0 && !s.destroyed);
  if (!pending.length) return null;
  return Promise.all(pending.map((s) => new Promise((resolve) => s.write('', resolve))));
}

async function handle(fn, msg) {
  const id = msg && typeof msg === 'object' && 'id' in msg ? msg.id : null;
  const t0 = process.hrtime.bigint();
  let text;
  try {
    if (msg && msg.__invalid) throw Object.assign(new Error(msg.__invalid), { name: 'ProtocolError' });
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw Object.assign(new Error('frame is not an object'), { name: 'ProtocolError' });
    const event = msg.event;
    if (!event || typeof event !== 'object' || !core.EVENT_TYPES.includes(event.type)) {
      throw Object.assign(new Error(`invocation ${JSON.stringify(id)} has no neutral event (event.type one of ${core.EVENT_TYPES.join(', ')})`),
        { name: 'ProtocolError' });
    }
    // With timeout_ms the deadline counts from now: the invocation may have been sent ahead.
    const deadline = msg.deadline_ms != null ? msg.deadline_ms
      : (Number.isInteger(msg.timeout_ms) ? Date.now() + msg.timeout_ms : undefined);
    const ctx = fn.context(msg.request_id, deadline);
    let raw;
    invoking += 1;
    try {
      raw = await fn.invoke(event, ctx);
    } finally {
      invoking -= 1;
    }
    const result = core.normalizeResult(event, raw);
    // Serialized once, here (an unserializable result is a handler error). A normalized result is
    // plain JSON (its body is already text), so it needs none of core.dumps's conversions.
    text = JSON.stringify({ id, ok: true, result, duration_ms: elapsedMs(t0) });
  } catch (err) {
    text = JSON.stringify({ id, ok: false, error: core.errorInfo(err), duration_ms: elapsedMs(t0) });
  }
  const flushed = flushStdio();
  if (flushed) await flushed;
  writeEncoded(withOutput(text));
}

// When stdout and stderr are files (as the local runtime gives them), every reply and the ready
// frame say how far they go, flushed: where that invocation's output ends.
const outputFiles = [1, 2].every((fd) => {
  try {
    return fs.fstatSync(fd).isFile();
  } catch {
    return false;
  }
});

// The serialized frame `text` (a JSON object) with "output": [stdout size, stderr size] added.
function withOutput(text) {
  if (!outputFiles) return text;
  let sizes;
  try {
    sizes = `[${fs.fstatSync(1).size},${fs.fstatSync(2).size}]`;
  } catch {
    return text;
  }
  return `${text.slice(0, -1)},"output":${sizes}}`;
}

function elapsedMs(t0) {
  return Math.round(Number(process.hrtime.bigint() - t0) / 1e3) / 1e3;
}

// What the watchdog runs once its stdin, the life pipe, ends: SIGKILL to every other process carrying
// this worker's tag (children that left the process group), then to the process group.
const WATCHDOG = `
while read -r _; do :; done
for e in /proc/[0-9]*/environ; do
  p=\${e#/proc/}; p=\${p%/environ}
  [ "$p" = "$$" ] && continue
  if tr '\\000' '\\n' < "$e" 2>/dev/null | grep -qxF "NIMBUS_WORKER_TAG=$NIMBUS_WORKER_TAG"; then
    kill -KILL "$p" 2>/dev/null
  fi
done
kill -KILL 0
`;

// Watches the life pipe from a process of its own (a shell in this process group), so that even a
// handler that blocks the event loop dies with the runtime. A worker started without a life pipe
// (by hand) watches nothing.
function dieWithRuntime() {
  const fd = Number(process.env.NIMBUS_LIFE_FD);
  delete process.env.NIMBUS_LIFE_FD;
  try {
    if (!Number.isInteger(fd) || !fs.fstatSync(fd).isFIFO()) return;
    const watchdog = childProcess.spawn('/bin/sh', ['-c', WATCHDOG], { stdio: [fd, 'ignore', 'ignore'] });
    watchdog.on('error', () => {}); // no shell: the runtime still kills the worker when it can
    watchdog.unref();
    fs.closeSync(fd);
  } catch {
    // not a pipe, or no shell
  }
}

async function main() {
  dieWithRuntime();
  let fn;
  try {
    fn = await core.getFunction({ provider: PROVIDER });
  } catch (err) {
    writeFrame({ ready: false, error: core.errorInfo(err) });
    process.exit(1);
  }
  process.on('unhandledRejection', (reason) => {
    console.error('nimbus: unhandled promise rejection in the handler:', reason);
  });
  await flushStdio();
  const ready = { ready: true, load_ms: Math.round(fn.loadMs * 1000) / 1000, pid: process.pid, runtime: `node${process.versions.node}` };
  writeEncoded(withOutput(JSON.stringify(ready)));
  serving = true;

  const input = openInput();
  let pending = Buffer.alloc(0);
  const queue = [];
  let busy = false;
  let ended = false;

  const finish = (code) => process.exit(code);

  async function pump() {
    if (busy) return;
    busy = true;
    while (queue.length) await handle(fn, queue.shift());
    busy = false;
    if (ended) finish(0);
  }

  input.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
      const n = pending.readUInt32BE(0);
      if (n > MAX_FRAME) {
        writeFrame({ id: null, ok: false, error: { type: 'ProtocolError', message: `frame of ${n} bytes exceeds the ${MAX_FRAME}-byte limit`, stack: '' } });
        finish(2);
        return;
      }
      if (pending.length < 4 + n) break;
      const body = pending.subarray(4, 4 + n);
      pending = pending.subarray(4 + n);
      let msg;
      try {
        msg = JSON.parse(body.toString('utf8'));
      } catch (e) {
        msg = { __invalid: `frame is not UTF-8 JSON: ${e.message}` };
      }
      // RPC replies are settled at once: the invocation that waits for them is still running.
      if (msg && typeof msg === 'object' && !Array.isArray(msg) && 'rpc' in msg && !('id' in msg)) settleRpc(msg);
      else queue.push(msg);
    }
    pump();
  });
  input.on('end', () => {
    ended = true;
    if (pending.length) {
      writeFrame({ id: null, ok: false, error: { type: 'ProtocolError', message: 'unexpected EOF inside a frame', stack: '' } });
      if (!busy && !queue.length) finish(2);
      return;
    }
    if (!busy && !queue.length) finish(0);
  });
  input.on('error', (e) => {
    console.error(`nimbus local worker: fd ${IN_FD}: ${e.message}`);
    finish(2);
  });
}

// Exported before main() runs: the handler, loaded by main(), may require this module (the resource
// clients do, for `rpc`) and gets this very module from require's cache.
module.exports = { writeFrame, MAX_FRAME, rpc, ResourceError };

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
