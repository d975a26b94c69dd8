import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createService, type Service } from '../src/serve/server.js';
import { loadServeOptions } from '../src/serve/options.js';
import { openSnapshotStore } from '../src/store/index.js';
import { readMetrics } from '../src/train/metrics.js';
import { fixtureCorpus } from './helpers/run.js';
import { sseMessages, type SseMessage } from './helpers/sse.js';

const TOKEN = 'serve-test-token-0123456789';
const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));

interface Reply {
  status: number;
  body: Record<string, unknown> & { message?: string };
  text: string;
}

function client(base: string) {
  return async (method: string, path: string, body?: unknown, { token = TOKEN as string | null, raw = undefined as string | undefined } = {}): Promise<Reply> => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON (the Prometheus text, a file)
    }
    return { status: res.status, body: parsed, text };
  };
}

/** Reads a run's event stream until `until` says stop (or the stream ends); returns what it read. */
async function readEvents(url: string, until: (m: SseMessage) => boolean, headers: Record<string, string> = {}): Promise<SseMessage[]> {
  const seen: SseMessage[] = [];
  for await (const m of sseMessages(url, headers)) {
    seen.push(m);
    if (until(m)) break;
  }
  return seen;
}

const tinyRun = async (name: string, steps: number) => ({
  preset: 'tiny',
  set: [`corpus.path=${await fixtureCorpus()}`, 'backend=wasm', `steps=${steps}`, 'eval.every=5', 'checkpoint.every=5'],
  name,
});

