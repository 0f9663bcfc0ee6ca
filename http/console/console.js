// keel's web console: the processes, each run as a timeline, its log and its
// controls, the node's health. It reads and acts only through the HTTP API
// under /v1/ (INTERFACE.md and docs/interface-extensions.md). Vanilla JS and
// SVG; nothing is loaded from anywhere but the node.
'use strict';

// ---------------------------------------------------------------- helpers

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const SVG_NS = 'http://www.w3.org/2000/svg';

// An element with attributes (`on*` as listeners) and children (text or nodes).
function h(tag, attrs, ...children) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG_NS, tag.slice(4))
                                      : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const svg = (tag, attrs, ...children) => h('svg:' + tag, attrs, ...children);

// Milliseconds since the epoch of an RFC 3339 time, keeping the sub-millisecond
// digits of the log's nanosecond times as a fraction.
function timeMs(text) {
  if (!text) return null;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(text);
  if (!m) return Date.parse(text);
  const frac = (m[2] || '').padEnd(9, '0').slice(0, 9);
  return Date.parse(m[1] + 'Z') + Number(frac) / 1e6;
}

function fmtTime(text) {
  if (!text) return '—';
  const d = new Date(timeMs(text));
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
         pad(d.getMilliseconds(), 3);
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '—';
  if (ms === 0) return '0';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(2)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} m`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

const json = (v) => JSON.stringify(v);
const pretty = (v) => JSON.stringify(v, null, 2);
const badge = (status) => h('span', {class: `badge st-${status}`, 'data-status': status}, status);

// ---------------------------------------------------------------- the API

const tokenInput = () => document.getElementById('token');

// GET as JSON; throws an Error carrying the API's message.
async function getJson(path) {
  const res = await fetch(path, {headers: {Accept: 'application/json'}});
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body && body.error ? body.error.message : `HTTP ${res.status}`);
  return body;
}

async function getText(path) {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

// A POST that acts: the token goes as a bearer header, never a cookie, so a
// page of another site cannot act on the node. Returns {ok, status, body}.
async function act(path, body) {
  const headers = {'Content-Type': 'application/json'};
  const token = tokenInput().value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const res = await fetch(path, {method: 'POST', headers, body: json(body || {}),
                                   credentials: 'omit'});
    const answer = await res.json().catch(() => null);
    return {ok: res.ok, status: res.status, body: answer};
  } catch (e) {
    return {ok: false, status: 0, body: {error: {code: 'network', message: String(e)}}};
  }
}

// Writes an action's outcome into `box`, in place: the new status, or the
// refusal with its HTTP status, code and reason.
function showResult(box, result, what) {
  box.replaceChildren();
  box.classList.remove('ok', 'refused');
  if (result.ok) {
    box.classList.add('ok');
    box.append(`${what}: accepted — the process is now `, badge(result.body.status));
    return;
  }
  box.classList.add('refused');
  const error = (result.body && result.body.error) || {};
  box.append(h('b', {}, `${result.status} ${error.code || ''}`), ` ${error.message || ''}`);
  if (result.status === 401) {
    box.append(' — enter the node\'s token at the top right and try again.');
    const t = tokenInput();
    t.parentElement.classList.add('wanted');
    t.focus();
  }
}

// Prometheus text → [{name, labels, value}] (samples only).
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[3] || '').matchAll(/(\w+)="([^"]*)"/g)) labels[pair[1]] = pair[2];
    out.push({name: m[1], labels, value: Number(m[4])});
  }
  return out;
}

// ---------------------------------------------------------------- pages

const main = () => document.getElementById('main');
let page = null;  // the page shown: {stop()}

function setLive(on, text) {
  const live = document.getElementById('live');
  live.className = `live ${on ? 'on' : 'off'}`;
  live.textContent = text || (on ? 'live' : 'offline');
}

function noteRender(what, started) {
  const ms = performance.now() - started;
  window.keelRender = window.keelRender || {};
  window.keelRender[what] = ms;
  document.getElementById('render-time').textContent = `${what} rendered in ${ms.toFixed(0)} ms`;
}

function route() {
  if (page) page.stop();
  page = null;
  const hash = location.hash || '#/';
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  document.querySelectorAll('nav a').forEach((a) => a.classList.remove('here'));
  if (path.startsWith('/p/')) {
    page = new RunPage(decodeURIComponent(path.slice(3)), params);
  } else if (path === '/node') {
    document.getElementById('nav-node').classList.add('here');
    page = new NodePage();
  } else {
    document.getElementById('nav-processes').classList.add('here');
    page = new ListPage(params);
  }
}

// ---------------------------------------------------------------- processes

const PAGE_SIZES = [25, 50, 100, 1000];

class ListPage {
  constructor(params) {
    this.filter = {
      status: params.get('status') || '',
      workflow: params.get('workflow') || '',
      since: params.get('since') || '',
      until: params.get('until') || '',
      search: params.get('search') || '',
      limit: Number(params.get('limit')) || 50,
      offset: Number(params.get('offset')) || 0,
    };
    this.stopped = false;
    this.pending = null;
    this.build();
    this.load();
    // Any event of the node may move a listed process: reload, at most
    // twice a second.
    this.stream = new EventSource('/v1/events/stream');
    this.stream.onopen = () => setLive(true);
    this.stream.onerror = () => setLive(false, 'reconnecting');
    this.stream.onmessage = () => this.soon();
  }

  stop() {
    this.stopped = true;
    this.stream.close();
    clearTimeout(this.pending);
  }

  soon() {
    if (this.pending) return;
    this.pending = setTimeout(() => { this.pending = null; this.load(); }, 500);
  }

  // The filters into the address, so that a view can be linked and reloaded.
  navigate(changes) {
    Object.assign(this.filter, changes);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(this.filter)) {
      if (v && !(k === 'limit' && v === 50)) q.set(k, v);
    }
    location.hash = '#/' + (q.toString() ? '?' + q : '');
  }

  build() {
    const f = this.filter;
    const input = (name, placeholder, title) => h('input', {
      name, value: f[name], placeholder, title, id: `filter-${name}`,
      onchange: (e) => this.navigate({[name]: e.target.value.trim(), offset: 0}),
    });
    this.counts = h('div', {id: 'counts', class: 'counts'});
    this.statusSelect = h('select', {id: 'filter-status', name: 'status',
                                     onchange: (e) => this.navigate({status: e.target.value, offset: 0})},
                          h('option', {value: ''}, 'any status'));
    this.table = h('tbody', {id: 'process-rows'});
    this.pager = h('div', {class: 'pager', id: 'pager'});
    this.message = h('p', {class: 'message', id: 'list-message'});
    main().replaceChildren(
      h('h1', {}, 'Processes'),
      this.counts,
      h('form', {class: 'filters', id: 'filters', onsubmit: (e) => e.preventDefault()},
        this.statusSelect,
        input('workflow', 'workflow', 'the workflow name'),
        input('since', 'since (1h, 2026-12-01T00:00:00Z)', 'created at or after: a duration ago or an RFC 3339 time'),
        input('until', 'until', 'created at or before'),
        input('search', 'id or idempotency key prefix', 'a prefix of the process id or its idempotency key'),
        h('select', {id: 'filter-limit', onchange: (e) => this.navigate({limit: Number(e.target.value), offset: 0})},
          PAGE_SIZES.map((n) => h('option', {value: n, selected: n === f.limit}, `${n} a page`))),
        h('button', {type: 'button', onclick: () => this.navigate({status: '', workflow: '', since: '', until: '', search: '', offset: 0})}, 'clear')),
      this.message,
      h('table', {class: 'processes'},
        h('thead', {}, h('tr', {}, ['id', 'workflow', 'status', 'created', 'updated', 'duration', 'idempotency key'].map((c) => h('th', {}, c)))),
        this.table),
      this.pager);
  }

  async load() {
    if (this.stopped) return;
    const f = this.filter;
    const q = new URLSearchParams();
    for (const k of ['status', 'workflow', 'since', 'until']) if (f[k]) q.set(k, f[k]);
    // A prefix is matched here, over the newest 1000 processes the other
    // filters keep (the API filters by exact values only).
    q.set('limit', f.search ? 1000 : f.limit);
    q.set('offset', f.search ? 0 : f.offset);
    try {
      const [list, metrics] = await Promise.all([
        getJson('/v1/processes?' + q), getText('/v1/metrics').catch(() => '')]);
      if (this.stopped) return;
      this.message.textContent = '';
      this.message.classList.remove('refused');
      this.render(list, parseMetrics(metrics));
    } catch (e) {
      this.message.textContent = e.message;
      this.message.classList.add('refused');
    }
  }

  render(list, metrics) {
    const started = performance.now();
    const f = this.filter;
    // Status counts, from the node's gauges; a click filters by it.
    const counts = metrics.filter((m) => m.name === 'keel_processes');
    const total = counts.reduce((n, m) => n + m.value, 0);
    this.counts.replaceChildren(
      h('a', {href: '#/', class: `count ${f.status ? '' : 'here'}`, 'data-status': 'all'}, h('b', {}, total), ' all'),
      ...counts.filter((m) => m.value > 0 || m.labels.status === f.status).map((m) => h('a', {
        href: '#/?status=' + encodeURIComponent(m.labels.status),
        class: `count st-${m.labels.status} ${f.status === m.labels.status ? 'here' : ''}`,
        'data-status': m.labels.status, 'data-count': m.value,
      }, h('b', {}, m.value), ' ' + m.labels.status)));
    if (this.statusSelect.options.length === 1) {
      for (const m of counts) this.statusSelect.append(h('option', {value: m.labels.status}, m.labels.status));
    }
    this.statusSelect.value = f.status;

    let rows = list.processes;
    if (f.search) {
      rows = rows.filter((p) => p.id.startsWith(f.search) ||
                                (p.idempotency_key || '').startsWith(f.search));
    }
    const now = Date.now();
    this.table.replaceChildren(...rows.map((p) => {
      const created = timeMs(p.created_at);
      const end = p.ended_at ? timeMs(p.ended_at) : now;
      return h('tr', {'data-id': p.id, 'data-status': p.status},
        h('td', {}, h('a', {href: '#/p/' + encodeURIComponent(p.id), class: 'pid'}, p.id)),
        h('td', {}, p.workflow),
        h('td', {}, badge(p.status)),
        h('td', {}, fmtTime(p.created_at)),
        h('td', {}, fmtTime(p.updated_at)),
        h('td', {}, fmtDuration(end - created) + (p.ended_at ? '' : ' …')),
        h('td', {class: 'key'}, p.idempotency_key || ''));
    }));
    if (!rows.length) this.table.append(h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'no process matches')));
    if (f.search) {
      this.pager.replaceChildren(`${rows.length} whose id or idempotency key starts with “${f.search}”` +
                                 (list.has_more ? ' (among the newest 1000)' : ''));
    } else {
      const from = list.total ? list.offset + 1 : 0;
      const to = list.offset + list.processes.length;
      this.pager.replaceChildren(
        h('button', {id: 'prev', disabled: list.offset === 0,
                     onclick: () => this.navigate({offset: Math.max(0, list.offset - f.limit)})}, '‹ newer'),
        h('span', {id: 'page-range'}, ` ${from}–${to} of ${list.total} `),
        h('button', {id: 'next', disabled: !list.has_more,
                     onclick: () => this.navigate({offset: list.offset + f.limit})}, 'older ›'));
    }
    noteRender('list', started);
  }
}

// ---------------------------------------------------------------- a run

// What each task did over time, from the process's event lines: every
// attempt a `running` span; waiting (queue, backoff, approval, signal, timer)
// its own spans between them.
function buildTimeline(events) {
  const tasks = new Map();     // id → {id, step, branch, spans, status, open, order}
  const branches = new Map();  // id → {id, parent, fork_task, item, order}
  let order = 0;
  const open = (task, kind, at, attempt) => { task.open = {kind, start: at, attempt}; };
  const close = (task, at, extra) => {
    if (task.open) task.spans.push(Object.assign({}, task.open, {end: at}, extra || {}));
    task.open = null;
  };
  for (const e of events) {
    const at = timeMs(e.time);
    const d = e.data || {};
    if (e.type === 'BranchStarted') {
      branches.set(e.entity, {id: e.entity, parent: d.parent || null, fork: d.fork_task || null,
                              item: d.item, order: order++});
      continue;
    }
    // A pause holds the tasks that wait to run; a resume lets them queue again.
    if (e.type === 'ProcessPaused' || e.type === 'ProcessResumed') {
      const [from, to] = e.type === 'ProcessPaused' ? ['queued', 'pause'] : ['pause', 'queued'];
      for (const t of tasks.values()) {
        if (t.open && t.open.kind === from) { close(t, at); open(t, to, at); }
      }
      continue;
    }
    // A fork (parallel, for_each) waits for its child branches to join.
    if (e.type === 'BranchWaiting' && d.task && tasks.has(d.task)) {
      const t = tasks.get(d.task);
      if (t.open && t.open.kind === 'running') { close(t, at, {outcome: 'forked'}); open(t, 'branches', at); }
      continue;
    }
    if (e.type === 'BranchSuspended' && d.task && tasks.has(d.task)) {
      const t = tasks.get(d.task);
      if (t.open && t.open.kind === 'queued') { close(t, at); open(t, d.kind || 'waiting', at); }
      continue;
    }
    if (e.type === 'TimerScheduled' && d.task && tasks.has(d.task) && d.kind !== 'retry' &&
        d.kind !== 'expiry') {
      const t = tasks.get(d.task);
      if (t.open && t.open.kind === 'queued') { close(t, at); open(t, 'timer', at); }
      continue;
    }
    if (!e.type.startsWith('Task')) continue;
    let t = tasks.get(e.entity);
    if (!t) {
      t = {id: e.entity, step: d.step || e.entity, branch: d.branch || 'main', spans: [],
           status: 'scheduled', open: null, order: order++, attempts: 0};
      tasks.set(e.entity, t);
    }
    switch (e.type) {
      case 'TaskScheduled':
        close(t, at);
        t.status = 'scheduled';
        open(t, 'queued', at);
        break;
      case 'TaskStarted':
        close(t, at);
        t.status = 'running';
        t.attempts = Math.max(t.attempts, d.attempt || t.attempts + 1);
        open(t, 'running', at, d.attempt || t.attempts);
        break;
      case 'TaskRetryScheduled':
        close(t, at, {outcome: 'failed', error: d.error});
        t.status = 'retrying';
        open(t, 'backoff', at, d.attempt);
        break;
      case 'TaskWaitingForApproval':
        close(t, at);
        t.status = 'waitForApproval';
        open(t, 'approval', at);
        break;
      case 'TaskApproved':
        close(t, at, {outcome: 'approved'});
        t.status = 'approved';
        open(t, 'queued', at);
        break;
      case 'TaskRejected':
        close(t, at, {outcome: 'rejected'});
        t.status = 'rejected';
        break;
      case 'TaskCompleted': case 'TaskFailed': case 'TaskSkipped': case 'TaskCancelled':
      case 'TaskBlocked':
        close(t, at, {outcome: e.type.slice(4).toLowerCase(), error: d.error});
        t.status = e.type.slice(4).toLowerCase();
        break;
      default:
        break;
    }
  }
  return {tasks, branches};
}

// Rows of the timeline: each branch's tasks in order, a child branch right
// after the task that forked it, each row with its depth.
function timelineRows(model) {
  const rows = [];
  const byBranch = new Map();
  for (const t of [...model.tasks.values()].sort((a, b) => a.order - b.order)) {
    if (!byBranch.has(t.branch)) byBranch.set(t.branch, []);
    byBranch.get(t.branch).push(t);
  }
  const children = new Map();  // fork task id → child branches
  for (const b of [...model.branches.values()].sort((a, b) => a.order - b.order)) {
    if (!b.fork) continue;
    if (!children.has(b.fork)) children.set(b.fork, []);
    children.get(b.fork).push(b);
  }
  const seen = new Set();
  const walk = (branchId, depth) => {
    if (seen.has(branchId)) return;
    seen.add(branchId);
    const b = model.branches.get(branchId);
    if (branchId !== 'main' && (byBranch.get(branchId) || []).length > 1) {
      rows.push({kind: 'branch', id: branchId, depth,
                 label: `branch ${branchId}` + (b && b.item !== null && b.item !== undefined ? ` · item ${json(b.item)}` : '')});
    }
    for (const t of byBranch.get(branchId) || []) {
      rows.push({kind: 'task', task: t, depth});
      for (const child of children.get(t.id) || []) walk(child.id, depth + 1);
    }
  };
  walk('main', 0);
  for (const b of model.branches.keys()) walk(b, 0);      // any left (defensive)
  for (const branchId of byBranch.keys()) walk(branchId, 0);
  return rows;
}

// " · item X" for a for_each branch.
function itemOf(model, branchId) {
  const b = model.branches.get(branchId);
  return b && b.item !== null && b.item !== undefined ? ` · item ${json(b.item)}` : '';
}

const KIND_LABEL = {running: 'running', queued: 'queued', backoff: 'retry backoff',
                    approval: 'waiting for approval', signal: 'waiting for a signal',
                    timer: 'waiting for a timer', pause: 'paused', waiting: 'waiting',
                    branches: 'waiting for its branches'};

function renderTimelineWidth(box) {
  return Math.max(700, (box.clientWidth || 1000) - 2);
}

// The timeline as SVG. `endMs` is where open spans end (now while the
// process moves); `nowMs` draws the "now" line when given.
function renderTimeline(model, startMs, endMs, nowMs, width) {
  const rows = timelineRows(model);
  const labelW = 230, rowH = 16, axisH = 22;
  const plotW = width - labelW - 10;
  const span = Math.max(endMs - startMs, 1);
  const x = (ms) => labelW + Math.max(0, Math.min(1, (ms - startMs) / span)) * plotW;
  const height = axisH + rows.length * rowH + 6;
  const root = svg('svg', {width, height, class: 'timeline', id: 'timeline-svg',
                           viewBox: `0 0 ${width} ${height}`});
  // Axis: five ticks of time since the process was created.
  for (let i = 0; i <= 5; i++) {
    const at = startMs + (span * i) / 5;
    root.append(svg('line', {x1: x(at), x2: x(at), y1: axisH - 4, y2: height, class: 'grid'}),
                // While the run moves, its right end is now: labelled below.
                i === 5 && nowMs ? null
                  : svg('text', {x: x(at), y: 12, class: 'tick', 'text-anchor': i === 5 ? 'end' : i ? 'middle' : 'start'},
                        '+' + fmtDuration(at - startMs)));
  }
  rows.forEach((row, i) => {
    const y = axisH + i * rowH;
    if (row.kind === 'branch') {
      root.append(svg('text', {x: 4 + row.depth * 12, y: y + 12, class: 'branch-label', 'data-branch': row.id}, row.label));
      return;
    }
    const t = row.task;
    const g = svg('g', {class: `task-row st-${t.status}`, 'data-task': t.id, 'data-status': t.status});
    g.append(svg('text', {x: 4 + row.depth * 12, y: y + 12, class: 'task-label'},
                 svg('title', {}, `${t.id} (step ${t.step}, branch ${t.branch}${itemOf(model, t.branch)}): ${t.status}`),
                 t.id.length > 30 ? '…' + t.id.slice(-29) : t.id));
    const spans = t.open ? [...t.spans, Object.assign({}, t.open, {end: endMs, live: true})] : t.spans;
    for (const s of spans) {
      const x1 = x(s.start), x2 = Math.max(x(s.end), x1 + 2);
      const waiting = s.kind !== 'running';
      const cls = ['seg', waiting ? 'waiting' : 'running', `k-${s.kind}`,
                   s.outcome ? `o-${s.outcome}` : '', s.live ? 'live' : ''].join(' ');
      const what = s.kind === 'running' ? `attempt ${s.attempt} running` : KIND_LABEL[s.kind] || s.kind;
      root.append(svg('rect', {
        x: x1, y: y + (waiting ? 5 : 2), width: x2 - x1, height: waiting ? 6 : 12, rx: 2,
        class: cls, 'data-task': t.id, 'data-kind': s.kind, 'data-attempt': s.attempt || null,
        'data-outcome': s.outcome || null,
      }, svg('title', {}, `${t.id}: ${what}, ${fmtDuration(s.end - s.start)}` +
                          (s.outcome ? ` → ${s.outcome}` : s.live ? ' (so far)' : '') +
                          (s.error ? `: ${s.error}` : ''))));
    }
    root.append(g);
  });
  if (nowMs) {
    root.append(svg('line', {x1: x(nowMs), x2: x(nowMs), y1: axisH - 6, y2: height, class: 'now', id: 'now-line'}),
                svg('text', {x: x(nowMs), y: 12, class: 'now-label', 'text-anchor': 'end'},
                    `now +${fmtDuration(nowMs - startMs)}`));
  }
  return root;
}

class RunPage {
  constructor(id, params) {
    this.id = id;
    this.events = [];
    this.snapshot = null;
    this.asOf = params.get('seq') ? Number(params.get('seq')) : null;
    this.replayed = null;     // the snapshot as of this.asOf (GET .../replay?to=)
    this.definition = null;   // the workflow definition (GET .../definition)
    this.stopped = false;
    this.loading = null;
    this.build();
    this.timelineWidth = renderTimelineWidth(this.timeline);
    this.onResize = () => { this.timelineWidth = renderTimelineWidth(this.timeline); this.drawTimeline(); };
    window.addEventListener('resize', this.onResize);
    this.refresh().then(() => this.follow());
    this.ticker = setInterval(() => {
      if (this.snapshot && !TERMINAL.has(this.snapshot.status) && this.asOf === null) this.drawTimeline();
    }, 1000);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.drawSoon);
    window.removeEventListener('resize', this.onResize);
    if (this.stream) this.stream.close();
    clearInterval(this.ticker);
  }

  build() {
    const section = (id, title, ...body) => h('section', {id}, h('h2', {}, title), ...body);
    this.header = h('div', {id: 'run-header'});
    this.actions = h('div', {id: 'run-actions'});
    this.asOfBanner = h('div', {id: 'as-of', class: 'as-of', hidden: true});
    this.timeline = h('div', {id: 'timeline', class: 'scroll-x'});
    this.tasksBox = h('div', {id: 'tasks'});
    this.branchesBox = h('div', {id: 'branches'});
    this.eventRows = h('tbody', {id: 'event-rows'});
    this.definitionBox = h('div', {id: 'definition'});
    this.message = h('p', {class: 'message', id: 'run-message'});
    main().replaceChildren(
      h('p', {class: 'crumbs'}, h('a', {href: '#/'}, '‹ processes')),
      h('h1', {}, 'Process ', h('code', {id: 'run-id'}, this.id)),
      this.message,
      this.header,
      section('actions', 'Act', this.actions),
      section('timeline-section', 'Timeline',
              h('div', {class: 'legend'},
                ['running', 'queued', 'backoff', 'approval', 'signal', 'timer', 'branches', 'pause'].map((k) =>
                  h('span', {class: 'key'}, h('i', {class: `swatch k-${k}`}), KIND_LABEL[k])),
                h('span', {class: 'key'}, h('i', {class: 'swatch o-failed'}), 'attempt failed')),
              this.asOfBanner, this.timeline),
      section('tasks-section', 'Tasks', this.tasksBox),
      section('branches-section', 'Branches', this.branchesBox),
      section('events-section', 'Event log',
              h('p', {}, h('span', {id: 'verify', class: 'verify'}, 'chain: …'), ' ',
                h('span', {class: 'muted'}, 'Click a seq to see the run as of that event.')),
              h('table', {class: 'events'},
                h('thead', {}, h('tr', {}, ['seq', 'time', 'type', 'entity', 'actor', 'data', 'hash'].map((c) => h('th', {}, c)))),
                this.eventRows)),
      section('definition-section', 'Workflow definition', this.definitionBox));
  }

  // The snapshot and any events not yet shown.
  async refresh() {
    try {
      const base = '/v1/processes/' + encodeURIComponent(this.id);
      const [snapshot, definition] = await Promise.all([
        getJson(base), getJson(base + '/definition').catch((e) => ({error: e.message}))]);
      this.definition = definition;
      if (this.asOf !== null) this.replayed = await getJson(`${base}/replay?to=${this.asOf}`);
      await this.apply(snapshot);
    } catch (e) {
      this.message.textContent = e.message;
      this.message.classList.add('refused');
    }
  }

  // Shows `snapshot`; reads the events it adds to those shown.
  async apply(snapshot) {
    if (this.stopped) return;
    if (this.snapshot && snapshot.last_seq < this.snapshot.last_seq) return;  // an older one
    this.snapshot = snapshot;
    const have = this.events.length ? this.events[this.events.length - 1].seq : 0;
    let started = performance.now();
    if (snapshot.last_seq > have) {
      const text = await getText(`/v1/processes/${encodeURIComponent(this.id)}/events?from=${have + 1}`);
      if (this.stopped) return;
      started = performance.now();  // from the answer on: what the page does
      const known = this.events.length ? this.events[this.events.length - 1].seq : 0;
      const fresh = text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.seq > known);
      this.events.push(...fresh);
      this.appendEventRows(fresh);
    }
    this.drawHeader();
    this.drawActions();
    this.drawTasks();
    this.drawBranches();
    this.drawTimeline();
    this.drawDefinition();
    noteRender('run', started);
    if (snapshot.status !== this.verifiedStatus) this.verify(snapshot.status);
    if (!TERMINAL.has(snapshot.status)) this.follow();
  }

  // The process's SSE stream: a snapshot per durable change. Closed once the
  // process ends (the server ends the stream; the browser would reconnect).
  follow() {
    if (this.stopped || this.stream || !this.snapshot || TERMINAL.has(this.snapshot.status)) {
      if (this.snapshot && TERMINAL.has(this.snapshot.status)) setLive(false, 'ended');
      return;
    }
    const stream = new EventSource(`/v1/processes/${encodeURIComponent(this.id)}/stream`);
    this.stream = stream;
    stream.onopen = () => setLive(true);
    stream.onerror = () => setLive(false, 'reconnecting');
    stream.onmessage = (m) => {
      const snapshot = JSON.parse(m.data);
      if (TERMINAL.has(snapshot.status)) {
        stream.close();
        if (this.stream === stream) this.stream = null;
        setLive(false, 'ended');
      }
      // A busy run sends a snapshot per change: draw the newest, at most
      // four times a second, one apply at a time.
      this.latest = snapshot;
      if (this.drawSoon) return;
      this.drawSoon = setTimeout(() => {
        this.drawSoon = null;
        const newest = this.latest;
        this.loading = (this.loading || Promise.resolve()).then(() => this.apply(newest));
      }, TERMINAL.has(snapshot.status) ? 0 : 250);
    };
  }

  drawHeader() {
    const s = this.snapshot;
    const created = timeMs(s.created_at);
    const end = s.ended_at ? timeMs(s.ended_at) : Date.now();
    const field = (name, value, id) => [h('dt', {}, name), h('dd', {id: id ? `hdr-${id}` : null}, value)];
    const code = (v) => h('pre', {class: 'json'}, pretty(v));
    const waits = (s.waiting_on || []).map((w) => `${w.kind}${w.topic ? ' ' + w.topic : ''}${w.task ? ' (' + w.task + ')' : ''}`);
    this.header.replaceChildren(h('div', {class: 'header-grid'}, h('dl', {class: 'header'},
      field('workflow', s.workflow, 'workflow'),
      field('status', [badge(s.status), waits.length ? ` on ${waits.join(', ')}` : '',
                       s.pause_reason ? ` — ${s.pause_reason}` : ''], 'status'),
      field('created', fmtTime(s.created_at)),
      field('updated', fmtTime(s.updated_at)),
      field('ended', fmtTime(s.ended_at)),
      field('duration', fmtDuration(end - created) + (s.ended_at ? '' : ' so far'), 'duration'),
      field('idempotency key', s.idempotency_key || '—'),
      s.forked_from ? field('forked from', [h('a', {href: '#/p/' + encodeURIComponent(s.forked_from.process)},
                                              s.forked_from.process), ` at seq ${s.forked_from.seq}`]) : null,
      field('definition hash', h('code', {}, s.definition_hash || '—')),
      field('events', `${s.last_seq} (last hash ${(s.last_hash || '').slice(0, 16)}…)`),
      s.error !== null && s.error !== undefined ? field('error', h('span', {class: 'error'}, typeof s.error === 'string' ? s.error : json(s.error)), 'error') : null),
      h('dl', {class: 'header'}, field('inputs', code(s.inputs)), field('outputs', code(s.outputs)))));
  }

  drawActions() {
    const s = this.snapshot;
    const base = `/v1/processes/${encodeURIComponent(this.id)}`;
    const boxes = [];
    // Approvals waiting for a person.
    for (const t of s.tasks || []) {
      const a = t.approval;
      if (!(t.status === 'waitForApproval' || (a && a.status === 'pending'))) continue;
      const by = h('input', {placeholder: 'by', class: 'by', value: localStorage.getItem('keel.by') || ''});
      const reason = h('input', {placeholder: 'reason', class: 'reason'});
      const out = h('div', {class: 'result'});
      const decide = async (verb) => {
        localStorage.setItem('keel.by', by.value);
        const result = await act(`${base}/tasks/${encodeURIComponent(t.id)}/${verb}`,
                                 {by: by.value || undefined, reason: reason.value || undefined});
        showResult(out, result, verb === 'approve' ? 'approve' : 'reject');
        if (result.ok) this.apply(result.body);
      };
      boxes.push(h('div', {class: 'card approval', 'data-task': t.id},
        h('h3', {}, 'Approval ', h('code', {}, t.id)),
        h('p', {class: 'prompt'}, (a && a.prompt) || ''),
        a && a.expires_at ? h('p', {class: 'muted'}, `expires ${fmtTime(a.expires_at)} (then rejected)`) : null,
        h('div', {class: 'row'}, by, reason,
          h('button', {class: 'approve', onclick: () => decide('approve')}, 'Approve'),
          h('button', {class: 'reject danger', onclick: () => decide('reject')}, 'Reject')),
        out));
    }
    // Signals awaited, and any signal by topic.
    const awaited = (s.waiting_on || []).filter((w) => w.kind === 'signal');
    for (const w of awaited.length ? awaited : TERMINAL.has(s.status) ? [] : [{topic: ''}]) {
      const topic = h('input', {placeholder: 'topic', class: 'topic', value: w.topic || ''});
      const payload = h('textarea', {class: 'payload', rows: 3, spellcheck: 'false'}, '{}');
      const out = h('div', {class: 'result'});
      const send = async () => {
        let value;
        try {
          value = payload.value.trim() ? JSON.parse(payload.value) : null;
        } catch (e) {
          out.className = 'result refused';
          out.textContent = `the payload is not JSON: ${e.message}`;
          return;
        }
        const result = await act(`${base}/signals/${encodeURIComponent(topic.value)}`, {payload: value});
        showResult(out, result, 'signal');
        if (result.ok) this.apply(result.body);
      };
      boxes.push(h('div', {class: 'card signal', 'data-topic': w.topic || ''},
        h('h3', {}, w.topic ? 'Awaited signal' : 'Send a signal', w.task ? [' for ', h('code', {}, w.task)] : ''),
        h('div', {class: 'row'}, topic, h('button', {class: 'send', onclick: send}, 'Send')),
        h('label', {}, 'payload (JSON)', payload), out));
    }
    // Running attempts, each stoppable on its own: its retry policy decides
    // what follows (a wait that is not an attempt is refused with 409 here).
    const running = (s.tasks || []).filter((t) => t.status === 'running');
    if (running.length) {
      const out = h('div', {class: 'result', id: 'task-result'});
      const cancelTask = async (t) => {
        const result = await act(`${base}/tasks/${encodeURIComponent(t.id)}/cancel`,
                                 {by: localStorage.getItem('keel.by') || undefined});
        showResult(out, result, 'cancel');
        if (result.ok) this.apply(result.body);
      };
      boxes.push(h('div', {class: 'card running'},
        h('h3', {}, 'Running'),
        running.map((t) => h('div', {class: 'row', 'data-task': t.id},
          h('code', {}, t.id), ` attempt ${t.attempts || 1} `,
          h('button', {class: 'cancel-task danger', onclick: () => cancelTask(t)}, 'cancel attempt'))),
        out));
    }
    // Process controls. Every one is offered: the node says which the state
    // allows, and a refusal (409) is shown here with its reason.
    const reason = h('input', {placeholder: 'reason', class: 'reason'});
    const by = h('input', {placeholder: 'by', class: 'by', value: localStorage.getItem('keel.by') || ''});
    const out = h('div', {class: 'result', id: 'control-result'});
    const control = async (verb) => {
      const result = await act(`${base}/${verb}`, {by: by.value || undefined, reason: reason.value || undefined});
      showResult(out, result, verb);
      if (result.ok) this.apply(result.body);
    };
    boxes.push(h('div', {class: 'card controls'},
      h('h3', {}, 'Process'),
      h('div', {class: 'row'}, by, reason,
        ['pause', 'resume', 'cancel', 'retry'].map((verb) =>
          h('button', {class: `control ${verb === 'cancel' ? 'danger' : ''}`, 'data-action': verb,
                       onclick: () => control(verb)}, verb))),
      out));
    // Keep what a person is typing: redraw only when what is awaited changed.
    const signature = json([s.status, (s.tasks || []).filter((t) => t.status === 'waitForApproval').map((t) => t.id),
                            awaited.map((w) => w.topic), running.map((t) => [t.id, t.attempts])]);
    if (signature === this.actionSignature) return;
    this.actionSignature = signature;
    this.actions.replaceChildren(...boxes);
  }

  drawTasks() {
    const shown = this.asOf !== null && this.replayed ? this.replayed : this.snapshot;
    const rows = shown.tasks || [];
    this.tasksBox.replaceChildren(h('table', {class: 'tasks'},
      h('thead', {}, h('tr', {}, ['task', 'step', 'branch', 'status', 'attempts', 'started', 'ended', 'error'].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((t) => h('tr', {'data-task': t.id, 'data-status': t.status},
        h('td', {}, h('code', {}, t.id)), h('td', {}, t.step), h('td', {}, t.branch), h('td', {}, badge(t.status)),
        h('td', {}, t.attempts), h('td', {}, fmtTime(t.started_at)), h('td', {}, fmtTime(t.ended_at)),
        h('td', {class: 'error'}, t.error ? (typeof t.error === 'string' ? t.error : json(t.error)) : ''))))));
  }

  // The step of the definition with id `stepId` (searching nested steps).
  findStep(stepId) {
    const walk = (steps) => {
      for (const st of steps || []) {
        if (st.id === stepId) return st;
        const inner = walk(st.steps) || (st.branches || []).map((b) => walk(b.steps)).find(Boolean);
        if (inner) return inner;
      }
      return null;
    };
    return this.definition && this.definition.definition ? walk(this.definition.definition.steps) : null;
  }

  // Branches as a tree: under each branch, its forks (the task that started
  // children, its join kind from the definition and its verdict: the fork
  // task's status), and under each fork its child branches.
  drawBranches() {
    const shown = this.asOf !== null && this.replayed ? this.replayed : this.snapshot;
    const branches = shown.branches || [];
    const tasks = new Map((shown.tasks || []).map((t) => [t.id, t]));
    const forks = new Map();  // parent branch → Map(fork task → children)
    for (const b of branches) {
      if (!b.parent) continue;
      if (!forks.has(b.parent)) forks.set(b.parent, new Map());
      const byFork = forks.get(b.parent);
      if (!byFork.has(b.fork_task)) byFork.set(b.fork_task, []);
      byFork.get(b.fork_task).push(b);
    }
    const branchItem = (b) => h('li', {'data-branch': b.id},
      h('code', {}, b.id), ' ', badge(b.status),
      b.item !== null && b.item !== undefined ? h('span', {class: 'muted'}, ` · item ${json(b.item)}`) : '',
      b.current_step ? h('span', {class: 'muted'}, ` · at ${b.current_step}`) : '',
      b.error ? h('span', {class: 'error'}, ` · ${typeof b.error === 'string' ? b.error : json(b.error)}`) : '',
      forkList(b.id));
    const forkList = (branchId) => {
      const byFork = forks.get(branchId);
      if (!byFork) return null;
      return h('ul', {class: 'tree'}, [...byFork.entries()].map(([forkId, children]) => {
        const task = tasks.get(forkId) || {};
        const step = this.findStep(task.step || forkId) || {};
        const join = step.join === undefined ? 'all' : typeof step.join === 'string' ? step.join : `at_least ${step.join.at_least}`;
        return h('li', {class: 'fork', 'data-fork': forkId, 'data-join': join},
          h('span', {class: 'fork-label'}, 'fork ', h('code', {}, forkId)),
          h('span', {class: 'muted'}, ` ${step.kind || 'fork'} · join ${join} · verdict `),
          badge(task.status || 'unknown'),
          h('span', {class: 'muted'}, ` · ${children.filter((c) => c.status === 'completed').length} of ${children.length} branches completed`),
          h('ul', {class: 'tree'}, children.map(branchItem)));
      }));
    };
    const roots = branches.filter((b) => !b.parent);
    this.branchesBox.replaceChildren(roots.length ? h('ul', {class: 'tree'}, roots.map(branchItem))
                                                  : h('p', {class: 'muted'}, 'no branches'));
  }

  drawTimeline() {
    if (!this.snapshot || !this.events.length) return;
    const s = this.snapshot;
    const events = this.asOf !== null ? this.events.filter((e) => e.seq <= this.asOf) : this.events;
    const model = buildTimeline(events);
    const startMs = timeMs(this.events[0].time);
    const moving = !TERMINAL.has(s.status) && this.asOf === null;
    let endMs;
    if (this.asOf !== null) endMs = timeMs(events[events.length - 1].time);
    else endMs = s.ended_at ? Math.max(timeMs(s.ended_at), timeMs(this.events[this.events.length - 1].time)) : Date.now();
    // Measured once (and on resize): reading a width after the page changed
    // would lay out the whole page (thousands of event rows) again.
    if (!this.timelineWidth) this.timelineWidth = renderTimelineWidth(this.timeline);
    this.timeline.replaceChildren(renderTimeline(model, startMs, endMs, moving ? endMs : null,
                                                this.timelineWidth));
    if (this.asOf !== null) {
      this.asOfBanner.hidden = false;
      this.asOfBanner.replaceChildren(
        `As of seq ${this.asOf} of ${this.events[this.events.length - 1].seq}: tasks and branches replayed from the log up to that event (keel replay --to), the timeline drawn from it. `,
        h('button', {id: 'back-to-now', onclick: () => this.setAsOf(null)}, 'back to now'));
    } else {
      this.asOfBanner.hidden = true;
    }
  }

  // The chain's audit of this stream (as `keel verify ID`), again whenever
  // the status changes.
  async verify(status) {
    this.verifiedStatus = status;
    const box = document.getElementById('verify');
    try {
      const v = await getJson(`/v1/processes/${encodeURIComponent(this.id)}/verify`);
      if (this.stopped) return;
      box.className = `verify ${v.ok ? 'ok' : 'refused'}`;
      box.dataset.ok = v.ok;
      box.textContent = v.ok ? `chain verified ✓ (as of ${status})`
                             : `verify found ${v.problems.length} problem(s): ${v.problems.join('; ')}`;
    } catch (e) {
      box.textContent = `verify: ${e.message}`;
    }
  }

  async setAsOf(seq) {
    if (seq !== null) {
      try {
        this.replayed = await getJson(`/v1/processes/${encodeURIComponent(this.id)}/replay?to=${seq}`);
      } catch (e) {
        this.message.textContent = e.message;
        return;
      }
    }
    this.asOf = seq;
    history.replaceState(null, '', `#/p/${encodeURIComponent(this.id)}` + (seq !== null ? `?seq=${seq}` : ''));
    this.eventRows.querySelectorAll('tr').forEach((tr) => tr.classList.toggle('after', seq !== null && Number(tr.dataset.seq) > seq));
    this.drawTasks();
    this.drawTimeline();
    if (seq !== null) document.getElementById('timeline-section').scrollIntoView({behavior: 'smooth'});
  }

  appendEventRows(events) {
    const frag = document.createDocumentFragment();
    for (const e of events) {
      const data = json(e.data);
      const cell = h('td', {class: 'data', title: 'click to expand'}, data.length > 140 ? data.slice(0, 140) + '…' : data);
      cell.addEventListener('click', () => {
        if (cell.classList.toggle('open')) cell.replaceChildren(h('pre', {}, pretty(e.data)));
        else cell.replaceChildren(data.length > 140 ? data.slice(0, 140) + '…' : data);
      });
      frag.append(h('tr', {'data-seq': e.seq, 'data-type': e.type, class: this.asOf !== null && e.seq > this.asOf ? 'after' : null},
        h('td', {}, h('a', {href: '#', class: 'seq', title: 'the run as of this event',
                            onclick: (ev) => { ev.preventDefault(); this.setAsOf(e.seq); }}, e.seq)),
        h('td', {class: 'time'}, fmtTime(e.time)),
        h('td', {class: 'type'}, e.type),
        h('td', {}, h('code', {}, e.entity)),
        h('td', {}, e.actor),
        cell,
        h('td', {}, h('code', {class: 'hash', 'data-hash': e.hash, title: e.hash}, e.hash.slice(0, 12)))));
    }
    this.eventRows.append(frag);
  }

  drawDefinition() {
    if (this.definitionBox.childElementCount) return;
    const d = this.definition || {};
    this.definitionBox.replaceChildren(
      h('p', {}, 'As stored under hash ', h('code', {}, this.snapshot.definition_hash || '—'),
        ' (the canonical form of the file: durations in ms, defaults filled in).'),
      d.definition ? h('pre', {class: 'json definition', id: 'definition-json'}, pretty(d.definition))
                   : h('p', {class: 'refused'}, d.error || 'no definition'));
  }
}

