/*
 * The codistill dashboard: plain browser JavaScript, no build step. It lists the service's runs, draws the selected
 * run's training from its Server-Sent Events with uPlot (the global `uPlot`), stops, resumes and starts runs, and
 * shows experiment reports.
 *
 * Test hooks: each chart's element has data-chart (train | validation | staleness | throughput) and data-points (how
 * many x values it plots now); document.body.dataset.run is the selected run's id and document.body.dataset.stream
 * is 'open' while its event stream is, 'ended' once the run has ended (or the stream was closed).
 */
'use strict';

/** Redraw the charts at most this often: events are batched between redraws (a replayed history is thousands). */
const REDRAW_MS = 250;
/** How often the runs list is asked again. */
const RUNS_EVERY_MS = 5000;
const REPORTS_EVERY_MS = 30000;
const TOKEN_KEY = 'codistill.token';
/** One colour per group (cycled), and the ensemble's. */
const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#db2777', '#0891b2', '#ca8a04', '#4b5563'];
const ENSEMBLE_COLOR = '#111827';
const CHARTS = ['train', 'validation', 'staleness', 'throughput'];

const $ = (id) => document.getElementById(id);

/* ------------------------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/** A number for people: 3 significant digits, thousands as k and millions as M. */
function fmt(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return String(Math.round(v));
  if (a === 0 || Number.isInteger(v)) return String(v);
  return v.toPrecision(3);
}

