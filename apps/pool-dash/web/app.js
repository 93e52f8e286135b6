/* pool-dash: the live browser page of poolbus (read-only).
 *
 * Data flow:
 *   EventSource('/api/stream')
 *     hello  -> sync(): fetch /api/pools, /api/queue, /api/events?limit=200; stream
 *               events that arrive meanwhile are buffered and replayed on top.
 *     pool / gone / seen / queue / tail / stats -> update the in-memory state S
 *               and mark what changed in S.dirty.
 *     reset / error -> status "offline"; EventSource reconnects, the next hello
 *               refetches everything.
 *   scheduleRender() coalesces all changes into at most one render per animation
 *   frame. The capacity table is virtualised: only the rows in view exist in the
 *   DOM, between two spacer rows. A 1 s tick re-renders the client-side ages.
 *   Views are hash routes: #/ (overview), #/owners (GET /api/allocs on open, on
 *   refresh, and on alloc tail events, at most once a second) and
 *   #/alloc/<encodeURIComponent(uri)> (GET /api/alloc and /api/logs on open/refresh).
 * Every piece of data goes into the DOM through textContent, never innerHTML.
 */
'use strict';
(function () {
  const ROW_H = 30, OVERSCAN = 8, TAIL_KEEP = 500, TAIL_SHOW = 200;
  const QUEUE_SHOW = 500, OWNER_SHOW = 500, LOG_TAIL = 16384, STALE_MS = 3000;
  const BASE_RES = ['cpu', 'mem', 'disk'];
  const BYTE_RES = { mem: true, disk: true };
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

  const S = {
    es: null, live: false, skew: 0, statsAt: [],             // skew = server now_ms - Date.now()
    pools: new Map(), resNames: BASE_RES.slice(), order: [], sortedAt: 0, summaryAt: 0,
    sort: { key: 'id', dir: 1 }, filter: [],
    queue: [], queueNow: 0,
    tail: [], tailNew: [], tailKeys: null, tailPaused: false,
    stats: null,
    syncing: false, syncGen: 0, buffer: [], retryMs: 1000,
    dirty: { head: true, order: 'hard', pools: true, rows: true, queue: true, tail: true, tailFull: true, stats: true, ages: true },
    render: { pending: false, tok: 0, raf: 0, timer: 0, later: 0 },
    route: 'overview', backHref: '#/',
    owners: { tok: 0, data: null, err: null, open: new Set(), startedAt: 0, timer: 0 },
    alloc: { uri: '', tok: 0, data: null, err: null, exec: '', logTok: 0 },
  };

  // ---------- small helpers ----------
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function td(text, cls) { return el('td', cls, text); }
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : 0);
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
  const str = (v) => (v === undefined || v === null ? '' : String(v));
  const now = () => Date.now() + S.skew;
  function noteClock(ms) { if (typeof ms === 'number' && ms > 0) S.skew = ms - Date.now(); }
  function show(node, on) { if (node.hidden === on) node.hidden = !on; }
  function setText(node, t) { if (node.textContent !== t) node.textContent = t; }
  function setHeight(node, px) { if (node._h !== px) { node._h = px; node.style.height = px + 'px'; } }
  function allocHref(uri) { return '#/alloc/' + encodeURIComponent(uri); }
  function allocLink(uri, text) {
    const a = el('a', 'alloc-link mono', text || uri);
    a.setAttribute('href', allocHref(uri));
    a.dataset.uri = uri;
    return a;
  }

  // ---------- formatting ----------
  function fmtNum(v) { return String(Math.round(num(v) * 100) / 100); }
  function unitOf(n) { let i = 0; n = Math.abs(num(n)); while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; } return i; }
  function scaled(n, i, dec) { return (num(n) / Math.pow(1024, i)).toFixed(dec); }
  function decOf(n, i) { return i === 0 || num(n) / Math.pow(1024, i) >= 100 ? 0 : 1; }
  function fmtBytes(n) { const i = unitOf(n); return scaled(n, i, decOf(n, i)) + ' ' + UNITS[i]; }
  function fmtRes(name, v) { return BYTE_RES[name] ? fmtBytes(v) : fmtNum(v); }
  function fmtPair(name, used, total) {
    if (!BYTE_RES[name]) return fmtNum(used) + '/' + fmtNum(total);
    const i = unitOf(total), d = decOf(total, i);
    return scaled(used, i, d) + '/' + scaled(total, i, d) + ' ' + UNITS[i];
  }
  function resOrder(names) {
    return names.filter((n) => BASE_RES.includes(n)).sort((a, b) => BASE_RES.indexOf(a) - BASE_RES.indexOf(b))
      .concat(names.filter((n) => !BASE_RES.includes(n)).sort());
  }
  function fmtResMap(r) {
    const m = obj(r), names = resOrder(Object.keys(m));
    return names.length ? names.map((n) => n + ' ' + fmtRes(n, m[n])).join(', ') : '—';
  }
  function fmtDur(ms) {
    let s = Math.floor(Math.max(0, num(ms)) / 1000);
    if (s < 60) return s + 's';
    let m = Math.floor(s / 60); s %= 60;
    if (m < 60) return s ? m + 'm ' + s + 's' : m + 'm';
    let h = Math.floor(m / 60); m %= 60;
    if (h < 24) return m ? h + 'h ' + m + 'm' : h + 'h';
    const d = Math.floor(h / 24); h %= 24;
    return h ? d + 'd ' + h + 'h' : d + 'd';
  }
  function fmtMs(ms) { ms = num(ms); return ms < 1000 ? Math.round(ms) + ' ms' : fmtNum(ms / 1000) + ' s'; }
  const fmtAge = (t) => (num(t) > 0 ? fmtDur(now() - t) : '—');
  function fmtUntil(t, past) { if (!(num(t) > 0)) return '—'; const d = t - now(); return d >= 0 ? fmtDur(d) : past; }
  function fmtTime(t, withDate) {
    if (!(num(t) > 0)) return '—';
    const d = new Date(t), p = (x) => String(x).padStart(2, '0');
    const hms = p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
    return withDate ? d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + hms : hms;
  }
  function labelPairs(labels) { const l = obj(labels); return Object.keys(l).sort().map((k) => k + '=' + str(l[k])); }
  function chips(labels, max) {
    const frag = document.createDocumentFragment(), pairs = labelPairs(labels);
    pairs.slice(0, max || 99).forEach((t) => frag.appendChild(el('span', 'chip', t)));
    if (pairs.length > (max || 99)) frag.appendChild(el('span', 'chip more', '+' + (pairs.length - max)));
    return frag;
  }

  // ---------- HTTP ----------
  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok || !body) {
      const err = obj(obj(body).error);
      throw new Error(err.message ? (err.kind ? err.kind + ': ' : '') + err.message : 'HTTP ' + res.status + ' ' + res.statusText);
    }
    return body;
  }
  function notice(text) { const n = $('notice'); n.textContent = text || ''; show(n, !!text); }

  // ---------- stream ----------
  const HANDLERS = { pool: onPool, gone: onGone, seen: onSeen, queue: onQueue, tail: onTail };

  function connect() {
    const es = new EventSource('/api/stream');
    S.es = es;
    es.onopen = () => setLive(true);
    es.onerror = () => {
      setLive(false);
      if (es.readyState === 2 && S.es === es) { es.close(); setTimeout(connect, 3000); } // CLOSED: no auto-retry
    };
    es.addEventListener('hello', (ev) => { const d = parse(ev); if (d) onHello(d); });
    es.addEventListener('reset', () => setLive(false));
    es.addEventListener('stats', (ev) => { const d = parse(ev); if (d) onStats(d); });
    Object.keys(HANDLERS).forEach((name) => es.addEventListener(name, (ev) => {
      const d = parse(ev);
      if (!d) return;
      if (S.syncing) { if (S.buffer.length < 200000) S.buffer.push([HANDLERS[name], d]); return; }
      HANDLERS[name](d, false);
    }));
  }
  function parse(ev) { try { const d = JSON.parse(ev.data); return d && typeof d === 'object' ? d : null; } catch (e) { return null; } }
  function setLive(on) {
    S.live = on;
    const p = $('status');
    p.textContent = on ? 'live' : 'offline';
    p.dataset.state = on ? 'live' : 'offline';
  }
  function onHello(d) { noteClock(d.now_ms); setLive(true); sync(); }

  async function sync() {
    const gen = ++S.syncGen;
    S.syncing = true; S.buffer = [];
    let failed = null;
    try {
      const [p, q, e] = await Promise.all([getJSON('/api/pools'), getJSON('/api/queue'),
        getJSON('/api/events?limit=200').catch(() => null)]);
      if (gen !== S.syncGen) return;
      applySnapshot(p, q, e);
      S.retryMs = 1000;
      notice('');
    } catch (err) {
      if (gen !== S.syncGen) return;
      failed = err;
    }
    const buf = S.buffer;
    S.syncing = false; S.buffer = [];
    buf.forEach(([fn, d]) => fn(d, true));
    S.tailKeys = null;
    if (failed) {
      notice('Could not load the pools/queue: ' + failed.message + ' — retrying in ' + fmtDur(S.retryMs));
      setTimeout(() => { if (gen === S.syncGen && S.live) sync(); }, S.retryMs);
      S.retryMs = Math.min(S.retryMs * 2, 30000);
    }
    if (S.route === 'owners') loadOwners();
    if (S.route === 'alloc' && S.alloc.uri) loadAlloc();
  }

  function applySnapshot(p, q, e) {
    noteClock(p.now_ms);
    S.pools = new Map();
    S.resNames = BASE_RES.slice();
    (Array.isArray(p.pools) ? p.pools : []).forEach((x) => putPool(x, false));
    S.queue = []; S.queueNow = 0;
    onQueue(q, false);
    if (e && Array.isArray(e.events)) {
      S.tail = e.events.filter((t) => t && typeof t === 'object').slice(-TAIL_KEEP);
      S.tailKeys = new Set(S.tail.map(tailKey));
    }
    S.tailNew = [];
    Object.assign(S.dirty, { head: true, order: 'hard', pools: true, rows: true, queue: true, tailFull: true, tail: true, stats: true });
    scheduleRender();
  }

  function putPool(p, replay) {
    if (!p || typeof p.id !== 'string') return;
    const old = S.pools.get(p.id);
    // Older than the snapshot (within one worker run: a new run restarts seq).
    if (replay && old && p.run === old.run && num(p.seq) < num(old.seq)) return;
    p._v = old ? old._v + 1 : 1;
    p._search = (p.id + ' ' + labelPairs(p.labels).join(' ')).toLowerCase();
    p._nat = old ? old._nat : natKey(p.id);
    S.pools.set(p.id, p);
    noteResNames(p.resources);
    S.dirty.pools = S.dirty.rows = true;
    if (!old) markOrder('hard');
    else if (S.sort.key !== 'id' || (S.filter.length && old._search !== p._search)) markOrder('soft');
    else scheduleRender();
  }
  function noteResNames(r) {
    for (const n of Object.keys(obj(r))) {
      if (!S.resNames.includes(n)) { S.resNames = resOrder(S.resNames.concat([n])); S.dirty.head = true; }
    }
  }
  function markOrder(kind) { if (S.dirty.order !== 'hard') S.dirty.order = kind; scheduleRender(); }

  function onPool(d, replay) { putPool(d, replay); }
  function onGone(d) {
    if (d && S.pools.delete(str(d.id))) { S.dirty.pools = S.dirty.rows = true; markOrder('hard'); }
  }
  // Every pool but the quiet ones was heard since the previous tick.
  function onSeen(d) {
    const t = num(d.now_ms);
    const quiet = new Set(Array.isArray(d.quiet) ? d.quiet : []);
    S.pools.forEach((p, id) => { if (!quiet.has(id) && t > num(p.last_seen_ms)) p.last_seen_ms = t; });
    if (S.sort.key === 'seen') markOrder('soft');
    S.dirty.rows = true; scheduleRender();
  }
  function onQueue(d, replay) {
    if (!d) return;
    if (replay && num(d.now_ms) < S.queueNow) return;
    S.queueNow = num(d.now_ms);
    S.queue = (Array.isArray(d.queue) ? d.queue : []).filter((x) => x && typeof x === 'object');
    S.dirty.queue = true; scheduleRender();
  }
  function tailKey(t) {
    const b = obj(t.body);
    return [t.topic, t.event, t.ts_ms, obj(b.alloc).id, obj(b.exec).id, obj(b.request).id].join('|');
  }
  function onTail(t) {
    if (S.tailKeys && S.tailKeys.has(tailKey(t))) return; // already in the prefill
    S.tail.push(t);
    if (S.tail.length > TAIL_KEEP * 1.2) S.tail = S.tail.slice(-TAIL_KEEP);
    if (S.tailNew.length < TAIL_SHOW) S.tailNew.push(t); else S.dirty.tailFull = true;
    S.dirty.tail = true; scheduleRender();
    if (t.kind === 'allocs' && S.route === 'owners') ownersSoon();
    if (S.route === 'alloc' && tailAlloc(t) === S.alloc.uri) $('alloc-refresh').classList.add('attention');
  }
  function tailAlloc(t) {
    const b = obj(t.body);
    if (b.alloc) return str(obj(b.alloc).id);
    if (b.exec) { const a = str(obj(b.exec).alloc); return a.includes('/') || !a ? a : str(t.pool || b.pool) + '/' + a; }
    return '';
  }
  function onStats(d) {
    noteClock(d.now_ms); S.stats = d; S.dirty.stats = true; scheduleRender();
    // Stats come every second. Under headless Chromium's --virtual-time-budget the
    // page clock stands still while a fetch (this stream) is pending, so it would
    // never settle: if 6 stats (5+ s) arrive within 1 ms of page time, close the
    // stream and reconnect later (in page time). A real clock never trips this.
    const t = performance.now(), st = S.statsAt;
    st.push(t);
    if (st.length > 6) st.shift();
    if (st.length === 6 && t - st[0] < 1 && S.es) {
      const es = S.es; S.es = null; es.close(); setLive(false);
      S.statsAt = [];
      setTimeout(connect, 10000);
    }
  }

  // ---------- render scheduling ----------
  function scheduleRender() {
    const r = S.render;
    if (r.pending) return;
    r.pending = true;
    const tok = ++r.tok;
    const run = () => {
      if (tok !== r.tok || !r.pending) return;
      r.pending = false;
      cancelAnimationFrame(r.raf); clearTimeout(r.timer);
      render();
    };
    r.raf = requestAnimationFrame(run);
    r.timer = setTimeout(run, 250); // rAF is paused in background tabs
  }
  function renderLater(ms) {
    if (S.render.later) return;
    S.render.later = setTimeout(() => { S.render.later = 0; scheduleRender(); }, ms);
  }

  function render() {
    const d = S.dirty;
    if (d.stats) { renderStats(); d.stats = false; }
    if (S.route === 'overview') {
      renderCapacity();
      if (d.queue || d.ages) { renderQueue(); d.queue = false; }
      if ((d.tail || d.tailFull) && !S.tailPaused) { renderTail(); d.tail = d.tailFull = false; }
    } else if (S.route === 'owners' && d.ages) renderOwners();
    else if (S.route === 'alloc' && d.ages && S.alloc.data) renderAlloc();
    d.ages = false;
  }

  // ---------- header ----------
  function renderStats() {
    const st = obj(S.stats), eps = num(st.events_per_s);
    $('stat-eps').textContent = eps < 10 ? eps.toFixed(1) : String(Math.round(eps));
    $('stat-pools').textContent = String(st.pools !== undefined ? num(st.pools) : S.pools.size);
    $('stat-queue').textContent = String(st.queue !== undefined ? num(st.queue) : S.queue.length);
    $('stats').title = 'SSE clients: ' + (st.sse_clients !== undefined ? num(st.sse_clients) : '?');
    show($('broker'), st.broker_up === false);
  }

  // ---------- capacity (virtualised) ----------
  function columns() {
    return [{ key: 'id', label: 'pool', w: 170 }, { key: null, label: 'labels', w: 0 }, { key: null, label: 'state', w: 86 },
      { key: 'allocs', label: 'allocs', w: 62 }]
      .concat(S.resNames.map((n) => ({ key: 'res:' + n, label: n, w: 150 })))
      .concat([{ key: 'seen', label: 'last seen', w: 84 }]);
  }
  function buildHead() {
    const cols = columns(), head = $('pools-head'), cg = $('pools-cols');
    head.textContent = ''; cg.textContent = '';
    cols.forEach((c) => {
      const col = el('col');
      if (c.w) col.style.width = c.w + 'px';
      cg.appendChild(col);
      const th = el('th', c.key ? 'sortable' : '', c.label);
      if (c.key) {
        th.dataset.sort = c.key;
        if (S.sort.key === c.key) { th.classList.add(S.sort.dir > 0 ? 'asc' : 'desc'); th.setAttribute('aria-sort', S.sort.dir > 0 ? 'ascending' : 'descending'); }
      }
      head.appendChild(th);
    });
    $('pools').style.minWidth = cols.reduce((s, c) => s + (c.w || 160), 0) + 'px';
    S.colsKey = S.resNames.join(',');
    $('pools-body').textContent = ''; // rows rebuilt with the new columns
  }
  function setSort(key) {
    if (S.sort.key === key) S.sort.dir = -S.sort.dir;
    else S.sort = { key: key, dir: key === 'id' || key === 'seen' ? 1 : -1 };
    S.dirty.head = true; markOrder('hard');
  }
  function usedFrac(p, name) {
    const t = num(obj(p.resources)[name]);
    return t > 0 ? (t - num(obj(p.available)[name])) / t : -1;
  }
  function sortVal(p, key) {
    if (key === 'allocs') return num(p.allocs);
    if (key === 'seen') return -num(p.last_seen_ms);
    if (key.startsWith('res:')) return usedFrac(p, key.slice(4));
    return 0;
  }
  function natKey(id) { return id.replace(/\d+/g, (m) => m.padStart(16, '0')); } // w2 < w10
  const byNat = (a, b) => (a._nat < b._nat ? -1 : a._nat > b._nat ? 1 : 0);
  function rebuildOrder() {
    const f = S.filter, key = S.sort.key, dir = S.sort.dir, arr = [];
    S.pools.forEach((p) => { if (f.every((w) => p._search.includes(w))) arr.push(p); });
    if (key === 'id') arr.sort((a, b) => dir * byNat(a, b));
    else {
      const v = new Map(arr.map((p) => [p, sortVal(p, key)]));
      arr.sort((a, b) => (dir * (v.get(a) - v.get(b))) || byNat(a, b));
    }
    S.order = arr.map((p) => p.id);
    S.sortedAt = Date.now();
  }

  function renderCapacity() {
    const d = S.dirty;
    if (d.head) { buildHead(); d.head = false; d.rows = true; }
    const hard = d.order === 'hard', t = Date.now();
    if (hard || (d.order === 'soft' && t - S.sortedAt >= 500)) {
      rebuildOrder(); d.order = false; d.rows = true;
    } else if (d.order === 'soft') renderLater(500 - (t - S.sortedAt));
    if (d.pools && (hard || t - S.summaryAt >= 500)) { renderSummary(); S.summaryAt = t; d.pools = false; } // totals: 2/s at most
    else if (d.pools) renderLater(500 - (t - S.summaryAt));
    if (d.rows || d.ages) { renderRows(); d.rows = false; }
  }

  function spacer(cls) { const tr = el('tr', 'spacer ' + cls); tr.appendChild(el('td')); return tr; }
  function renderRows() {
    const sc = $('pools-scroll'), body = $('pools-body'), n = S.order.length, ncol = S.resNames.length + 5;
    if (!body.firstChild) { body.appendChild(spacer('top')); body.appendChild(spacer('bottom')); }
    const top = body.firstChild, bottom = body.lastChild;
    const viewH = sc.clientHeight || 600;
    const first = Math.max(0, Math.min(n, Math.floor((sc.scrollTop - ROW_H) / ROW_H) - OVERSCAN));
    const last = Math.min(n, Math.ceil((sc.scrollTop + viewH) / ROW_H) + OVERSCAN);
    top.firstChild.colSpan = bottom.firstChild.colSpan = ncol;
    setHeight(top.firstChild, first * ROW_H);
    setHeight(bottom.firstChild, Math.max(0, n - last) * ROW_H);
    show(top, first > 0); show(bottom, n - last > 0);
    const want = Math.max(0, last - first);
    while (body.childNodes.length - 2 > want) body.removeChild(bottom.previousSibling);
    while (body.childNodes.length - 2 < want) body.insertBefore(el('tr', 'pool'), bottom);
    let tr = top.nextSibling;
    for (let i = first; i < last; i++, tr = tr.nextSibling) fillRow(tr, S.pools.get(S.order[i]));
    show($('pools-empty'), n === 0);
    setText($('pools-empty'), S.pools.size ? 'No pool matches the filter.' : 'No pools.');
  }

  function fillRow(tr, p) {
    const key = p._v + ':' + S.colsKey;
    if (tr._id !== p.id || tr._key !== key) {
      tr._id = p.id; tr._key = key;
      tr.dataset.pool = p.id;
      tr.textContent = '';
      tr.appendChild(td(p.id, 'id mono')).title = p.id;
      const lc = tr.appendChild(td(null, 'labels'));
      lc.appendChild(chips(p.labels, 6)); lc.title = labelPairs(p.labels).join('  ');
      const sc = tr.appendChild(td(null, 'state'));
      if (p.draining) sc.appendChild(el('span', 'badge drain', 'draining'));
      tr.appendChild(td(num(p.allocs), 'allocs num'));
      S.resNames.forEach((n) => tr.appendChild(resCell(p, n)));
      tr._age = tr.appendChild(td('', 'seen num'));
      tr._stale = false;
      tr.classList.toggle('draining', !!p.draining);
    }
    const stale = num(p.last_seen_ms) > 0 && now() - p.last_seen_ms > STALE_MS;
    setText(tr._age, fmtAge(p.last_seen_ms));
    if (tr._stale !== stale) { tr._stale = stale; tr._age.classList.toggle('stale', stale); }
  }
  function resCell(p, name) {
    const c = td(null, 'res'), total = num(obj(p.resources)[name]);
    if (!(name in obj(p.resources))) { c.textContent = '—'; c.classList.add('dim'); return c; }
    const used = Math.max(0, total - num(obj(p.available)[name])), frac = total > 0 ? Math.min(1, used / total) : 0;
    const bar = c.appendChild(el('div', 'bar' + (frac >= 0.9 ? ' hot' : frac >= 0.7 ? ' warm' : '')));
    bar.appendChild(el('div', 'fill')).style.width = (frac * 100).toFixed(1) + '%';
    bar.appendChild(el('span', 'txt', fmtPair(name, used, total)));
    c.title = name + ': ' + fmtRes(name, used) + ' used of ' + fmtRes(name, total) + ' (' + Math.round(frac * 100) + '%)';
    return c;
  }

  function renderSummary() {
    const tot = {}, used = {};
    let drain = 0, allocs = 0;
    S.pools.forEach((p) => {
      if (p.draining) drain++;
      allocs += num(p.allocs);
      const r = obj(p.resources), a = obj(p.available);
      for (const n in r) { tot[n] = (tot[n] || 0) + num(r[n]); used[n] = (used[n] || 0) + Math.max(0, num(r[n]) - num(a[n])); }
    });
    const box = $('summary');
    box.textContent = '';
    const item = (label, val) => { const s = box.appendChild(el('span', 'sum')); s.appendChild(el('b', '', val)); s.appendChild(document.createTextNode(' ' + label)); };
    item('pools', String(S.pools.size));
    if (S.filter.length) item('shown', String(S.order.length));
    if (drain) item('draining', String(drain));
    item('allocs', String(allocs));
    resOrder(Object.keys(tot)).forEach((n) => item(n, fmtPair(n, used[n], tot[n])));
  }

  // ---------- queue ----------
  function fmtConstraints(c) {
    const m = obj(c);
    const parts = Object.keys(m).sort().map((k) => k + '=' + (Array.isArray(m[k]) ? m[k].map(str).join('|') : str(m[k])));
    return parts.length ? parts.join(', ') : '—';
  }
  function renderQueue() {
    const body = $('queue-body'), q = S.queue, frag = document.createDocumentFragment();
    q.slice(0, QUEUE_SHOW).forEach((e) => {
      const tr = el('tr');
      tr.dataset.request = str(e.id);
      tr.appendChild(td(str(e.id), 'mono'));
      tr.appendChild(td(num(e.priority), 'num'));
      tr.appendChild(td(str(e.owner) || '—'));
      const mc = tr.appendChild(td(fmtResMap(e.min), 'min'));
      if (num(e.width) > 0) mc.title = 'width ' + num(e.width);
      tr.appendChild(td(e.count === undefined ? 1 : num(e.count), 'num'));
      tr.appendChild(td(fmtConstraints(e.constraints), 'cons mono small'));
      tr.appendChild(td(fmtAge(e.queued_ms), 'num'));
      tr.appendChild(td(fmtUntil(e.deadline_ms, 'due'), 'num'));
      tr.appendChild(td(str(e.why) || '—', 'why'));
      frag.appendChild(tr);
    });
    if (q.length > QUEUE_SHOW) { const tr = el('tr', 'more'); tr.appendChild(td('… ' + (q.length - QUEUE_SHOW) + ' more')).colSpan = 9; frag.appendChild(tr); }
    body.textContent = '';
    body.appendChild(frag);
    show($('queue-empty'), q.length === 0);
    $('queue-count').textContent = q.length ? q.length + ' waiting' : '';
  }

  // ---------- event tail ----------
  function tailFilter() {
    const kinds = new Set();
    document.querySelectorAll('#tail-topics input:checked').forEach((i) => kinds.add(i.value));
    const prefix = $('tail-prefix').value.trim();
    return (t) => kinds.has(str(t.kind) || str(t.topic).split('.')[0]) && str(t.topic).startsWith(prefix);
  }
  function tailItem(t) {
    const li = el('li', 'ev kind-' + str(t.kind));
    li.dataset.topic = str(t.topic);
    li.dataset.event = str(t.event);
    li.appendChild(el('span', 'time mono', fmtTime(t.ts_ms))).title = fmtTime(t.ts_ms, true);
    li.appendChild(el('span', 'topic mono', str(t.topic)));
    li.appendChild(el('span', 'event ev-' + str(t.event), str(t.event)));
    li.appendChild(tailSummary(t));
    return li;
  }
  function tailSummary(t) {
    const s = el('span', 'what'), b = obj(t.body);
    const text = (x, cls) => s.appendChild(el('span', cls || '', x));
    if (t.kind === 'allocs') {
      const a = obj(b.alloc);
      if (a.id) s.appendChild(allocLink(str(a.id)));
      text(str(obj(a.meta).owner) || '(none)', 'owner');
      text(fmtResMap(a.resources), 'dim');
    } else if (t.kind === 'execs') {
      const x = obj(b.exec), uri = tailAlloc(t);
      text(str(x.id), 'mono');
      text(str(x.state), 'state state-' + str(x.state));
      if (x.exit_code !== undefined) text('exit ' + x.exit_code, 'dim');
      if (x.signal !== undefined) text('signal ' + x.signal, 'dim');
      if (uri) s.appendChild(allocLink(uri));
    } else if (t.kind === 'demand') {
      const r = obj(b.request);
      text(str(r.id), 'mono');
      if (r.owner) text(str(r.owner), 'owner');
      text(fmtResMap(r.min), 'dim');
      (Array.isArray(b.allocs) ? b.allocs.slice(0, 4) : []).forEach((u) => s.appendChild(allocLink(str(u))));
    } else {
      text(str(t.pool || b.pool), 'mono');
    }
    return s;
  }
  function renderTail() {
    const ul = $('tail'), match = tailFilter();
    if (S.dirty.tailFull) {
      const frag = document.createDocumentFragment();
      for (let i = S.tail.length - 1, n = 0; i >= 0 && n < TAIL_SHOW; i--) if (match(S.tail[i])) { frag.appendChild(tailItem(S.tail[i])); n++; }
      ul.textContent = '';
      ul.appendChild(frag);
    } else {
      S.tailNew.forEach((t) => { if (match(t)) ul.insertBefore(tailItem(t), ul.firstChild); });
      while (ul.childNodes.length > TAIL_SHOW) ul.removeChild(ul.lastChild);
    }
    S.tailNew = [];
    show($('tail-empty'), !ul.firstChild);
    $('tail-empty').textContent = S.tail.length ? 'No event matches the filter.' : 'No events yet.';
  }

  // ---------- allocs by owner ----------
  function ownersSoon() {
    const o = S.owners;
    if (o.timer) return;
    o.timer = setTimeout(() => { o.timer = 0; if (S.route === 'owners') loadOwners(); }, Math.max(0, 1000 - (Date.now() - o.startedAt)));
  }
  async function loadOwners() {
    const o = S.owners, tok = ++o.tok;
    o.startedAt = Date.now();
    $('owners-refresh').disabled = true;
    try {
      const r = await getJSON('/api/allocs');
      if (tok !== o.tok) return;
      o.data = (Array.isArray(r.allocs) ? r.allocs : []).filter((a) => a && typeof a === 'object');
      o.err = null;
    } catch (e) {
      if (tok !== o.tok) return;
      o.err = e.message;
    }
    $('owners-refresh').disabled = false;
    renderOwners();
  }
  function sumRes(into, r) { const m = obj(r); for (const n in m) into[n] = (into[n] || 0) + num(m[n]); }
  function renderOwners() {
    const o = S.owners, body = $('owners-body'), err = $('owners-error');
    err.textContent = o.err || ''; show(err, !!o.err);
    if (!o.data) return;
    const groups = new Map();
    o.data.forEach((a) => {
      const owner = str(obj(a.meta).owner) || '(none)';
      if (!groups.has(owner)) groups.set(owner, { allocs: [], res: {} });
      const g = groups.get(owner);
      g.allocs.push(a); sumRes(g.res, a.resources);
    });
    const owners = Array.from(groups.keys()).sort((a, b) => groups.get(b).allocs.length - groups.get(a).allocs.length || (a < b ? -1 : 1));
    const frag = document.createDocumentFragment();
    owners.forEach((owner) => {
      const g = groups.get(owner), open = o.open.has(owner);
      const tr = el('tr', 'owner' + (open ? ' open' : ''));
      tr.dataset.owner = owner;
      const c = tr.appendChild(td(null, 'toggle'));
      c.appendChild(el('span', 'caret', open ? '▾' : '▸'));
      c.appendChild(el('span', 'name', owner));
      tr.appendChild(td(g.allocs.length, 'num'));
      tr.appendChild(td(fmtResMap(g.res)));
      tr.appendChild(td('')); tr.appendChild(td(''));
      tr.addEventListener('click', () => { if (open) o.open.delete(owner); else o.open.add(owner); renderOwners(); });
      frag.appendChild(tr);
      if (open) ownerAllocRows(g.allocs, frag);
    });
    body.textContent = '';
    body.appendChild(frag);
    show($('owners-empty'), o.data.length === 0);
    $('owners-summary').textContent = o.data.length + ' allocs · ' + owners.length + ' owners';
  }
  function ownerAllocRows(allocs, frag) {
    allocs.slice().sort((a, b) => (str(a.id) < str(b.id) ? -1 : 1)).slice(0, OWNER_SHOW).forEach((a) => {
      const tr = el('tr', 'alloc-row');
      tr.dataset.alloc = str(a.id);
      tr.appendChild(td(null, 'indent')).appendChild(allocLink(str(a.id)));
      tr.appendChild(td(''));
      tr.appendChild(td(fmtResMap(a.resources)));
      tr.appendChild(td(str(a.pool), 'mono'));
      tr.appendChild(td(fmtUntil(a.expires_ms, 'expired'), 'num'));
      frag.appendChild(tr);
    });
    if (allocs.length > OWNER_SHOW) { const tr = el('tr', 'more'); tr.appendChild(td('… ' + (allocs.length - OWNER_SHOW) + ' more')).colSpan = 5; frag.appendChild(tr); }
  }

  // ---------- alloc view ----------
  function openAlloc(uri) {
    S.alloc = { uri: uri, tok: S.alloc.tok, data: null, err: null, exec: '', logTok: S.alloc.logTok };
    $('alloc-uri').textContent = uri;
    $('alloc-lease').textContent = ''; $('execs-body').textContent = '';
    show($('logs'), false); show($('execs-empty'), false);
    $('execs-count').textContent = '';
    loadAlloc();
  }
  async function loadAlloc() {
    const a = S.alloc, tok = ++a.tok;
    $('alloc-refresh').classList.remove('attention');
    $('alloc-refresh').disabled = true;
    try {
      const r = await getJSON('/api/alloc?uri=' + encodeURIComponent(a.uri));
      if (tok !== a.tok) return;
      noteClock(r.now_ms);
      a.data = { alloc: obj(r.alloc), execs: (Array.isArray(r.execs) ? r.execs : []).filter((x) => x && typeof x === 'object') };
      a.err = null;
      if (!a.data.execs.some((x) => str(x.id) === a.exec)) a.exec = a.data.execs.length ? str(a.data.execs[a.data.execs.length - 1].id) : '';
    } catch (e) {
      if (tok !== a.tok) return;
      a.err = e.message;
    }
    $('alloc-refresh').disabled = false;
    renderAlloc();
    if (a.exec && !a.err) loadLogs();
  }
  function renderAlloc() {
    const a = S.alloc, err = $('alloc-error');
    err.textContent = a.err || ''; show(err, !!a.err);
    if (!a.data) return;
    renderLease();
    const body = $('execs-body'), execs = a.data.execs;
    body.textContent = '';
    execs.forEach((x) => body.appendChild(execRow(x)));
    show($('execs-empty'), execs.length === 0);
    $('execs-count').textContent = execs.length ? String(execs.length) : '';
  }
  function renderLease() {
    const x = S.alloc.data.alloc, meta = obj(x.meta), dl = $('alloc-lease');
    dl.textContent = '';
    const row = (k, v) => { dl.appendChild(el('dt', '', k)); const dd = dl.appendChild(el('dd')); if (typeof v === 'string') dd.textContent = v; else dd.appendChild(v); return dd; };
    row('id', str(x.id)).classList.add('mono');
    row('pool', str(x.pool)).classList.add('mono');
    row('owner', str(meta.owner) || '(none)');
    row('created', fmtTime(x.created_ms, true) + (num(x.created_ms) ? ' (' + fmtAge(x.created_ms) + ' ago)' : ''));
    row('last keepalive', num(x.last_keepalive_ms) ? fmtTime(x.last_keepalive_ms, true) + ' (' + fmtAge(x.last_keepalive_ms) + ' ago)' : 'never');
    row('expires in', fmtUntil(x.expires_ms, 'expired') + (num(x.expires_ms) ? ' (' + fmtTime(x.expires_ms, true) + ')' : ''));
    row('resources', fmtResMap(x.resources));
    row('wanted', fmtResMap(meta.want));
    row('labels', labelPairs(meta.labels).length ? chips(meta.labels) : '—');
  }
  function execRow(x) {
    const tr = el('tr', 'exec' + (str(x.id) === S.alloc.exec ? ' selected' : ''));
    tr.dataset.exec = str(x.id);
    tr.appendChild(td(str(x.id), 'mono'));
    tr.appendChild(td(null)).appendChild(el('span', 'state state-' + str(x.state), str(x.state) || '?'));
    const exit = [];
    if (x.exit_code !== undefined && x.exit_code !== null) exit.push('exit ' + x.exit_code);
    if (x.signal !== undefined && x.signal !== null) exit.push('signal ' + x.signal);
    if (x.error) exit.push(str(x.error));
    tr.appendChild(td(exit.join(' · ') || '—', x.error ? 'errtext' : '')).title = exit.join('\n');
    tr.appendChild(td(fmtTime(x.started_ms))).title = fmtTime(x.started_ms, true);
    const st = num(x.started_ms);
    tr.appendChild(td(st ? fmtDur((num(x.finished_ms) || now()) - st) : '—', 'num'));
    const pr = x.profile ? obj(x.profile) : null;
    tr.appendChild(td(pr ? fmtBytes(pr.max_rss_bytes) : '—', 'num'));
    tr.appendChild(td(pr ? fmtMs(pr.cpu_user_ms) : '—', 'num'));
    tr.appendChild(td(pr ? fmtMs(pr.cpu_sys_ms) : '—', 'num'));
    tr.addEventListener('click', () => { S.alloc.exec = str(x.id); renderAlloc(); loadLogs(); });
    return tr;
  }
  async function loadLogs() {
    const a = S.alloc, tok = ++a.logTok, exec = a.exec;
    show($('logs'), true);
    $('logs-exec').textContent = exec;
    const one = (stream) => getJSON('/api/logs?alloc=' + encodeURIComponent(a.uri) + '&exec=' + encodeURIComponent(exec) +
      '&stream=' + stream + '&tail=' + LOG_TAIL);
    const res = await Promise.all(['stdout', 'stderr'].map((s) => one(s).then((r) => ({ r: r }), (e) => ({ e: e }))));
    if (tok !== a.logTok) return;
    const errs = [];
    ['stdout', 'stderr'].forEach((s, i) => {
      const r = obj(res[i].r);
      if (res[i].e) errs.push(s + ': ' + res[i].e.message);
      const text = str(r.text);
      const pre = $(s);
      pre.textContent = text || (res[i].e ? '' : '(empty)');
      pre.classList.toggle('dim', !text);
      pre.scrollTop = pre.scrollHeight; // it is a tail: show its end
      const size = num(r.size), shown = new Blob([text]).size;
      $(s + '-meta').textContent = res[i].e ? '' : (size > shown ? 'last ' + fmtBytes(shown) + ' of ' + fmtBytes(size) : fmtBytes(size)) + (r.eof ? ' · eof' : '');
    });
    $('logs-error').textContent = errs.join('\n'); show($('logs-error'), errs.length > 0);
  }

  // ---------- routing ----------
  function route() {
    const h = location.hash || '#/', m = /^#\/alloc\/(.+)$/.exec(h);
    const prev = S.route;
    if (m) {
      let uri = m[1];
      try { uri = decodeURIComponent(uri); } catch (e) { /* keep raw */ }
      S.route = 'alloc';
      if (prev !== 'alloc') S.backHref = prev === 'owners' ? '#/owners' : '#/';
      $('alloc-back').setAttribute('href', S.backHref);
      openAlloc(uri);
    } else S.route = h === '#/owners' ? 'owners' : 'overview';
    show($('view-overview'), S.route === 'overview');
    show($('view-owners'), S.route === 'owners');
    show($('view-alloc'), S.route === 'alloc');
    document.querySelectorAll('#tabs .tab').forEach((t) => t.classList.toggle('active', t.dataset.tab === S.route));
    if (S.route === 'owners' && prev !== 'owners') { renderOwners(); loadOwners(); }
    if (S.route === 'overview') { Object.assign(S.dirty, { rows: true, queue: true, tailFull: true, tail: true }); scheduleRender(); }
  }

  // ---------- wiring ----------
  function wire() {
    $('pools-head').addEventListener('click', (ev) => { const th = ev.target.closest('th[data-sort]'); if (th) setSort(th.dataset.sort); });
    $('pool-filter').addEventListener('input', (ev) => {
      S.filter = ev.target.value.toLowerCase().split(/\s+/).filter(Boolean);
      S.dirty.pools = true; markOrder('hard');
      $('pools-scroll').scrollTop = 0;
    });
    $('pools-scroll').addEventListener('scroll', () => { S.dirty.rows = true; scheduleRender(); }, { passive: true });
    window.addEventListener('resize', () => { S.dirty.rows = true; scheduleRender(); });
    const retail = () => { S.dirty.tailFull = true; scheduleRender(); };
    $('tail-topics').addEventListener('change', retail);
    $('tail-prefix').addEventListener('input', retail);
    $('tail-pause').addEventListener('change', (ev) => { S.tailPaused = ev.target.checked; retail(); });
    $('owners-refresh').addEventListener('click', loadOwners);
    $('alloc-refresh').addEventListener('click', loadAlloc);
    window.addEventListener('hashchange', route);
    setInterval(() => { S.dirty.ages = true; scheduleRender(); }, 1000);
  }

  wire();
  route();
  setLive(false);
  connect();
})();