t.test('the service: start, watch, stop, predict, resume a run; bad requests get 4xx answers that name the problem', async (t) => {
  const dir = t.testdir();
  const results = join(dir, 'results', 'churn', 'quick');
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, 'report.md'), '# Churn\n\nThe codistilled models change less.\n');
  writeFileSync(join(results, 'churn.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
  writeFileSync(join(results, 'churn.csv'), 'arm,churn\nsingle,0.06\n');
  const service: Service = createService({ ...loadServeOptions(undefined, { port: 0, runs: join(dir, 'runs'), results: join(dir, 'results'), token: TOKEN }), bodyLimit: 4096 });
  t.teardown(() => service.close());
  const base = await service.listen();
  t.match(base, /^http:\/\/127\.0\.0\.1:\d+$/, 'it listens on loopback by default');
  const api = client(base);

  // Requests that change something need the token.
  const noToken = await api('POST', '/api/runs', await tinyRun('a', 20), { token: null });
  t.equal(noToken.status, 401);
  t.match(noToken.body.message, /send Authorization: Bearer <token>/);
  const wrong = await api('POST', '/api/runs', await tinyRun('a', 20), { token: 'not-the-token-at-all' });
  t.equal(wrong.status, 401);
  t.equal(wrong.body.message, 'the bearer token is wrong');
  t.equal((await api('POST', '/api/runs/a/stop', undefined, { token: null })).status, 401, 'stop needs it too');

  // Bodies the service refuses, each with a message that names what is wrong.
  const big = await api('POST', '/api/runs', { preset: 'tiny', set: ['x'.repeat(5000)] });
  t.equal(big.status, 413);
  t.match(big.body.message, /larger than the service's limit of 4096 bytes/);
  const notJson = await api('POST', '/api/runs', undefined, { raw: '{"preset": "tiny",' });
  t.equal(notJson.status, 400);
  t.match(notJson.body.message, /the body is not valid JSON/);
  const unknownKey = await api('POST', '/api/runs', { ...(await tinyRun('b', 20)), set: [...(await tinyRun('b', 20)).set, 'optim.learningRate=0.1'] });
  t.equal(unknownKey.status, 400);
  t.match(unknownKey.body.message, /optim\.learningRate/, 'a config key the schema does not know is named');
  const wrongType = await api('POST', '/api/runs', { preset: 'tiny', config: { steps: 'many' } });
  t.equal(wrongType.status, 400);
  t.match(wrongType.body.message, /steps/);
  const badField = await api('POST', '/api/runs', { preset: 'tiny', sett: [] });
  t.equal(badField.status, 400);
  t.match(badField.body.message, /sett/, 'an unknown request field is named');
  const pathPreset = await api('POST', '/api/runs', { preset: '../../etc/passwd' });
  t.equal(pathPreset.status, 400);
  t.match(pathPreset.body.message, /a preset is a name from config\//);
  t.equal((await api('GET', '/api/runs/nothing-here')).status, 404);
  t.match((await api('GET', '/api/runs/nothing-here')).body.message, /no run "nothing-here"/);
  t.equal((await api('POST', '/api/runs/nothing-here/stop')).status, 404);
  t.equal((await api('GET', '/api/nowhere')).status, 404);
  t.match((await api('GET', '/api/nowhere')).body.message, /no route GET \/api\/nowhere/);

  // A run, watched as it trains.
  const started = await api('POST', '/api/runs', await tinyRun('watched', 400));
  t.equal(started.status, 201, started.text);
  t.match(started.body, { id: 'watched', state: 'running', live: true, groups: 2, steps: 400 });
  t.equal((await api('POST', '/api/runs', await tinyRun('watched', 20))).status, 409, 'a name in use is refused');
  const events = `${base}/api/runs/watched/events`;
  const early = await readEvents(events, (m) => m.event === 'eval' && (m.data as { step: number }).step >= 5);
  t.equal(early[0].event, 'start', 'the stream starts with the run');
  t.same(early.map((m) => Number(m.id)), early.map((_, i) => i), 'events are numbered from 0');
  t.ok(early.some((m) => m.event === 'step') && early.some((m) => m.event === 'eval'), 'steps and evaluations arrive live');

  const stopped = await api('POST', '/api/runs/watched/stop');
  t.equal(stopped.status, 200, stopped.text);
  t.match(stopped.body, { id: 'watched', stopped: true });
  const at = stopped.body.steps as number;
  t.ok(at >= 5 && at < 400, `it stopped early, at step ${at}`);
  t.equal(stopped.body.resumesAt, at, 'and resumes from that step');
  t.match((await api('GET', '/api/runs/watched')).body, { state: 'stopped', live: false, step: at });
  t.equal((await api('POST', '/api/runs/watched/stop')).status, 409, 'a run that is not running cannot be stopped');

  // Last-Event-ID: a client that reconnects gets exactly what it missed, then the end of the stream.
  const all = await readEvents(events, () => false);
  t.equal(all.at(-1)?.event, 'end', 'a stream of an ended run ends with "end"');
  const history = all.slice(0, -1);
  t.equal(history.at(-1)?.event, 'stopped');
  const replay = await readEvents(events, () => false, { 'last-event-id': '9' });
  t.same(replay.slice(0, -1).map((m) => m.id), history.slice(10).map((m) => m.id), 'replay starts after the last id seen');
  const metrics = await api('GET', '/api/runs/watched/metrics?type=eval');
  const evals = JSON.parse(metrics.text) as { id: number; type: string; step: number }[];
  t.ok(evals.length >= 1 && evals.every((e) => e.type === 'eval'), 'the metrics history, filtered by type');
  t.same(evals.map((e) => e.id), history.filter((m) => m.event === 'eval').map((m) => Number(m.id)), 'with the same ids as the stream');

  // Predictions from the newest snapshot and from a named one.
  const newest = await api('POST', '/api/runs/watched/predict', { input: 'The state of the', topK: 3 }, { token: null });
  t.equal(newest.status, 200, newest.text);
  t.equal(newest.body.step, at, 'the newest checkpoint every group has');
  t.same(newest.body.groups, [0, 1], 'the ensemble by default');
  const next = (newest.body.prediction as { next: { token: string; p: number }[] }).next;
  t.equal(next.length, 3, 'the 3 most likely next tokens');
  const before = Math.max(...history.map((m) => m.data as { type: string; step: number }).filter((e) => e.type === 'checkpoint' && e.step < at).map((e) => e.step));
  const named = await api('POST', '/api/runs/watched/predict', { input: 'The ', step: before, groups: [1] });
  t.match(named.body, { step: before, groups: [1] }, 'the checkpoint before, one group');
  const missing = await api('POST', '/api/runs/watched/predict', { input: 'The ', step: 7 });
  t.equal(missing.status, 404);
  t.match(missing.body.message, /no checkpoint at step 7 \(there are: /, 'an unknown snapshot names the steps there are');
  const badGroup = await api('POST', '/api/runs/watched/predict', { input: 'The ', groups: [5] });
  t.equal(badGroup.status, 400);
  t.match(badGroup.body.message, /groups: 5 is not a group of the run/);
  t.equal((await api('POST', '/api/runs/watched/predict', {})).status, 400, 'an input is required');

  // Resume through the API: it continues from the checkpoint and its events continue the numbering.
  const resumed = await api('POST', '/api/runs/watched/resume', { set: [`steps=${at + 5}`] });
  t.equal(resumed.status, 201, resumed.text);
  const rest = await readEvents(events, () => false, { 'last-event-id': String(history.length - 1) });
  t.equal(rest[0].id, String(history.length), 'the numbering goes on');
  t.match(rest[0].data, { type: 'start', fromStep: at });
  t.match(rest.at(-2)?.data, { type: 'done', step: at + 5 });
  t.match((await api('GET', '/api/runs/watched')).body, { state: 'finished', step: at + 5 });
  t.equal((await api('POST', '/api/runs/watched/resume', {})).status, 409, 'a finished run has nothing to resume');
  t.match((await api('GET', '/api/runs')).body, {}, 'the list answers');
  const list = JSON.parse((await api('GET', '/api/runs')).text) as { id: string }[];
  t.same(list.map((r) => r.id), ['watched']);

  // Prometheus metrics, reports, the dashboard.
  const prom = (await api('GET', '/metrics')).text;
  t.match(prom, new RegExp(`^codistill_step\\{run="watched",group="0"\\} ${at + 5}$`, "m"));
  t.match(prom, /^codistill_validation_loss\{run="watched",model="ensemble"\} \d/m);
  t.match(prom, /^codistill_predict_seconds_count\{run="watched"\} [1-9]/m);
  t.match(prom, /^codistill_http_requests_total\{method="POST",route="\/api\/runs",status="401"\} 2$/m);
  const reports = JSON.parse((await api('GET', '/api/reports')).text) as { experiment: string; name: string; plots: string[] }[];
  t.match(reports, [{ experiment: 'churn', name: 'quick', plots: ['churn.svg'], tables: ['churn.csv'] }]);
  t.match((await api('GET', '/api/reports/churn/quick')).body.markdown, /change less/);
  const svg = await fetch(`${base}/api/reports/churn/quick/files/churn.svg`);
  t.equal(svg.headers.get('content-type'), 'image/svg+xml');
  t.equal((await api('GET', '/api/reports/churn/quick/files/..%2Frun.json')).status, 404, 'no paths out of the report folder');
  t.equal((await api('GET', '/api/reports/churn/full')).status, 404);
  const page = await fetch(`${base}/`);
  t.match(page.headers.get('content-type'), /text\/html/);
  t.match(await page.text(), /uPlot/, 'the dashboard page');
  t.match((await api('GET', '/api/health')).body, { ok: true, live: 0 });
});

t.test('serve options: unknown keys and wrong types are refused, naming the file and key', async (t) => {
  const dir = t.testdir({ 'serve.json': JSON.stringify({ port: 'eighty', colour: 'blue' }) });
  t.throws(() => loadServeOptions(join(dir, 'serve.json')), /serve\.json: port: .*\n.*serve\.json: .*colour/);
  t.throws(() => loadServeOptions(join(dir, 'missing.json')), /missing\.json: no such serve config file/);
  t.match(loadServeOptions(undefined, { port: 0 }), { host: '127.0.0.1', port: 0, runs: 'runs' });
});

t.test('codistill serve: SIGTERM checkpoints the live run and exits cleanly; the run resumes', async (t) => {
  const dir = t.testdir();
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--runs', join(dir, 'runs'), '--results', join(dir, 'results')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CODISTILL_TOKEN: TOKEN },
  });
  const ended = new Promise<number | null>((resolve) => child.on('exit', resolve));
  let err = '';
  child.stderr.setEncoding('utf8');
  const base = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: string) => {
      err += d;
      const m = /codistill serve: (http:\/\/\S+) /.exec(err);
      if (m) resolve(m[1]);
    });
    void ended.then(() => reject(new Error(`serve exited: ${err}`)));
  });
  t.notMatch(err, /Bearer/, 'a token from the environment is not printed');
  const api = client(base);
  t.equal((await api('POST', '/api/runs', await tinyRun('served', 400))).status, 201);
  await readEvents(`${base}/api/runs/served/events`, (m) => m.event === 'step' && (m.data as { step: number }).step >= 3);
  child.kill('SIGTERM');
  t.equal(await ended, 0, 'the service exited normally');
  t.match(err, /SIGTERM: checkpointing the live runs/);
  const log = readMetrics(join(dir, 'runs', 'served', 'metrics.jsonl'));
  const last = log.at(-1);
  t.equal(last?.type, 'stopped', 'the run log ends in "stopped"');
  const store = openSnapshotStore(join(dir, 'runs', 'served', 'checkpoints'));
  t.equal(await store.latestCommonStep(2), (last as { step: number }).step, 'every group has a checkpoint of the step it stopped at');
  await store.close();
  t.match(JSON.parse(readFileSync(join(dir, 'runs', 'served', 'config.json'), 'utf8')), { steps: 400 });
});
