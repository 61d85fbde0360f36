#!/usr/bin/env node
// Starts @vercel/cosmosdb-server (the Cosmos DB for NoSQL REST API, npm) on 127.0.0.1 for the
// tests, over HTTPS with a certificate made here for 127.0.0.1 (the package's own certificate is
// for another name and expired), so Microsoft's SDKs connect with TLS verification on: Python
// trusts it through REQUESTS_CA_BUNDLE, Node through NODE_EXTRA_CA_CERTS.
//
// Usage: node cosmos_server.js PORT DIR
//   writes DIR/cert.pem and DIR/key.pem (openssl), serves, and prints one line
//   `ready https://127.0.0.1:PORT/ DIR/cert.pem` when it accepts connections. Stops on SIGTERM.
// Resolves the package from NIMBUS_TEST_NODE_MODULES (scripts/lib/tools.sh installs it from
// tests/package.json).
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const [port, dir] = process.argv.slice(2);
if (!port || !dir) {
  console.error('usage: cosmos_server.js PORT DIR');
  process.exit(2);
}
const modules = process.env.NIMBUS_TEST_NODE_MODULES || path.join(__dirname, '..', '..', '.tools', 'node', 'node_modules');
const pkg = path.join(modules, '@vercel', 'cosmosdb-server');
let cosmos;
try {
  // One fix, where the server is not Cosmos DB: a point read of a missing document crashes its
  // read-document handler (a TypeError, HTTP 500); Cosmos DB answers 404 NotFound. Patched
  // before its routes table takes the handler.
  const readDocument = require(path.join(pkg, 'lib', 'handler', 'read-document'));
  const original = readDocument.default;
  readDocument.default = (account, req, res, params) => {
    try {
      return original(account, req, res, params);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
      res.statusCode = 404;
      return { code: 'NotFound', message: 'Entity with the specified id does not exist in the system.' };
    }
  };
  cosmos = require(pkg);
} catch (e) {
  console.error(`@vercel/cosmosdb-server is not installed in ${modules}: run scripts/test-shims (it installs tests/package.json) or npm install --prefix .tools/node @vercel/cosmosdb-server`);
  process.exit(2);
}
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
try {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (e) {
  console.error(`openssl failed (install it: apt-get install openssl): ${e.stderr || e.message}`);
  process.exit(2);
}
const server = cosmos.createHttpsServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
server.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready https://127.0.0.1:${port}/ ${cert}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
