'use strict';
// Drives the local web console in Debian's chromium through playwright-core, against a shop
// deployed locally by crates/nimbus/tests/console.rs (which sets the environment below).
// Every step asserts what the page shows; screenshots go to $SCREENSHOTS.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const { CONSOLE_URL, SHOP_URL, CHROMIUM, SCREENSHOTS, CAT_PNG } = process.env;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

async function order(body) {
  const res = await fetch(SHOP_URL + '/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text).id;
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nimbus-console-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 },
  });
  const shot = (page, name, fullPage = true) => page.screenshot({ path: path.join(SCREENSHOTS, name + '.png'), fullPage });
  try {
    const page = context.pages()[0] || await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(CONSOLE_URL);

    // The graph: every function, resource and entry trigger of the shop, with edges.
    await page.waitForSelector('#graph svg g[data-node="f:place-order"]');
    assert.equal(await page.locator('#graph g.fn').count(), 7);
    assert.equal(await page.locator('#graph g.res').count(), 6);
    assert.equal(await page.locator('#graph g.trg').count(), 4);
    assert.ok(await page.locator('#graph path.e').count() >= 17);
    assert.equal(await page.locator('#app').textContent(), 'shop · dev');
    // The token left the address bar; the API refuses calls without it.
    assert.ok(!page.url().includes('token'), page.url());
    const refused = await page.evaluate(async () => [(await fetch('/console/api/graph')).status,
      (await fetch('/console/api/graph', { headers: { 'x-nimbus-admin-token': 'wrong' } })).status]);
    assert.deepEqual(refused, [401, 401]);

    // Page weight (HTML + JS + CSS as served) and time to first paint.
    const weight = await page.evaluate(async () => {
      let n = 0;
      for (const p of ['/console', '/console/console.js', '/console/console.css']) n += (await (await fetch(p)).arrayBuffer()).byteLength;
      return n;
    });
    const paint = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime])));
    assert.ok(weight < 40000, `page weight ${weight}`);
    console.log(`console: page weight ${weight} bytes; first-paint ${paint['first-paint']?.toFixed(1)} ms; first-contentful-paint ${paint['first-contentful-paint']?.toFixed(1)} ms`);
    await shot(page, '1-graph', false);

    // An order through the shop's HTTP API, and the invocations it causes.
    const id = await order({ items: [{ sku: 'widget', qty: 2 }], email: 'a@example.com', amount: 25 });
    await order({ items: [{ sku: 'gadget', qty: 1 }], email: 'c@example.com', amount: 0 }); // poison payment
    const row = (fn) => page.locator(`#invocations tr[data-function="${fn}"]`);
    for (const fn of ['place-order', 'audit-orders', 'reserve-stock', 'charge-payment']) {
      await row(fn).first().waitFor();
    }
    await row('place-order').last().click(); // the first order (rows are newest first)
    await page.waitForSelector('#b-replay');
    const detail = await page.locator('#detail-body').textContent();
    assert.match(detail, /"path": "\/orders"/);
    assert.match(detail, /"statusCode": 201|"status": 201/);
    assert.ok(detail.includes(id), 'the response holds the order id');
    await shot(page, '2-invocation');

    // Its trace: the order's chain in one trace, each invocation a link to its detail.
    await page.waitForFunction(async () => {
      const sel = document.querySelector('#invocations tr.sel');
      const fns = [...document.querySelectorAll('#d-trace li[data-function]')].map((li) => li.dataset.function);
      if (['reserve-stock', 'audit-orders', 'charge-payment'].every((f) => fns.includes(f))) return true;
      sel.click(); // re-open: the downstream invocations may not have run yet
      await new Promise((r) => setTimeout(r, 300));
      return false;
    }, null, { timeout: 30000, polling: 500 });
    const tree = await page.$$eval('#d-trace li[data-function]', (lis) => lis.map((li) => [li.dataset.function, Number(li.dataset.depth), getComputedStyle(li).paddingLeft]));
    assert.deepEqual(tree[0], ['place-order', 0, '0px'], JSON.stringify(tree));
    for (const f of ['reserve-stock', 'audit-orders', 'charge-payment']) {
      assert.ok(tree.some(([fn, depth, pad]) => fn === f && depth === 1 && pad === '16px'), `${f} is a child of place-order: ${JSON.stringify(tree)}`);
    }
    const traceId = await page.getAttribute('#d-trace', 'data-trace');
    assert.match(traceId, /^[0-9a-f]{32}$/);
    await page.click('#d-trace li[data-function="reserve-stock"] a');
    await page.waitForFunction(() => /reserve-stock/.test(document.querySelector('#detail-body b')?.textContent || ''));
    await page.waitForFunction((t) => document.getElementById('d-trace').getAttribute('data-trace') === t, traceId);
    await shot(page, '2b-trace');
    await row('place-order').last().click();
    await page.waitForSelector('#b-replay');

    // Replay: the same event again, a new place-order invocation that succeeds.
    const before = await row('place-order').count();
    await page.click('#b-replay');
    await page.waitForFunction((n) => document.querySelectorAll('#invocations tr[data-function="place-order"]').length > n, before);
    assert.equal(await row('place-order').first().locator('td.ok').count(), 1);

    // The poison payment lands in the dead-letter queue; redrive it and watch it run again.
    const dlq = page.locator('[data-dlq="payments-dlq"]');
    await dlq.waitFor({ timeout: 60000 });
    assert.match(await dlq.textContent(), /amount/);
    await shot(page, '3-dead-letter');
    const failed = await page.locator('#invocations tr[data-function="charge-payment"] td.bad').count();
    assert.ok(failed >= 5, `the poison message failed on each of its 5 receives (${failed} failed batches)`);
    await dlq.locator('button').click();
    // Redriven, it is delivered (and fails) again.
    await page.waitForFunction((n) => document.querySelectorAll('#invocations tr[data-function="charge-payment"] td.bad').length > n, failed);

    // Upload an image: the bucket trigger runs make-thumbnail, whose thumbnail is listed.
    await page.selectOption('#k-name', 'images');
    await page.fill('#k-key', 'uploads/cat.png');
    await page.setInputFiles('#k-file', CAT_PNG);
    await page.click('#b-upload');
    await row('make-thumbnail').first().waitFor({ timeout: 60000 });
    assert.equal(await row('make-thumbnail').first().locator('td.ok').count(), 1);
    await page.fill('#k-prefix', 'thumbnails/');
    await page.waitForFunction(async () => {
      document.getElementById('b-list').click();
      await new Promise((r) => setTimeout(r, 300));
      return !!document.querySelector('#k-out li[data-key="thumbnails/cat.png"]');
    }, null, { timeout: 30000, polling: 500 });

    // Fire the nightly schedule now; send to the queue; publish to the topic.
    await page.selectOption('#a-schedule', 'nightly-report');
    await page.click('#b-schedule');
    await page.waitForFunction(() => /"ok": true/.test(document.getElementById('a-out').textContent));
    await row('nightly-report').first().waitFor();
    await page.fill('#a-topic-body', JSON.stringify({ type: 'order.placed', order_id: id, items: [{ sku: 'widget', qty: 1 }] }));
    await page.click('#b-topic');
    await page.waitForFunction(() => /"subscribers": 1/.test(document.getElementById('a-out').textContent));

    // The table browser: scan the orders, get one, put and delete an item.
    await page.selectOption('#t-name', 'orders');
    await page.click('#tables button[data-op="scan"]');
    await page.waitForSelector('#t-out table');
    assert.ok((await page.locator('#t-out table tr').count()) >= 3);
    await page.fill('#t-json', JSON.stringify({ id }));
    await page.click('#tables button[data-op="get"]');
    await page.waitForFunction((oid) => document.getElementById('t-out').textContent.includes(oid) && document.querySelectorAll('#t-out tr').length === 2, id);
    await page.fill('#t-json', JSON.stringify({ id: 'console-test', status: 'new' }));
    await page.click('#tables button[data-op="put"]');
    await page.waitForFunction(() => /put: ok/.test(document.getElementById('t-out').textContent));
    await page.fill('#t-json', JSON.stringify({ id: 'console-test' }));
    await page.click('#tables button[data-op="delete"]');
    await page.waitForFunction(() => /delete: ok/.test(document.getElementById('t-out').textContent));

    // Filter by function and outcome.
    await page.selectOption('#f-function', 'charge-payment');
    await page.selectOption('#f-status', 'failed');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#invocations tbody tr')];
      return rows.length > 0 && rows.every((r) => r.dataset.function === 'charge-payment' && r.querySelector('td.bad'));
    });
    await page.selectOption('#f-status', '');
    await page.selectOption('#f-function', '');
    await page.waitForFunction(() => document.querySelectorAll('#invocations tr[data-function="make-thumbnail"]').length > 0);

    // Metrics charts: a bar per function that ran.
    await page.waitForFunction(() => document.querySelectorAll('#charts svg').length === 3 && document.querySelectorAll('#charts svg:first-child rect').length >= 6);
    await row('place-order').nth(1).click();
    await page.waitForSelector('#b-replay');
    await shot(page, '4-console');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, 'console-viewport', false);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
