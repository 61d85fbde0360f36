'use strict';
// Loads a generated Azure Function App (`index.js`, Node.js v4 programming model) with Microsoft's
// `@azure/functions`, as the Node worker does, and prints what it registers:
// {"functions": [{"name", "bindings": [<binding>...]}]}. The worker's `@azure/functions-core`
// module is replaced by a recording stand-in, so the metadata is what @azure/functions itself
// produces (`toCoreFunctionMetadata`).
//
// With FUNCTION and a JSON ITEM, also calls that function's handler with ITEM and an
// InvocationContext (trigger metadata: id `m1`, dequeue count 1), and prints
// "result": {"ok": true} or {"ok": false, "error": "..."}.
//
// Usage: node inspect_app.js APP_DIR [FUNCTION ITEM]   (NODE_PATH: where @azure/functions is)

const fs = require('fs');
const os = require('os');
const path = require('path');
const Module = require('module');

const [appDir, fname, item] = process.argv.slice(2);
const registered = [];
const stub = fs.mkdtempSync(path.join(os.tmpdir(), 'functions-core-'));
fs.mkdirSync(path.join(stub, '@azure', 'functions-core'), { recursive: true });
fs.writeFileSync(path.join(stub, '@azure', 'functions-core', 'index.js'), `
module.exports = {
  version: 'stand-in',
  setProgrammingModel() {},
  registerFunction(metadata, handler) { global.__registered.push({ metadata, handler }); return { dispose() {} }; },
  registerHook() { return { dispose() {} }; },
};`);
global.__registered = registered;
process.env.NODE_PATH = [stub, process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
Module._initPaths();

async function main() {
  process.chdir(appDir);
  require(path.join(appDir, JSON.parse(fs.readFileSync(path.join(appDir, 'package.json'), 'utf8')).main));
  const out = {
    functions: registered.map(({ metadata }) => ({
      name: metadata.name,
      bindings: Object.entries(metadata.bindings).map(([name, b]) => ({ name, ...b })),
    })),
  };
  if (fname) {
    const { InvocationContext } = require('@azure/functions');
    const entry = registered.find((r) => r.metadata.name === fname);
    const context = new InvocationContext({ invocationId: 'inv-1', functionName: fname, triggerMetadata: { id: 'm1', dequeueCount: 1 } });
    try {
      await entry.handler(JSON.parse(item), context);
      out.result = { ok: true };
    } catch (e) {
      out.result = { ok: false, error: String(e && e.message) };
    }
  }
  fs.rmSync(stub, { recursive: true, force: true });
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