// ---------------------------------------------------------------- the node

const CHARTS = [
  {id: 'processes_live', title: 'processes live', value: (m) => pick(m, 'keel_processes_live')},
  {id: 'tasks_running', title: 'tasks running', value: (m) => pick(m, 'keel_tasks_running')},
  {id: 'timers_pending', title: 'timers pending', value: (m) => pick(m, 'keel_timers_pending')},
  {id: 'events_rate', title: 'events appended / s', rate: (m) => pick(m, 'keel_events_appended_total')},
  {id: 'requests_rate', title: 'HTTP requests / s', rate: (m) => pick(m, 'keel_http_requests_total')},
  {id: 'append_latency', title: 'mean append latency (ms)',
   ratio: (m) => [pick(m, 'keel_append_latency_seconds_sum') * 1000, pick(m, 'keel_append_latency_seconds_count')]},
];
const pick = (metrics, name) => {
  const m = metrics.find((x) => x.name === name && !Object.keys(x.labels).length);
  return m ? m.value : 0;
};
const HISTORY_MS = 5 * 60 * 1000;
const nodeHistory = {points: [], last: null};  // kept across visits of the page

class NodePage {
  constructor() {
    this.health = h('dl', {class: 'header', id: 'health'});
    this.statuses = h('div', {class: 'counts', id: 'node-counts'});
    this.charts = h('div', {class: 'charts', id: 'charts'});
    main().replaceChildren(h('h1', {}, 'Node'), this.health,
      h('h2', {}, 'Processes by status'), this.statuses,
      h('h2', {}, 'The last minutes'), h('p', {class: 'muted'}, 'From /v1/metrics, every 2 s while this page is open (up to five minutes).'),
      this.charts);
    this.timer = setInterval(() => this.poll(), 2000);
    this.poll();
  }

