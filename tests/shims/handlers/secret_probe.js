'use strict';
// Handler that reports what its secret variables held when Lambda loaded it, and now.
const NAMES = ['API_KEY', 'DB_PASSWORD'];
const snapshot = () => Object.fromEntries(NAMES.map((k) => [k, process.env[k] === undefined ? null : process.env[k]]));
const AT_IMPORT = snapshot();

exports.handler = async () => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ at_import: AT_IMPORT, now: snapshot() }),
});
