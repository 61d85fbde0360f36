'use strict';
// Test handler written against the neutral Nimbus contract only (Node.js, CommonJS).
const fs = require('node:fs');

function ctxOf(context) {
  const remaining = context.remainingMs();
  return {
    function_name: context.functionName,
    request_id: context.requestId,
    service: context.service,
    stage: context.stage,
    provider: context.provider,
    deadline_ms: context.deadlineMs,
    remaining_ok: remaining > 0 && remaining <= 60 * 60 * 1000,
    resources: Object.keys(context.resources).sort(),
  };
}

function record(event, context) {
  const file = process.env.NIMBUS_TEST_RECORD;
  if (file) fs.appendFileSync(file, JSON.stringify({ event, context: ctxOf(context) }) + '\n');
}

async function attempt(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return { type: e.name, message: e.message };
  }
}

async function resources(context) {
  return {
    granted: Object.keys(context.resources).sort(),
    has_orders: 'orders' in context.resources,
    has_secrets: 'secrets' in context.resources,
    not_granted: await attempt(() => context.resources.secrets),
    trigger_only: await attempt(() => context.resources.payments),
    no_client: await attempt(() => context.resources.orders.get({ id: '1' })),
  };
}

exports.handler = async function handler(event, context) {
  record(event, context);
  const t = event.type;
  if (t === 'http') {
    const p = event.path;
    if (p.endsWith('/text')) return 'hello text';
    if (p.endsWith('/bytes')) return Buffer.from([0, 1, 0xff, 0x62, 0x69, 0x6e]);
    if (p.endsWith('/none')) return undefined;
    if (p.endsWith('/list')) return [1, 2, 3];
    if (p.endsWith('/error')) throw new Error('boom from handler');
    if (p.endsWith('/cookies')) return { status: 201, headers: { 'set-cookie': ['a=1', 'b=2'], 'x-multi': 'v' }, body: 'made' };
    if (p.endsWith('/resources')) return resources(context);
    return { status: 200, headers: { 'x-handler': 'probe' }, body: { event, context: ctxOf(context) } };
  }
  if (t === 'queue' || t === 'topic') {
    if (event.messages.some((m) => m.body === 'boom')) throw new Error('batch boom');
    const failed = event.messages.filter((m) => m.body.includes('fail')).map((m) => m.id);
    return failed.length ? { failed } : undefined;
  }
  if (t === 'bucket' && event.key.includes('boom')) throw new Error('bucket boom');
  if (t === 'table' && (event.new || {}).boom) throw new Error('table boom');
  return undefined;
};