  stop() { clearInterval(this.timer); }

  async poll() {
    try {
      const [health, text] = await Promise.all([getJson('/v1/health'), getText('/v1/metrics')]);
      setLive(true, 'live');
      const metrics = parseMetrics(text);
      const now = Date.now();
      const point = {at: now};
      for (const c of CHARTS) {
        if (c.value) point[c.id] = c.value(metrics);
        if (c.rate || c.ratio) {
          const raw = c.rate ? c.rate(metrics) : c.ratio(metrics);
          const last = nodeHistory.last ? nodeHistory.last[c.id] : undefined;
          if (last !== undefined) {
            if (c.rate) point[c.id] = Math.max(0, (raw - last) / ((now - nodeHistory.last.at) / 1000));
            else point[c.id] = raw[1] > last[1] ? (raw[0] - last[0]) / (raw[1] - last[1]) : 0;
          }
          point['raw_' + c.id] = raw;
        }
      }
      nodeHistory.last = {at: now};
      for (const c of CHARTS) if (c.rate || c.ratio) nodeHistory.last[c.id] = point['raw_' + c.id];
      nodeHistory.points.push(point);
      while (nodeHistory.points.length && nodeHistory.points[0].at < now - HISTORY_MS) nodeHistory.points.shift();
      this.draw(health, metrics);
    } catch (e) {
      console.warn('node page:', e);
      setLive(false, 'node unreachable');
    }
  }