/** An axis tick: as uPlot would write it (no float noise), thousands as k. */
function tick(v) {
  if (v === null || v === undefined) return '';
  return Math.abs(v) >= 1e4 ? `${+(v / 1e3).toFixed(3)}k` : String(+v.toFixed(6));
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** An element with a class and text (text always as textContent: nothing from the server becomes markup). */
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Writes the status line; kind 'error' shows it in red. */
function say(text, kind = 'info') {
  const s = $('status');
  s.textContent = text;
  s.dataset.kind = kind;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Requests                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

const tokenInput = $('token');
$('token-form').addEventListener('submit', (e) => e.preventDefault());
tokenInput.value = localStorage.getItem(TOKEN_KEY) ?? '';
tokenInput.addEventListener('input', () => localStorage.setItem(TOKEN_KEY, tokenInput.value.trim()));

/**
 * A JSON request to the service. POSTs carry the token. A failure throws an Error whose message is the server's
 * (its replies to bad requests are `{ statusCode, error, message }`).
 */
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    const token = tokenInput.value.trim();
    if (token) headers.authorization = `Bearer ${token}`;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new Error('the service does not answer');
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) throw new Error(json?.message ?? `${res.status} ${res.statusText}`);
  return json;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Data: tables indexed by step                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * Values by step and column (a group, or the ensemble). Groups report the same step at different moments, so a
 * table indexed by step lines them up; a cell not reported (yet) is null, which uPlot draws as a gap or spans.
 * A step seen again (a resumed run redoing steps after its checkpoint) takes the newer value.
 */
class StepTable {
  constructor(columns) {
    this.columns = columns;
    this.rows = new Map();
  }

  set(step, column, value) {
    let row = this.rows.get(step);
    if (!row) this.rows.set(step, (row = new Array(this.columns).fill(null)));
    if (column < this.columns) row[column] = value ?? null;
  }

  /** uPlot's aligned data: [steps ascending, column 0, column 1, ...]. */
  data() {
    const steps = [...this.rows.keys()].sort((a, b) => a - b);
    const out = [steps];
    for (let c = 0; c < this.columns; c++) out.push(steps.map((s) => this.rows.get(s)[c]));
    return out;
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Charts                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

const chartBox = (name) => document.querySelector(`[data-chart="${name}"]`);
const CHART_HEIGHT = 210;

/**
 * A legend value: at the cursor while it is over the chart, else the series' newest value (idx is null then), so
 * that the legend reads as the run's current state.
 */
function legendValue(format) {
  return (u, v, seriesIdx, idx) => {
    if (idx === null || idx === undefined) v = u.data[seriesIdx]?.findLast((x) => x !== null && x !== undefined);
    return v === null || v === undefined ? '–' : format(v);
  };
}

/** The series of one chart: one per group, plus the ensemble on the validation chart. */
function seriesOf(name, groups) {
  const series = [{ label: 'step', value: legendValue(String) }];
  for (let g = 0; g < groups; g++) {
    series.push({
      label: `group ${g}`,
      stroke: COLORS[g % COLORS.length],
      width: 1.5,
      // Staleness is undefined while distillation is off: leave those steps a gap. Elsewhere a missing value is a
      // group not there yet (or not evaluated at that step): join across it.
      spanGaps: name !== 'staleness',
      points: { show: name === 'validation' },
      value: legendValue(fmt),
    });
  }
  if (name === 'validation') {
    series.push({ label: 'ensemble', stroke: ENSEMBLE_COLOR, width: 2, dash: [6, 4], spanGaps: true, points: { show: true }, value: legendValue(fmt) });
  }
  return series;
}

/** A uPlot chart in its container, drawing a StepTable. */
class Chart {
  constructor(name, groups) {
    this.name = name;
    this.box = chartBox(name);
    this.box.replaceChildren();
    this.box.dataset.points = '0';
    const series = seriesOf(name, groups);
    this.plot = new uPlot(
      {
        width: this.width(),
        height: CHART_HEIGHT,
        scales: { x: { time: false } },
        series,
        axes: [
          { stroke: '#6b7280', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e5e7eb' } },
          { stroke: '#6b7280', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e5e7eb' }, size: 52, values: (_u, splits) => splits.map(tick) },
        ],
        cursor: { sync: { key: 'codistill-steps' } },
        legend: { live: true },
      },
      series.map(() => []),
      this.box,
    );
  }

  width() {
    return Math.max(240, Math.floor(this.box.getBoundingClientRect().width));
  }

  draw(table) {
    const data = table.data();
    this.plot.setData(data);
    this.box.dataset.points = String(data[0].length);
  }

  resize() {
    this.plot.setSize({ width: this.width(), height: CHART_HEIGHT });
  }

  destroy() {
    this.plot.destroy();
    this.box.replaceChildren();
    this.box.dataset.points = '0';
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Watching one run                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/**
 * The selected run: its event stream, its tables and charts. Created on selection; `close()` ends the stream and
 * clears the charts. Events from the stream are put into the tables at once and drawn at most every REDRAW_MS.
 */
class Watch {
  constructor(info) {
    this.id = info.id;
    this.info = info;
    this.groups = info.groups;
    this.start = undefined; // the newest `start` event: backend, parameters, unit
    this.lastEval = undefined;
    this.lastCheckpoint = undefined;
    this.reached = new Array(this.groups).fill(0); // each group's newest step
    this.ended = false;
    this.timer = undefined;
    const g = this.groups;
    this.tables = {
      train: new StepTable(g),
      validation: new StepTable(g + 1),
      staleness: new StepTable(g),
      throughput: new StepTable(g),
    };
    this.charts = Object.fromEntries(CHARTS.map((name) => [name, new Chart(name, g)]));
    this.open();
    this.header();
  }

  open() {
    document.body.dataset.stream = 'open';
    // The stream replays the run's whole history, then goes on live; the event names are the event types.
    const es = (this.es = new EventSource(`/api/runs/${encodeURIComponent(this.id)}/events`));
    const on = (type, fn) => es.addEventListener(type, (m) => fn(JSON.parse(m.data)));
    on('start', (e) => this.onStart(e));
    on('step', (e) => this.onStep(e));
    on('eval', (e) => this.onEval(e));
    on('checkpoint', (e) => {
      this.lastCheckpoint = e.step;
      this.schedule();
    });
    on('restart', (e) => say(`run ${this.id}: group ${e.group} restarted from step ${e.fromStep} (attempt ${e.attempt}): ${e.reason}`, 'error'));
    on('warning', (e) => say(`run ${this.id}: ${e.message}`, 'error'));
    on('done', (e) => this.onEnding(e.step));
    on('stopped', (e) => this.onEnding(e.step));
    // The end of the run: data is its info. Close, or the EventSource would reconnect and replay it all again.
    on('end', (info) => this.onEnd(info));
    // 'error' is both a run's error event (a MessageEvent with data) and the EventSource's own connection error.
    es.addEventListener('error', (m) => {
      if (m instanceof MessageEvent && m.data) {
        say(`run ${this.id} failed: ${JSON.parse(m.data).message}`, 'error');
      } else if (es.readyState === EventSource.CLOSED) {
        // The service refused the stream (no such run, or it is shutting down): it will not come back by itself.
        this.ended = true;
        document.body.dataset.stream = 'ended';
        say(`the event stream of run ${this.id} closed`, 'error');
      }
      // Otherwise the browser reconnects by itself, with Last-Event-ID: nothing is lost or drawn twice.
    });
  }

  onStart(e) {
    this.start = e;
    this.reached.fill(e.fromStep);
    $('unit').textContent = `${e.unit} / s`;
    this.schedule();
  }

  onStep(e) {
    const { train, staleness, throughput } = this.tables;
    train.set(e.step, e.group, e.taskLoss);
    staleness.set(e.step, e.group, e.staleness ?? null);
    throughput.set(e.step, e.group, e.ms > 0 ? e.positions / (e.ms / 1000) : null);
    if (e.group < this.reached.length) this.reached[e.group] = e.step;
    this.schedule();
  }

  onEval(e) {
    // When only some groups were evaluated, losses[j] is group groups[j]'s.
    e.losses.forEach((loss, j) => this.tables.validation.set(e.step, e.groups ? e.groups[j] : j, loss));
    this.tables.validation.set(e.step, this.tables.validation.columns - 1, e.ensembleLoss);
    this.lastEval = e;
    this.schedule();
  }

  onEnding(step) {
    this.reached.fill(step);
    this.schedule();
  }

  onEnd(info) {
    this.info = info;
    this.ended = true;
    this.close({ keepCharts: true });
    this.flush(); // draw the last events now, before saying the stream ended
    document.body.dataset.stream = 'ended';
    void refreshRuns();
  }

  /** Redraws within REDRAW_MS, once for however many events come in between. */
  schedule() {
    this.timer ??= setTimeout(() => this.flush(), REDRAW_MS);
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.charts) return;
    for (const name of CHARTS) this.charts[name].draw(this.tables[name]);
    this.header();
    // The run's entry in the runs list follows the stream between the list's refreshes.
    const item = document.querySelector(`#runs li[data-run="${CSS.escape(this.id)}"]`);
    if (item) {
      item.querySelector('.step').textContent = `${this.step()} / ${this.info.steps}`;
      if (this.lastEval) item.querySelector('.loss').textContent = `ensemble ${fmt(this.lastEval.ensembleLoss)}`;
    }
  }

  /** The step every group has reached (as the service counts it). */
  step() {
    return this.start ? Math.min(...this.reached) : this.info.step;
  }

  /** The run's header line: state, step, backend, parameters, newest validation losses. */
  header() {
    $('run-title').textContent = this.id;
    const parts = [];
    const state = this.info.state;
    parts.push(el('span', `badge ${state}`, state));
    parts.push(el('span', '', `step ${this.step()} / ${this.info.steps}`));
    parts.push(el('span', '', this.info.workload));
    if (this.start) {
      parts.push(el('span', '', `${this.start.backend}`));
      parts.push(el('span', '', `${fmt(this.start.parameters)} parameters`));
    }
    if (this.lastCheckpoint !== undefined) parts.push(el('span', '', `checkpoint ${this.lastCheckpoint}`));
    const ev = this.lastEval ?? this.info.lastEval;
    if (ev) {
      const losses = ev.losses.map(fmt).join(' / ');
      parts.push(el('span', '', `validation ${losses}, ensemble ${fmt(ev.ensembleLoss)} (step ${ev.step})`));
    }
    if (this.info.error) parts.push(el('span', 'error', this.info.error));
    $('run-line').replaceChildren(...parts);
  }

  resize() {
    if (this.charts) for (const c of Object.values(this.charts)) c.resize();
  }

  /** Ends the stream; unless keepCharts, clears the charts too. */
  close({ keepCharts = false } = {}) {
    this.es?.close();
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!keepCharts && this.charts) {
      for (const c of Object.values(this.charts)) c.destroy();
      this.charts = undefined;
    }
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Runs list and selection                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

let runs = [];
/** The Watch of the selected run, if any. */
let watch;

/** Selects a run: closes the old stream, clears the charts, opens the new run's stream. */
function select(id) {
  const info = runs.find((r) => r.id === id);
  if (!info) return;
  watch?.close();
  watch = new Watch(info);
  document.body.dataset.run = id;
  $('stop').disabled = false;
  $('resume').disabled = false;
  renderRuns();
}

function renderRuns() {
  const list = $('runs');
  if (!runs.length) {
    list.replaceChildren(el('li', 'empty', 'no runs yet'));
    return;
  }
  list.replaceChildren(
    ...runs.map((r) => {
      const li = el('li', r.id === watch?.id ? 'selected' : '');
      li.dataset.run = r.id;
      li.tabIndex = 0;
      const top = el('div', 'line');
      top.append(el('strong', 'name', r.id), el('span', `badge ${r.state}`, r.state));
      const bottom = el('div', 'line meta');
      bottom.append(el('span', 'step', `${r.step} / ${r.steps}`), el('span', '', r.workload), el('span', 'loss', r.lastEval ? `ensemble ${fmt(r.lastEval.ensembleLoss)}` : ''));
      li.append(top, bottom);
      li.addEventListener('click', () => select(r.id));
      li.addEventListener('keydown', (e) => e.key === 'Enter' && select(r.id));
      return li;
    }),
  );
}

async function refreshRuns() {
  try {
    runs = await api('GET', '/api/runs');
  } catch (err) {
    say(`runs: ${err.message}`, 'error');
    return;
  }
  // Keep the selected run's info current (its state while the stream is quiet, e.g. stopping).
  const mine = watch && runs.find((r) => r.id === watch.id);
  if (mine && !watch.ended) {
    watch.info = mine;
    watch.header();
  }
  // Default selection: the first live run, else the newest (the list comes newest first).
  if (!mine) {
    const pick = runs.find((r) => r.live) ?? runs[0];
    if (pick) return select(pick.id);
  }
  renderRuns();
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Controls: stop, resume, start                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

$('stop').addEventListener('click', async () => {
  if (!watch) return;
  const id = watch.id;
  say(`stopping ${id}: every group checkpoints first…`);
  try {
    const r = await api('POST', `/api/runs/${encodeURIComponent(id)}/stop`, {});
    say(r.stopped ? `stopped ${id} at step ${r.steps}; a resume continues at step ${r.resumesAt}` : `${id} had finished already (step ${r.steps})`);
  } catch (err) {
    say(`stop ${id}: ${err.message}`, 'error');
  }
  void refreshRuns();
});

$('resume').addEventListener('click', async () => {
  if (!watch) return;
  const id = watch.id;
  try {
    await api('POST', `/api/runs/${encodeURIComponent(id)}/resume`, {});
    say(`resumed ${id}`);
    await refreshRuns();
    select(id); // a fresh stream: the history again, then the resumed run live
  } catch (err) {
    say(`resume ${id}: ${err.message}`, 'error');
  }
});

$('start').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const preset = form.elements.preset.value.trim();
  const set = form.elements.set.value.split('\n').map((l) => l.trim()).filter(Boolean);
  const name = form.elements.name.value.trim();
  const body = { set };
  if (preset) body.preset = preset;
  if (name) body.name = name;
  say('starting a run…');
  try {
    const info = await api('POST', '/api/runs', body);
    say(`started ${info.id}`);
    await refreshRuns();
    select(info.id);
  } catch (err) {
    say(`start: ${err.message}`, 'error');
  }
});

/* ------------------------------------------------------------------------------------------------------------ */
/* Reports                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

let reports = [];
let shownReport;
const reportPath = (r) => `/api/reports/${encodeURIComponent(r.experiment)}/${encodeURIComponent(r.name)}`;

function renderReports() {
  const list = $('reports');
  if (!reports.length) {
    list.replaceChildren(el('li', 'empty', 'no reports'));
    return;
  }
  list.replaceChildren(
    ...reports.map((r) => {
      const key = `${r.experiment}/${r.name}`;
      const li = el('li', key === shownReport ? 'selected' : '');
      li.dataset.report = key;
      li.tabIndex = 0;
      const top = el('div', 'line');
      top.append(el('strong', 'name', r.experiment), el('span', 'meta', r.name));
      const bottom = el('div', 'line meta', `${plural(r.plots.length, 'plot')} · ${plural(r.tables.length, 'table')} · ${new Date(r.modified).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })}`);
      li.append(top, bottom);
      li.addEventListener('click', () => showReport(r));
      li.addEventListener('keydown', (e) => e.key === 'Enter' && showReport(r));
      return li;
    }),
  );
}

async function refreshReports() {
  try {
    reports = await api('GET', '/api/reports');
    renderReports();
  } catch (err) {
    say(`reports: ${err.message}`, 'error');
  }
}

/** Shows a report under the charts: its plots as images, links to its other files, its markdown as text. */
async function showReport(r) {
  let full;
  try {
    full = await api('GET', reportPath(r));
  } catch (err) {
    say(`report ${r.experiment}/${r.name}: ${err.message}`, 'error');
    return;
  }
  shownReport = `${r.experiment}/${r.name}`;
  renderReports();
  const fileUrl = (f) => `${reportPath(r)}/files/${encodeURIComponent(f)}`;
  $('report-title').textContent = `${full.experiment} / ${full.name}`;
  $('report-plots').replaceChildren(
    ...full.plots.map((p) => {
      const a = el('a');
      a.href = fileUrl(p);
      a.target = '_blank';
      const img = el('img');
      img.src = fileUrl(p);
      img.alt = p;
      a.append(img);
      return a;
    }),
  );
  const others = full.files.filter((f) => !full.plots.includes(f));
  $('report-files').replaceChildren(
    ...others.map((f) => {
      const a = el('a', '', f);
      a.href = fileUrl(f);
      a.target = '_blank';
      return a;
    }),
  );
  $('report-markdown').textContent = full.markdown;
  $('report').hidden = false;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Start                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

// Charts follow their containers' width.
let resizeTimer;
new ResizeObserver(() => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => watch?.resize(), 100);
}).observe(document.querySelector('.charts'));

void refreshRuns();
void refreshReports();
setInterval(refreshRuns, RUNS_EVERY_MS);
setInterval(refreshReports, REPORTS_EVERY_MS);
