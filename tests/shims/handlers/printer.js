'use strict';
// Handler that writes to stdout/stderr, including bytes that look like protocol frames.
exports.handler = async function handler() {
  console.log('log line from the handler');
  process.stdout.write('\x00\x00\x00\x0b{"id":"x1"}\n');
  process.stdout.write(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]));
  console.error('to stderr');
  return { status: 200, headers: {}, body: 'printed' };
};