  draw(health, metrics) {
    this.health.replaceChildren(...Object.entries(health).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {'data-field': k}, String(v))]));
    this.statuses.replaceChildren(...metrics.filter((m) => m.name === 'keel_processes').map((m) =>
      h('a', {href: '#/?status=' + m.labels.status, class: `count st-${m.labels.status}`}, h('b', {}, m.value), ' ' + m.labels.status)));
    const pts = nodeHistory.points;
    const now = Date.now();
    this.charts.replaceChildren(...CHARTS.map((c) => {
      const values = pts.filter((p) => p[c.id] !== undefined).map((p) => [p.at, p[c.id]]);
      const w = 260, ht = 70;
      const max = Math.max(1e-9, ...values.map((v) => v[1]));
      // The window grows from a minute to five as samples gather.
      const windowMs = Math.min(HISTORY_MS, Math.max(60000, now - (pts.length ? pts[0].at : now)));
      const px = (at) => ((at - (now - windowMs)) / windowMs) * w;
      const py = (v) => ht - 4 - (v / max) * (ht - 12);
      const chart = svg('svg', {width: w, height: ht, class: 'chart', 'data-chart': c.id},
        svg('line', {x1: 0, x2: w, y1: ht - 4, y2: ht - 4, class: 'grid'}),
        values.length > 1 ? svg('polyline', {points: values.map(([at, v]) => `${px(at).toFixed(1)},${py(v).toFixed(1)}`).join(' ')}) : null,
        svg('text', {x: 4, y: 11, class: 'tick'}, `max ${max < 1e-6 ? 0 : +max.toPrecision(3)}`));
      const current = values.length ? values[values.length - 1][1] : null;
      return h('figure', {class: 'chart-box'}, h('figcaption', {}, c.title, ': ',
        h('b', {}, current === null ? '…' : +current.toPrecision(3))), chart);
    }));
  }
}

// ---------------------------------------------------------------- start

(function start() {
  const token = tokenInput();
  // Kept for this tab only (sessionStorage), never in a cookie.
  token.value = sessionStorage.getItem('keel.token') || '';
  token.addEventListener('input', () => {
    sessionStorage.setItem('keel.token', token.value);
    token.parentElement.classList.remove('wanted');
  });
  getJson('/v1/health').then((hl) => {
    document.getElementById('node-version').textContent = `keel ${hl.version} · ${hl.address}`;
  }).catch(() => {});
  window.addEventListener('hashchange', route);
  route();
})();
