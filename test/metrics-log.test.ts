/**
 * The metrics log survives a full disk: a write that finds no room fails with a clear MetricsLogError (no unhandled
 * 'error' event), the torn line it leaves is read past, and a resumed run's events start on a line of their own.
 * The full disk is a real one: a 64 KiB tmpfs mounted in a private mount namespace (`unshare -rm`), visible only to
 * the child process that writes to it.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RunEvent, StepEvent } from '../src/train/events.js';
import { appendMetrics, MetricsLogError, readMetrics } from '../src/train/metrics.js';

const metricsModule = pathToFileURL(fileURLToPath(new URL('../src/train/metrics.ts', import.meta.url))).href;

const step = (n: number): StepEvent => ({
  type: 'step',
  group: 0,
  step: n,
  loss: 1.5,
  taskLoss: 1.25,
  distillLoss: 0.25,
  alpha: 0.5,
  lr: 0.01,
  gradNorm: 2,
  positions: 64,
  ms: 10,
  computeMs: 8,
  reduceMs: 1,
  teacherWaitMs: 0,
  time: 1_700_000_000_000 + n,
});
const line = (e: RunEvent): string => `${JSON.stringify(e)}\n`;
const steps = (events: RunEvent[]): number[] => events.map((e) => (e.type === 'step' ? e.step : -1));

t.test('a torn last line is ignored and the events before it are read', async (t) => {
  const file = join(t.testdir(), 'metrics.jsonl');
  writeFileSync(file, line(step(1)) + line(step(2)) + line(step(3)).slice(0, 40));
  t.same(steps(readMetrics(file)), [1, 2]);
  writeFileSync(file, line(step(1)) + line(step(2)).slice(0, 40) + '\n');
  t.same(steps(readMetrics(file)), [1], 'also when a newline follows it');
});

t.test('appending to a log with a torn last line starts on a new line', async (t) => {
  const file = join(t.testdir(), 'metrics.jsonl');
  writeFileSync(file, line(step(1)) + line(step(2)).slice(0, 40));
  const handed: RunEvent[] = [];
  const log = appendMetrics(file, (e) => handed.push(e));
  for (const n of [3, 4]) log.emit(step(n));
  await log.close();
  t.equal(log.failure, undefined);
  t.same(steps(handed), [3, 4], 'every event is handed on');
  t.same(steps(readMetrics(file)), [1, 3, 4], 'the appended events read back whole, the torn one is skipped');
  t.equal(readFileSync(file, 'utf8').split('\n')[1], line(step(2)).slice(0, 40), 'the torn line is left as it was');

  const again = appendMetrics(file, () => undefined);
  again.emit(step(5));
  await again.close();
  t.notMatch(readFileSync(file, 'utf8'), /\n\n/, 'a log that ends in a newline gets no blank line');
  t.same(steps(readMetrics(file)), [1, 3, 4, 5]);
});

t.test('a complete event glued onto a torn line (older versions) is recovered', async (t) => {
  const file = join(t.testdir(), 'metrics.jsonl');
  const start = { type: 'start', runId: 'r', runDir: 'r', backend: 'cpu', parameters: 10, unit: 'tokens', fromStep: 2, time: 1 };
  writeFileSync(file, line(step(1)) + line(step(2)).slice(0, 40) + JSON.stringify(start) + '\n' + line(step(3)));
  const events = readMetrics(file);
  t.same(events.map((e) => e.type), ['step', 'start', 'step']);
  t.same(events[1], start);
  writeFileSync(file, line(step(1)) + line(step(2)).slice(0, 30) + line(step(3)).slice(0, 50) + line(step(4)));
  t.same(steps(readMetrics(file)), [1, 4], 'behind two torn events too');
  writeFileSync(file, line(step(1)) + line(step(2)).slice(0, 30) + line(step(3)).slice(0, 50));
  t.same(steps(readMetrics(file)), [1], 'a torn event glued onto a torn event is skipped');
});

t.test('a line in the middle that is not a torn event is an error naming file:line', async (t) => {
  const file = join(t.testdir(), 'metrics.jsonl');
  writeFileSync(file, line(step(1)) + '\n' + 'disk quota exceeded\n' + line(step(2)));
  t.throws(() => readMetrics(file), { message: `${file}:3: not a JSON line` });
  writeFileSync(file, line(step(1)) + 'garbage');
  t.throws(() => readMetrics(file), { message: `${file}:2: not a JSON line` }, 'also at the end');
});

t.test('a log that cannot be opened fails once, hands events on, and closes', async (t) => {
  const file = join(t.testdir(), 'no-such-folder', 'metrics.jsonl');
  const errors: MetricsLogError[] = [];
  const handed: RunEvent[] = [];
  const log = appendMetrics(file, (e) => handed.push(e), (e) => errors.push(e));
  log.emit(step(1));
  await new Promise((resolve) => setTimeout(resolve, 20));
  log.emit(step(2));
  await log.close();
  await log.close();
  t.equal(errors.length, 1);
  t.equal(log.failure, errors[0]);
  t.type(log.failure, MetricsLogError);
  t.match(log.failure, { name: 'MetricsLogError', code: 'ENOENT' });
  t.match(log.failure?.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: appending [\\d,]+ bytes of run events failed \\(ENOENT`));
  t.same(steps(handed), [1, 2]);
});

/** Whether this machine gives a child a private tmpfs (root, or user namespaces allowed, on Linux). */
function probeUnshare(): string | false {
  if (process.platform !== 'linux') return 'needs Linux mount namespaces';
  const dir = mkdtempSync(join(tmpdir(), 'metrics-probe-'));
  try {
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=64k none "$0" && df "$0"', dir], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.error) return `unshare is not available (${r.error.message})`;
    return r.status === 0 ? false : `unshare -rm cannot mount a tmpfs here: ${r.stderr.trim() || `status ${r.status}`}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const noUnshare = probeUnshare();

/** Runs in the child, on a 64 KiB tmpfs at `dir`: fill it, log until the disk is full, free it, resume. */
const childScript = (dir: string): string => `
const report = {};
try {
  const { appendMetrics, readMetrics } = await import(${JSON.stringify(metricsModule)});
  const fs = await import('node:fs');
  const dir = ${JSON.stringify(dir)};
  const file = dir + '/run/metrics.jsonl';
  fs.mkdirSync(dir + '/run');
  fs.writeFileSync(dir + '/filler', Buffer.alloc(56 * 1024, 1)); // leaves 8 KiB of the 64
  const step = (n) => ({ type: 'step', group: 0, step: n, loss: 1.5, taskLoss: 1.25, distillLoss: 0.25, alpha: 0.5,
    lr: 0.01, gradNorm: 2, positions: 64, ms: 10, computeMs: 8, reduceMs: 1, teacherWaitMs: 0, time: 1700000000000 + n,
    note: 'x'.repeat(200) });
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const within = (p, ms) => {
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    return Promise.race([p.then(() => true), late]).finally(() => clearTimeout(timer));
  };

  const errors = [];
  let handed = 0;
  const log = appendMetrics(file, () => handed++, (e) => errors.push(e));
  let emitted = 0;
  while (!log.failure && emitted < 10000) {
    log.emit(step(++emitted));
    await tick();
  }
  const sizeAtFailure = fs.statSync(file).size;
  for (let i = 0; i < 5; i++) log.emit(step(++emitted));
  report.emitted = emitted;
  report.handed = handed;
  report.closeResolved = await within(log.close(), 10000);
  report.writtenAfterFailure = fs.statSync(file).size - sizeAtFailure;
  report.onErrorCalls = errors.length;
  report.error = log.failure && { name: log.failure.name, code: log.failure.code, bytes: log.failure.bytes, message: log.failure.message };
  report.sameError = errors[0] === log.failure;
  const raw = fs.readFileSync(file, 'utf8');
  report.tornLine = !raw.endsWith('\\n');

  fs.rmSync(dir + '/filler');
  const resumed = appendMetrics(file, () => undefined, (e) => errors.push(e));
  const after = [];
  for (let n = 100001; n <= 100020; n++) {
    resumed.emit(step(n));
    after.push(n);
  }
  report.resumedCloseResolved = await within(resumed.close(), 10000);
  report.resumedFailure = resumed.failure?.message;
  report.after = after;
  const events = readMetrics(file);
  report.readBack = events.map((e) => e.step);
} catch (e) {
  report.fatal = String(e && e.stack || e);
}
console.log(JSON.stringify(report));
`;

interface ChildReport {
  fatal?: string;
  emitted: number;
  handed: number;
  closeResolved: boolean;
  writtenAfterFailure: number;
  onErrorCalls: number;
  error?: { name: string; code: string; bytes: number; message: string };
  sameError: boolean;
  tornLine: boolean;
  resumedCloseResolved: boolean;
  resumedFailure?: string;
  after: number[];
  readBack: number[];
}

t.test('a real full disk: a clear error, no crash, and a resumed log reads back whole', { skip: noUnshare }, async (t) => {
  const dir = t.testdir();
  const child = spawnSync(
    'unshare',
    [
      '-rm',
      'sh',
      '-c',
      'mount -t tmpfs -o size=64k none "$1" && exec "$2" --import tsx --input-type=module -e "$3"',
      'sh',
      dir,
      process.execPath,
      childScript(dir),
    ],
    { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
  );
  t.equal(child.status, 0, `signal ${child.signal}: ${child.stderr}`);
  const r = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as ChildReport;
  t.equal(r.fatal, undefined, 'nothing throws in the child');
  t.notMatch(child.stderr, /Unhandled|ENOSPC/, 'no unhandled error or warning (onError was given)');
  t.match(r.error, { name: 'MetricsLogError', code: 'ENOSPC' });
  const file = `${dir}/run/metrics.jsonl`;
  t.ok(r.error?.message.startsWith(`${file}: no room left on the device to append `), String(r.error?.message));
  t.match(r.error?.message, /append [\d,]+ bytes of run events \(ENOSPC\); free space and resume the run/);
  t.ok((r.error?.bytes ?? 0) > 0, 'it names the bytes it could not write');
  t.equal(r.error?.message.match(/append ([\d,]+) bytes/)?.[1], r.error?.bytes.toLocaleString('en-US'));
  t.equal(r.onErrorCalls, 1, 'onError fired once');
  t.ok(r.sameError, 'onError got the failure that the log keeps');
  t.ok(r.closeResolved, 'close() resolved after the failure');
  t.equal(r.handed, r.emitted, 'every event was handed on, after the failure too');
  t.equal(r.writtenAfterFailure, 0, 'nothing is written after the failure');
  t.ok(r.resumedCloseResolved);
  t.equal(r.resumedFailure, undefined, 'the log takes writes again once there is room');
  const before = r.readBack.filter((n) => n < 100001);
  t.same(r.readBack.slice(before.length), r.after, 'every event written after the free-up reads back, in order');
  t.same(before, before.map((_, i) => i + 1), 'the events written before the disk filled read back, in order');
  t.ok(before.length > 0 && before.length < r.emitted, `${before.length} of ${r.emitted} events made it (torn: ${r.tornLine})`);
});
