import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startLocalS3 } from '../bench/snapshot-stores.js';
import type { Config } from '../src/config/schema.js';
import type { EvalEvent, RestartEvent, RunEvent, StepEvent } from '../src/train/events.js';
import { readMetrics } from '../src/train/metrics.js';
import { train } from '../src/train/run.js';
import { fixtureCorpus, finalWeights, sameBits, tinyConfig } from './helpers/run.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));

// Sync mode: deterministic, so where the groups run must not change a single bit.
const settings = ['steps=8', 'distill.burnIn=2', 'distill.exchangeEvery=3', 'checkpoint.every=3', 'eval.every=4'];

const steps = (log: RunEvent[]) =>
  log.filter((e): e is StepEvent => e.type === 'step').map((e) => `${e.group}:${e.step}:${e.loss}:${e.staleness}`).sort();
const evals = (log: RunEvent[]) => log.filter((e): e is EvalEvent => e.type === 'eval').map((e) => [e.step, e.losses, e.ensembleLoss]);

async function sameRun(t: Test, a: { runDir: string; config: Config }, b: { runDir: string; config: Config }, what: string) {
  const [wa, wb] = [await finalWeights(a.runDir, a.config), await finalWeights(b.runDir, b.config)];
  t.ok(wa.length === 2 && wa.every((w, g) => sameBits(w, wb[g])), `${what}: the same final weights, bit for bit`);
  const [la, lb] = [readMetrics(join(a.runDir, 'metrics.jsonl')), readMetrics(join(b.runDir, 'metrics.jsonl'))];
  t.same(steps(lb), steps(la), `${what}: the same losses and staleness at every step of both groups, each once`);
  t.same(evals(lb), evals(la), `${what}: the same evaluations`);
}

let reference: Promise<{ runDir: string; config: Config }> | undefined;
/** The run with both groups as threads of this process, the exchange in memory: what every placement must equal. */
function threads() {
  reference ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codistill-placement-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const config = await tinyConfig(dir, 'threads', settings);
    return { runDir: (await train({ config })).runDir, config };
  })();
  return reference;
}

t.test('two groups as two processes equal the same run in one process, through each snapshot store', async (t) => {
  const dir = t.testdir();
  const s3 = await startLocalS3(join(dir, 's3rver'));
  t.teardown(() => s3.close());
  const ref = await threads();
  const stores: [string, string[]][] = [
    ['LMDB in the run folder', []],
    ['a shared directory', [`store.url=file:${join(dir, 'shared')}`]],
    ['S3 (s3rver)', [`store.url=${s3.address('runs/p')}`]],
  ];
  for (const [i, [what, set]] of stores.entries()) {
    const config = await tinyConfig(dir, `process-${i}`, [...settings, 'placement.mode=process', ...set]);
    const summary = await train({ config });
    t.equal(summary.losses.length, 2, `${what}: both groups evaluated`);
    await sameRun(t, ref, { runDir: summary.runDir, config }, what);
  }
});

t.test('a group process killed mid-run is restarted from its checkpoint and the run ends bitwise identical', async (t) => {
  const dir = t.testdir();
  const ref = await threads();
  const config = await tinyConfig(dir, 'killed', [...settings, 'placement.mode=process']);
  const summary = await train({ config, kills: [{ group: 1, atStep: 5 }] });
  const log = readMetrics(join(summary.runDir, 'metrics.jsonl'));
  const restarts = log.filter((e): e is RestartEvent => e.type === 'restart');
  t.same(restarts.map((r) => [r.group, r.attempt, r.reason]), [[1, 1, 'process killed by SIGKILL']], 'one restart of group 1, after the kill');
  t.ok(restarts[0].fromStep === 3 || restarts[0].fromStep === 6, `it continued from a checkpoint (step ${restarts[0].fromStep})`);
  await sameRun(t, ref, { runDir: summary.runDir, config }, 'killed and restarted');
});

t.test('a group process that keeps dying stops the run with a clear error; the other group checkpoints first', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'dies', [...settings, 'placement.mode=process', 'placement.restarts=0']);
  await t.rejects(train({ config, kills: [{ group: 1, atStep: 4 }] }), { name: 'RunError', message: /^group 1's process killed by SIGKILL$/ });
  const log = readMetrics(join(dir, 'dies', 'metrics.jsonl'));
  const lastStep = Math.max(...log.filter((e): e is StepEvent => e.type === 'step' && e.group === 0).map((e) => e.step));
  const checkpoints = log.filter((e) => e.type === 'checkpoint' && e.group === 0).map((e) => (e as { step: number }).step);
  t.equal(checkpoints.at(-1), lastStep, `group 0 wrote a checkpoint of its last step (${lastStep}) before the run stopped`);
  t.notOk(log.some((e) => e.type === 'done'), 'and the run did not claim to be done');
});

t.test('groups started one per process by a launcher (--group, JOB_COMPLETION_INDEX / SLURM_PROCID) train the same run', async (t) => {
  const dir = t.testdir();
  const ref = await threads();
  const shared = `file:${join(dir, 'shared')}`;
  const flags = async (name: string, more: string[] = []) =>
    ['-p', 'tiny', ...[`corpus.path=${await fixtureCorpus()}`, `runDir=${dir}`, `name=${name}`, 'backend=wasm', ...settings, `store.url=${shared}`, ...more].flatMap((s) => ['--set', s])];
  const launch = async (env: NodeJS.ProcessEnv, name: string, more: string[] = []) =>
    run(process.execPath, [cli, 'train', '--group', ...(await flags(name, more))], { env: { ...process.env, ...env } });
  // Two "machines": the Kubernetes index for one, Slurm's for the other; each writes its own run folder.
  const [k8s, slurm] = await Promise.all([launch({ JOB_COMPLETION_INDEX: '0' }, 'pod-0'), launch({ SLURM_PROCID: '1' }, 'task-1')]);
  t.match(k8s.stdout, /^group 0 /m, 'the first process trained group 0');
  t.match(slurm.stdout, /^group 1 /m, 'the second process trained group 1');
  const config = await tinyConfig(dir, 'pod-0', [...settings, `store.url=${shared}`]);
  const weights = await finalWeights(join(dir, 'pod-0'), config);
  const expected = await finalWeights(ref.runDir, ref.config);
  t.ok(weights.every((w, g) => sameBits(w, expected[g])), 'the store holds the same final weights as the run in one process');
  const own = readMetrics(join(dir, 'task-1', 'metrics-group-1.jsonl'));
  t.same(
    steps(own),
    steps(readMetrics(join(ref.runDir, 'metrics.jsonl'))).filter((s) => s.startsWith('1:')),
    "group 1's log has the same steps as group 1 of the run in one process",
  );

  const stderrOf = (p: Promise<unknown>) => p.then(() => 'it succeeded', (e: { stderr: string }) => e.stderr);
  t.match(
    await stderrOf(launch({ JOB_COMPLETION_INDEX: '0' }, 'pod-0b', ['optim.lr=0.5', 'distill.alpha=2'])),
    /another config; differing keys: distill\.alpha, optim\.lr/,
    'a group with another config is refused, naming the keys',
  );
  t.match(await stderrOf(launch({}, 'pod-x')), /--group without an index needs JOB_COMPLETION_INDEX or SLURM_PROCID/);
});
