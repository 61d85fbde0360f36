'use strict';
// Helpers for the Node.js shim tests: package layout, fixtures, servers, recorder.

const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const { spawn } = require('node:child_process');

function findRoot() {
  let d = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(d, 'providers', 'common', 'shims'))) return d;
    const up = path.dirname(d);
    if (up === d) throw new Error(`cannot find the repository root from ${__dirname}`);
    d = up;
  }
}

const ROOT = findRoot();
const TESTS = path.join(ROOT, 'tests', 'shims');
const FIXTURES = process.env.NIMBUS_FIXTURES || path.join(ROOT, '..', 'shared', 'fixtures', 'events');
const TOOLS_NODE = process.env.NIMBUS_TEST_NODE_MODULES || path.join(ROOT, '.tools', 'node', 'node_modules');

const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const fixture = (rel) => readJson(path.join(FIXTURES, rel));
const localEvent = (rel) => readJson(path.join(TESTS, 'events', rel));
const expected = (provider, name) => readJson(path.join(TESTS, 'expected', provider, `${name}.json`));
const requireTool = (name) => require(path.join(TOOLS_NODE, name));

function config(provider, handler = 'handlers/probe.js', overrides = {}) {
  const cfg = readJson(path.join(TESTS, 'configs', `${provider}.json`));
  const i = handler.lastIndexOf(':');
  cfg.handler = i > 0 ? { file: handler.slice(0, i), export: handler.slice(i + 1) } : { file: handler, export: 'handler' };
  cfg.runtime = 'nodejs20';
  return Object.assign(cfg, overrides);
}

function copyTree(src, dest, { noClobber = false } = {}) {
  for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, ent.name);
    const d = path.join(dest, ent.name);
    if (ent.isDirectory()) {
      fs.mkdirSync(d, { recursive: true });
      copyTree(s, d, { noClobber });
    } else {
      if (noClobber && fs.existsSync(d)) throw new Error(`shim file collision: ${d}`);
      fs.copyFileSync(s, d);
    }
  }
}

let counter = 0;
const tmpDirs = [];
function tmpDir(prefix = 'nimbus-shim-') {
  const d = fs.mkdtempSync(path.join(require('node:os').tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
process.on('exit', () => {
  if (process.env.NIMBUS_KEEP_TMP) return;
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

// Lay out a function package the way the packager does (common + provider shim overlaid at the
// root without collisions, the user's code at its manifest path, _nimbus/function.json).
function buildPackage(provider, cfg, lang = 'node') {
  const dest = path.join(tmpDir(), `pkg${counter++}`);
  fs.mkdirSync(dest, { recursive: true });
  copyTree(path.join(ROOT, 'providers', 'common', 'shims', lang), dest);
  copyTree(path.join(ROOT, 'providers', provider, 'shims', lang), dest, { noClobber: true });
  fs.mkdirSync(path.join(dest, 'handlers'), { recursive: true });
  copyTree(path.join(TESTS, 'handlers'), path.join(dest, 'handlers'));
  fs.writeFileSync(path.join(dest, '_nimbus', 'function.json'), JSON.stringify(cfg, null, 2));
  if (provider === 'gcp' && lang === 'node') fs.writeFileSync(path.join(dest, 'package.json'), '{"main":"_nimbus_gcp.js"}');
  return dest;
}

class Recorder {
  constructor(file) {
    this.path = file || path.join(tmpDir('nimbus-rec-'), 'record.jsonl');
    this.clear();
  }
  clear() { fs.writeFileSync(this.path, ''); }
  all() {
    return fs.readFileSync(this.path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  }
  last() {
    const a = this.all();
    if (!a.length) throw new Error('the handler recorded nothing');
    return a[a.length - 1];
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A server process on 127.0.0.1:port, in its own process group; stop() ends the group.
class Server {
  static async start(argv, { cwd, env, port }) {
    const srv = new Server();
    srv.port = port;
    srv.output = '';
    srv.proc = spawn(argv[0], argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    srv.proc.stdout.on('data', (b) => { srv.output += b.toString(); });
    srv.proc.stderr.on('data', (b) => { srv.output += b.toString(); });
    srv.exited = new Promise((r) => srv.proc.on('exit', (code) => r(code)));
    const deadline = Date.now() + 30000;
    for (;;) {
      if (srv.proc.exitCode !== null) throw new Error(`server exited with ${srv.proc.exitCode}:\n${srv.output}`);
      if (await canConnect(port)) return srv;
      if (Date.now() > deadline) {
        await srv.stop();
        throw new Error(`server did not listen on 127.0.0.1:${port}:\n${srv.output}`);
      }
      await sleep(100);
    }
  }

  // the server's output arrives asynchronously: wait (bounded) until it matches `re`
  async waitForOutput(re, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.output) && Date.now() < deadline) await sleep(25);
    return re.test(this.output);
  }

  request(method, urlPath, { headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path: urlPath, headers }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try { process.kill(-this.proc.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => { try { process.kill(-this.proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

function headerValues(rawHeaders, name) {
  const out = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === name) out.push(rawHeaders[i + 1]);
  return out;
}

module.exports = {
  ROOT, TESTS, FIXTURES, TOOLS_NODE, fixture, localEvent, expected, config, buildPackage, Recorder, freePort,
  Server, headerValues, requireTool, tmpDir, sleep, readJson,
};
