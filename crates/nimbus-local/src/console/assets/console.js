// Nimbus local console: plain script, no dependencies. The admin token comes from the URL
// fragment (#token=…) and goes in the x-nimbus-admin-token header of every API call.
'use strict';
(() => {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = hash.get('token') || sessionStorage.getItem('nimbus-token') || '';
  if (hash.get('token')) { sessionStorage.setItem('nimbus-token', token); history.replaceState(null, '', location.pathname); }
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  function h(tag, attrs, ...kids) {
    const el = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v);
    }
    for (const k of kids.flat()) if (k != null && k !== false) el.append(k instanceof Node ? k : String(k));
    return el;
  }
  async function api(path, body) {
    const opts = { headers: { 'x-nimbus-admin-token': token } };
    if (body !== undefined) { opts.method = 'POST'; opts.body = JSON.stringify(body); opts.headers['content-type'] = 'application/json'; }
    const res = await fetch('/console/api/' + path, opts);
    if (path.startsWith('bucket/object')) { if (!res.ok) throw new Error((await res.json()).error); return res.blob(); }
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || res.statusText);
    return data;
  }
  const say = (msg, bad) => { const s = $('status'); s.textContent = msg; s.className = bad ? 'bad' : ''; };
  const fill = (sel, items, empty) => { sel.replaceChildren(...(items.length ? items.map((i) => h('option', { value: i }, i)) : [h('option', { value: '' }, empty)])); };
  const pretty = (v) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));

  // Architecture: triggers → functions → resources, laid out in layers (breadth first).
  function drawGraph(g) {
    const nodes = new Map(), edges = [];
    const node = (id, label, cls) => { if (!nodes.has(id)) nodes.set(id, { id, label, cls, layer: -1 }); return nodes.get(id); };
    for (const r of g.resources) node('r:' + r.name, r.name + ' (' + r.kind + ')', 'res');
    for (const f of g.functions) {
      node('f:' + f.name, f.name, 'fn');
      for (const t of f.triggers) {
        const from = t.resource ? 'r:' + t.resource : node('t:' + t.id, t.label, 'trg').id;
        edges.push({ from, to: 'f:' + f.name, kind: 'trg', label: t.resource ? t.kind : '' });
      }
      for (const u of f.uses) edges.push({ from: 'f:' + f.name, to: 'r:' + u.resource, kind: 'acc', label: u.access, read: u.access === 'read' });
    }
    const flows = edges.filter((e) => !e.read);
    let frontier = [...nodes.values()].filter((n) => n.cls === 'trg');
    frontier.forEach((n) => { n.layer = 0; });
    const spread = () => {
      while (frontier.length) {
        const next = [];
        for (const n of frontier) for (const e of flows) if (e.from === n.id) { const m = nodes.get(e.to); if (m.layer < 0) { m.layer = n.layer + 1; next.push(m); } }
        frontier = next;
      }
    };
    spread();
    for (const n of nodes.values()) if (n.layer < 0 && n.cls === 'res' && flows.some((e) => e.from === n.id)) { n.layer = 2; frontier.push(n); }
    spread();
    for (const n of nodes.values()) if (n.layer < 0) n.layer = n.cls === 'fn' ? 1 : 2;
    const layers = [];
    for (const n of nodes.values()) (layers[n.layer] ||= []).push(n);
    const W = 168, H = 26, CX = 200, RY = 38;
    const rows = Math.max(...layers.map((l) => (l ? l.length : 0)));
    layers.forEach((l, i) => (l || []).forEach((n, j) => { n.x = 10 + i * CX; n.y = 10 + (j + (rows - l.length) / 2) * RY; }));
    const svg = h('svg:svg', { viewBox: `0 0 ${layers.length * CX} ${rows * RY + 10}`, role: 'img', 'aria-label': 'architecture' });
    svg.append(h('svg:defs', {}, h('svg:marker', { id: 'arr', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto' }, h('svg:path', { d: 'M0,0L8,4L0,8z', fill: '#8a93a6' }))));
    for (const e of edges) {
      const a = nodes.get(e.from), b = nodes.get(e.to);
      const back = b.x <= a.x;
      const x1 = back ? a.x : a.x + W, x2 = back ? b.x + W : b.x, y1 = a.y + H / 2, y2 = b.y + H / 2;
      const dx = back ? -40 : 40;
      svg.append(h('svg:path', { class: 'e ' + e.kind, d: `M${x1},${y1}C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arr)' }, h('svg:title', {}, e.label)));
    }
    for (const n of nodes.values()) {
      svg.append(h('svg:g', { class: 'n ' + n.cls, 'data-node': n.id }, h('svg:rect', { x: n.x, y: n.y, width: W, height: H, rx: n.cls === 'fn' ? 4 : 12 }), h('svg:text', { x: n.x + 8, y: n.y + 17 }, n.label.length > 26 ? n.label.slice(0, 25) + '…' : n.label)));
    }
    $('graph').replaceChildren(svg);
  }

  // Invocations: polled every second; filters go to the server.
  // `gen` changes with the filters: an answer to a request made before is dropped.
  let seq = 0, rows = [], selected = null, gen = 0;
  async function poll() {
    const q = new URLSearchParams({ after: seq, function: $('f-function').value, status: $('f-status').value });
    const asked = gen;
    try {
      const list = await api('invocations?' + q);
      if (asked !== gen) return;
      if (list.length) { seq = list[list.length - 1].seq; rows = rows.concat(list).slice(-100); renderRows(); }
      say('live · ' + rows.length + ' invocations');
    } catch (e) { say(e.message, true); }
  }
  function renderRows() {
    $('invocations').tBodies[0].replaceChildren(...rows.slice().reverse().map((r) => h('tr', { 'data-rid': r.request_id, 'data-function': r.function, class: r.request_id === selected ? 'sel' : '', onclick: () => show(r.request_id) },
      h('td', {}, new Date(r.ts_ms).toLocaleTimeString()), h('td', {}, r.function), h('td', {}, r.trigger),
      h('td', { class: r.outcome === 'ok' && !r.failed ? 'ok' : 'bad' }, r.outcome + (r.status ? ` ${r.status}` : '') + (r.failed ? ` · ${r.failed} failed` : '')), h('td', {}, r.duration_ms.toFixed(1)), h('td', { class: 'muted' }, r.request_id))));
  }
  async function show(rid) {
    selected = rid; renderRows();
    try {
      const d = await api('invocation?request_id=' + rid);
      $('detail-body').className = '';
      $('detail-body').replaceChildren(...[
        h('div', { class: 'row' }, h('b', {}, d.function), h('span', {}, d.trigger), h('span', { class: d.outcome === 'ok' ? 'ok' : 'bad' }, d.outcome + (d.status ? ` ${d.status}` : '')), h('span', {}, d.duration_ms.toFixed(1) + ' ms'),
          h('button', { id: 'b-replay', onclick: () => replay(rid) }, 'Replay')),
        d.error ? h('pre', { class: 'bad' }, d.error + (d.stack ? '\n' + d.stack : '')) : null,
        h('div', { class: 'muted' }, 'request'), h('pre', {}, pretty(d.event)),
        h('div', { class: 'muted' }, 'response'), h('pre', {}, pretty(d.result)),
        h('div', { class: 'muted' }, 'trace'), h('ul', { id: 'd-trace', class: 'trace' }, h('li', { class: 'muted' }, '…')),
        h('div', { class: 'muted' }, 'logs'), h('pre', { id: 'd-logs' }, d.logs.map((l) => `${l.ts || ''} ${l.kind === 'invocation' ? [l.outcome, l.method, l.path, l.status, l.duration_ms + ' ms', l.error].filter((x) => x != null).join(' ') : `${l.level || ''} ${l.message || l.line || l.error || ''}`}`).join('\n') || '(none)')].filter(Boolean));
      showTrace(rid);
    } catch (e) { $('detail-body').textContent = e.message; }
  }
  // The trace this invocation is part of: every invocation it caused or was caused by, as an
  // indented tree; each links to its own detail.
  async function showTrace(rid) {
    const t = await api('trace?request_id=' + rid).catch(() => null);
    const ul = $('d-trace');
    if (!ul || selected !== rid) return;
    if (!t) { ul.replaceChildren(h('li', { class: 'muted' }, '(not kept)')); return; }
    const items = [];
    const walk = (n, depth) => {
      const li = h('li', { 'data-rid': n.request_id, 'data-function': n.function, 'data-depth': depth, class: n.request_id === rid ? 'sel' : '' },
        h('a', { href: '#', onclick: (e) => { e.preventDefault(); show(n.request_id); } }, n.function),
        ` ${n.trigger} · `, h('span', { class: n.outcome === 'ok' ? 'ok' : 'bad' }, n.outcome),
        ` · +${n.offset_ms.toFixed(1)} ms · ${n.duration_ms.toFixed(1)} ms`);
      li.style.paddingLeft = depth * 16 + 'px'; // CSSOM: the page's CSP allows no inline style
      items.push(li);
      n.children.forEach((c) => walk(c, depth + 1));
    };
    t.roots.forEach((r) => walk(r, 0));
    ul.setAttribute('data-trace', t.trace_id);
    ul.replaceChildren(...items);
  }
  async function replay(rid) {
    const r = await api('replay', { request_id: rid }).catch((e) => ({ error: e.message }));
    await poll();
    if (r.request_id) show(r.request_id); else say(r.error, true);
  }
  const out = (el, v) => { $(el).textContent = pretty(v); };
  const act = (el, f) => async () => { try { out(el, await f()); } catch (e) { out(el, 'error: ' + e.message); } };

  // Dead letters.
  async function dlq() {
    const list = await api('dead-letters').catch(() => []);
    const body = $('dlq-body');
    body.className = list.some((q) => q.messages.length) ? '' : 'muted';
    body.replaceChildren(...list.filter((q) => q.messages.length).map((q) => h('div', { 'data-dlq': q.queue },
      h('div', { class: 'row' }, h('b', {}, q.queue), h('span', {}, q.messages.length + ' message(s) from ' + q.source), h('button', { onclick: async () => { await api('dead-letters/redrive', { queue: q.queue }); dlq(); } }, 'Redrive')),
      h('pre', {}, q.messages.map((m) => `${m.id} (${m.receive_count} receives) ${m.body}`).join('\n')))));
    if (!body.children.length) body.textContent = 'no dead-lettered messages';
  }

  // Metrics: Prometheus counters as bar charts.
  function bars(title, data, color) {
    const max = Math.max(1, ...data.map((d) => d[1])), w = 300, rh = 18;
    return h('svg:svg', { width: w + 10, height: data.length * rh + 22, class: 'chart' }, h('svg:text', { x: 0, y: 12 }, title),
      ...data.map(([name, v], i) => h('svg:g', {}, h('svg:text', { x: 0, y: 30 + i * rh }, name),
        h('svg:rect', { x: 120, y: 20 + i * rh, width: Math.max(1, (v / max) * (w - 170)), height: rh - 5, fill: color }),
        h('svg:text', { x: 126 + (v / max) * (w - 170), y: 30 + i * rh }, Number.isInteger(v) ? v : v.toFixed(1)))));
  }
  async function metrics() {
    const { text } = await api('metrics').catch(() => ({ text: '' }));
    const m = {};
    for (const line of text.split('\n')) {
      const x = line.match(/^(nimbus_\w+)\{function="([^"]+)"(?:,le="[^"]+")?\} ([\d.e+]+)$/);
      if (x) ((m[x[1]] ||= {})[x[2]] = Number(x[3]));
    }
    const of = (k) => Object.entries(m[k] || {});
    const mean = of('nimbus_duration_ms_sum').map(([f, s]) => [f, s / Math.max(1, (m.nimbus_duration_ms_count || {})[f] || 0)]);
    $('charts').replaceChildren(bars('invocations', of('nimbus_invocations_total'), '#2b59c3'), bars('errors', of('nimbus_errors_total'), '#c62828'), bars('mean duration (ms)', mean, '#1a7f37'));
  }

  async function start() {
    if (!token) { say('no token: open the link `nimbus info --console` prints', true); return; }
    let g;
    try { g = await api('graph'); } catch (e) { say(e.message, true); return; }
    $('app').textContent = g.service + ' · ' + g.stage;
    drawGraph(g);
    const res = (k) => g.resources.filter((r) => r.kind === k).map((r) => r.name);
    const fns = g.functions.map((f) => f.name);
    for (const f of fns) $('f-function').append(h('option', { value: f }, f));
    fill($('a-schedule'), g.functions.filter((f) => f.triggers.some((t) => t.kind === 'schedule')).map((f) => f.name), 'no schedules');
    fill($('a-queue'), res('queue'), 'no queues'); fill($('a-topic'), res('topic'), 'no topics');
    fill($('t-name'), res('table'), 'no tables'); fill($('k-name'), res('bucket'), 'no buckets');
    $('f-function').onchange = $('f-status').onchange = () => { gen++; seq = 0; rows = []; renderRows(); poll(); };
    $('b-schedule').onclick = act('a-out', () => api('schedule', { function: $('a-schedule').value }));
    $('b-queue').onclick = act('a-out', () => api('queue/send', { queue: $('a-queue').value, body: $('a-queue-body').value }));
    $('b-topic').onclick = act('a-out', () => api('topic/publish', { topic: $('a-topic').value, body: $('a-topic-body').value }));
    for (const b of document.querySelectorAll('#tables button')) b.onclick = async () => {
      const op = b.dataset.op, raw = $('t-json').value.trim();
      const req = { table: $('t-name').value, op };
      try {
        if (op !== 'scan') req[op === 'put' ? 'item' : 'key'] = JSON.parse(raw || '{}');
        const r = await api('table', req);
        const items = Array.isArray(r.result) ? r.result : r.result ? [r.result] : [];
        const cols = [...new Set(items.flatMap((i) => Object.keys(i)))];
        $('t-out').replaceChildren(items.length ? h('table', {}, h('tr', {}, cols.map((c) => h('th', {}, c))), items.map((i) => h('tr', {}, cols.map((c) => h('td', { title: pretty(i[c] ?? '') }, i[c] === undefined ? '' : pretty(i[c])))))) : h('span', { class: 'muted' }, op + ': ok, no items'));
      } catch (e) { $('t-out').textContent = 'error: ' + e.message; }
    };
    const list = async () => {
      const name = $('k-name').value;
      const keys = await api('bucket?' + new URLSearchParams({ bucket: name, prefix: $('k-prefix').value })).catch((e) => [e.message]);
      $('k-out').replaceChildren(...keys.map((k) => h('li', { 'data-key': k }, k, h('button', { onclick: async () => {
        const blob = await api('bucket/object?' + new URLSearchParams({ bucket: name, key: k }));
        const a = h('a', { href: URL.createObjectURL(blob), download: k.split('/').pop() }); a.click(); URL.revokeObjectURL(a.href);
      } }, 'Download'))));
    };
    $('b-list').onclick = list;
    $('b-upload').onclick = async () => {
      const file = $('k-file').files[0]; if (!file) return;
      const bytes = new Uint8Array(await file.arrayBuffer());
      let bin = ''; for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      try { await api('bucket/put', { bucket: $('k-name').value, key: $('k-key').value || file.name, data_b64: btoa(bin) }); await list(); } catch (e) { say(e.message, true); }
    };
    const tick = () => { poll(); dlq(); metrics(); };
    tick();
    setInterval(poll, 1000); setInterval(() => { dlq(); metrics(); }, 2000);
  }
  start();
})();
