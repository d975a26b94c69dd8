import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readMetrics } from '../src/train/metrics.js';
import { claimNewRunFolder, lockRunFolder } from '../src/train/run-folder.js';
import { startRun, train } from '../src/train/run.js';
import { loadConfig } from '../src/config/load.js';
import { finalWeights, sameBits, tinyConfig } from './helpers/run.js';

// One group (no teachers to start) is enough for what a folder holds.
const settings = ['groups=1', 'steps=4', 'checkpoint.every=4', 'eval.every=4', 'eval.examples=8'];

t.test('a run folder held by a live process is refused, naming its pid; a stale lock is taken over', async (t) => {
  const dir = t.testdir();
  // The test's parent process is alive for as long as the test runs: a lock in its name is held.
  writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-12-03T00:00:00Z' }));
  t.throws(() => lockRunFolder(dir), { name: 'RunLockedError', message: new RegExp(`in use by process ${process.ppid} on ${hostname()}`) });
  // A process that has exited holds nothing.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid: gone, host: hostname(), since: '2026-12-03T00:00:00Z' }));
  const lock = lockRunFolder(dir);
  t.equal(JSON.parse(readFileSync(lock.file, 'utf8')).pid, process.pid, 'the stale lock is ours now');
  t.throws(() => lockRunFolder(dir), { name: 'RunLockedError', message: new RegExp(`process ${process.pid}`) }, 'a second claim in this process is refused too');
  lock.release();
  t.notOk(existsSync(lock.file), 'released');
  // Another machine's lock cannot be checked: it stands, and the message says what to do if its process is gone.
  writeFileSync(join(dir, 'run.lock'), JSON.stringify({ pid: 1, host: 'elsewhere', since: '2026-12-03T00:00:00Z' }));
  t.throws(() => lockRunFolder(dir), /in use by process 1 on elsewhere .*delete the lock file/);
});

t.test('a run folder is one run: a second process, a new run over it, and a resume of another model are refused', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'same', settings);
  const first = await train({ config });
  const saved = readFileSync(join(first.runDir, 'config.json'), 'utf8');
  const resumeWith = (set: string[]) => loadConfig({ preset: join(first.runDir, 'config.json'), set });

  // A resume may not change the model's shape, the group count or the data: refused by key, with nothing written.
  await t.rejects(train({ config: resumeWith(['groups=3']), resume: first.runDir }), /cannot resume .*: groups 1 -> 3/);
  await t.rejects(train({ config: resumeWith(['model.hidden=64', 'corpus.vocabSize=512']), resume: first.runDir }), /corpus\.vocabSize 256 -> 512, model\.hidden 32 -> 64/);
  t.equal(readFileSync(join(first.runDir, 'config.json'), 'utf8'), saved, 'config.json is untouched by refused resumes');
  t.notOk(readMetrics(join(first.runDir, 'metrics.jsonl')).some((e) => e.type === 'error'), "a refused resume writes nothing into the run's log");
  // A finished run has nothing to resume at its own length: say how to train on, never count steps backwards.
  await t.rejects(train({ config: resumeWith([]), resume: first.runDir }), /its checkpoints are of step 4, and the run trains 4 steps \(it has finished\); resume with --set steps=N for N above 4/);

  // While a resume trains there, a second process is refused at once. Keys that change neither shape nor data may
  // change, and are saved once the resume has started.
  const running = startRun({ config: resumeWith(['steps=12', 'optim.lr=0.02']), resume: first.runDir });
  await t.rejects(train({ config, resume: first.runDir }), { name: 'RunLockedError', message: new RegExp(`in use by process ${process.pid}`) });
  t.equal((await running.done).steps, 12);
  const now = JSON.parse(readFileSync(join(first.runDir, 'config.json'), 'utf8'));
  t.same([now.steps, now.optim.lr], [12, 0.02]);

  // A new run of the same name would mix two runs' checkpoints and logs: refused, unless asked to overwrite.
  await t.rejects(train({ config }), { name: 'RunError', message: /already holds a run \(checkpoints in lmdb:.*\): resume it .*--overwrite/ });
  const before = await finalWeights(first.runDir, config);
  const again = await train({ config: { ...config, seed: 5 }, overwrite: true });
  const starts = readMetrics(join(again.runDir, 'metrics.jsonl')).filter((e) => e.type === 'start');
  t.equal(starts.length, 1, 'the overwritten folder holds only the new run');
  t.equal(JSON.parse(readFileSync(join(again.runDir, 'config.json'), 'utf8')).seed, 5, 'and its config');
  const after = await finalWeights(again.runDir, config);
  t.notOk(sameBits(after[0], before[0]), 'and its checkpoints');
});

t.test('a start that fails leaves its record in the folder, and the folder is free to start again', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'failed', settings);
  const empty = join(dir, 'not-a-corpus');
  mkdirSync(empty);
  const broken = { ...config, corpus: { ...(config as unknown as { corpus: object }).corpus, path: empty } } as typeof config;
  await t.rejects(train({ config: broken }), /not a codistill corpus store/);
  const log = readMetrics(join(dir, 'failed', 'metrics.jsonl'));
  t.same(log.map((e) => e.type), ['error'], 'the error is the log');
  t.match(log[0].type === 'error' && log[0].message, new RegExp(empty));
  t.ok(existsSync(join(dir, 'failed', 'config.json')), 'beside the config it was started with');
  t.notOk(existsSync(join(dir, 'failed', 'run.lock')), 'and the lock is released');
  await t.resolves(claimNewRunFolder(config, join(dir, 'failed'), false), 'a new run may start there: it holds no checkpoints and no steps');
});
