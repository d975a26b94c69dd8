/**
 * Actor faults and numerical faults inside a run: a replica, reader, teacher or evaluator worker that throws or
 * exits is restarted from the group's checkpoint and the run ends bitwise as if it had not happened; one that keeps
 * failing stops the run after `placement.restarts` tries with a checkpoint; a NaN never reaches the weights.
 */
import t from 'tap';
import { join } from 'node:path';
import { DivergenceWatch } from '../src/train/divergence.js';
import type { EvalEvent, RestartEvent, RunEvent, WarningEvent } from '../src/train/events.js';
import { readMetrics } from '../src/train/metrics.js';
import { startRun, train, type TrainOptions } from '../src/train/run.js';
import { loadConfig } from '../src/config/load.js';
import { openSnapshotStore } from '../src/store/index.js';
import { finalWeights, sameBits, tinyConfig } from './helpers/run.js';

// Checkpoints at 4 and 8, exchanges every 2 steps after a burn-in of 2, one evaluation at the end.
const settings = ['steps=8', 'distill.burnIn=2', 'distill.exchangeEvery=2', 'checkpoint.every=4', 'eval.every=4', 'eval.examples=8'];

const referenceDir = t.testdir();
const reference = (async () => {
  const config = await tinyConfig(referenceDir, 'reference', settings);
  const summary = await train({ config });
  return { summary, weights: await finalWeights(summary.runDir, config) };
})();

async function runWith(dir: string, name: string, opts: Omit<TrainOptions, 'config'>, set: string[] = []) {
  const config = await tinyConfig(dir, name, [...settings, ...set]);
  const run = startRun({ config, ...opts });
  const events: RunEvent[] = [];
  run.events$.subscribe((e) => events.push(e));
  const summary = await run.done;
  return { config, summary, events, weights: await finalWeights(summary.runDir, config) };
}

// Faults of different actors can share a run when each group fails once (a restarted group drops the faults meant
// for its first attempt): three runs cover every kind of actor.
const faults: [string, TrainOptions['faults'], TrainOptions['evaluatorFaults']][] = [
  [
    "a replica that throws, another group's teacher that throws, and an evaluator whose worker exits",
    [
      { group: 1, actor: 'replica', atStep: 5, kind: 'throw' },
      { group: 0, actor: 'teacher', atStep: 5, kind: 'throw' },
    ],
    [{ atStep: 4, kind: 'exit' }],
  ],
  ['a replica whose worker exits', [{ group: 0, actor: 'replica', atStep: 6, kind: 'exit' }], undefined],
  ['a reader whose worker exits', [{ group: 1, actor: 'reader', atStep: 6, kind: 'exit' }], undefined],
];

for (const [what, groupFaults, evaluatorFaults] of faults) {
  t.test(`${what}: restarted, and the run ends bitwise identical to one without faults`, async (t) => {
    const ref = await reference;
    const r = await runWith(t.testdir(), 'f', { faults: groupFaults, evaluatorFaults });
    const restarts = r.events.filter((e): e is RestartEvent => e.type === 'restart');
    t.same(
      restarts.map((e) => [e.group, e.fromStep]).sort(),
      (groupFaults ?? []).map((f) => [f.group, 4]).sort(),
      'each failed group restarted once, from its checkpoint at step 4',
    );
    if (evaluatorFaults) {
      const again = r.events.filter((e): e is WarningEvent => e.type === 'warning' && e.kind === 'evaluator-restart');
      t.same(again.map((w) => w.step), [4], 'the evaluation of step 4 ran again on a fresh evaluator');
      t.match(again[0].message, /evaluator: exited \(code 1\); the evaluation of step 4 runs again/);
    }
    t.ok(r.weights.every((w, g) => sameBits(w, ref.weights[g])), 'same final weights, bit for bit');
    t.same(r.summary.losses, ref.summary.losses, 'same final validation losses');
    const log = readMetrics(join(r.summary.runDir, 'metrics.jsonl'));
    const steps = log.filter((e) => e.type === 'step').map((e) => e.type === 'step' && `${e.group}:${e.step}`);
    t.equal(new Set(steps).size, steps.length, 'the steps replayed after a restart are not logged twice');
    t.same(log.filter((e) => e.type === 'eval').map((e) => e.type === 'eval' && e.step), [4, 8], 'each evaluation once');
  });
}

t.test('an actor that keeps failing stops the run after placement.restarts tries, with a checkpoint', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'again', [...settings, 'placement.restarts=2']);
  const run = startRun({ config, faults: [{ group: 1, actor: 'replica', atStep: 6, kind: 'throw', repeat: true }] });
  const restarts: RestartEvent[] = [];
  run.events$.subscribe((e) => e.type === 'restart' && restarts.push(e));
  await t.rejects(run.done, { name: 'RunError', message: /group 1 replica 0: injected fault at step 6 \(after 2 restarts; placement.restarts = 2\)/ });
  t.same(restarts.map((r) => r.attempt), [1, 2]);
  const store = openSnapshotStore(join(dir, 'again', 'checkpoints'));
  t.ok((await store.list(0)).map((h) => h.step).at(-1)! >= 6, 'the healthy group checkpointed where it stopped');
  t.equal(await store.latestCommonStep(2), 4, 'a resume continues from the step both have');
  await store.close();
  const last = readMetrics(join(dir, 'again', 'metrics.jsonl')).at(-1)!;
  t.match(last.type === 'error' && last.message, /injected fault at step 6 \(after 2 restarts/, "the failure is recorded in the run's own log");
});

t.test("with guard.nonFinite = skip a NaN step is skipped, reported, and never reaches the weights", async (t) => {
  const r = await runWith(t.testdir(), 'nan', { faults: [{ group: 0, actor: 'replica', atStep: 5, kind: 'nan' }] }, ['guard.nonFinite=skip']);
  const warnings = r.events.filter((e): e is WarningEvent => e.type === 'warning');
  t.same(warnings.map((w) => [w.kind, w.group, w.step]), [['non-finite', 0, 6]]);
  t.match(warnings[0].message, /group 0 skipped step 6: the loss was NaN/);
  t.ok(r.weights.every((w) => w.every(Number.isFinite)), 'every weight finite');
  t.ok(r.summary.losses.every(Number.isFinite));
  const ref = await reference;
  t.notOk(sameBits(r.weights[0], ref.weights[0]), 'group 0 missed one update');
});

t.test('with guard.nonFinite = rollback a NaN step rolls the group back to its checkpoint', async (t) => {
  const ref = await reference;
  const r = await runWith(t.testdir(), 'rollback', { faults: [{ group: 1, actor: 'replica', atStep: 6, kind: 'nan' }] }, ['guard.nonFinite=rollback']);
  const restarts = r.events.filter((e): e is RestartEvent => e.type === 'restart');
  t.same(restarts.map((e) => [e.group, e.fromStep]), [[1, 4]]);
  t.match(restarts[0].reason, /NaN/);
  t.ok(r.weights.every((w, g) => sameBits(w, ref.weights[g])), 'the replay without the fault ends bitwise identical');
});

t.test('a validation loss far above its best is a warning, and with guard.stopOnDivergence stops the run', async (t) => {
  const config = loadConfig({ preset: 'tiny', set: ['guard.divergence=3'] });
  const warnings: WarningEvent[] = [];
  const watch = new DivergenceWatch(config, (w) => warnings.push(w));
  const ev = (step: number, losses: number[], ensembleLoss: number): EvalEvent => ({ type: 'eval', step, losses, ensembleLoss, positions: 1, time: 0 });
  t.notOk(watch.check(ev(10, [5, 5.2], 4.9)));
  t.notOk(watch.check(ev(20, [4, 4.5], 4)), 'falling losses are fine');
  t.ok(watch.check(ev(30, [66, 4.4], 4.1)), 'group 0 at 66 after a best of 4: diverging');
  t.same(warnings.map((w) => [w.kind, w.group, w.step]), [['divergence', 0, 30]]);
  t.match(warnings[0].message, /group 0's validation loss 66\.000 at step 30 is 16\.5x its best \(4\.000\)/);
  t.ok(watch.check(ev(40, [70, 4.3], 4.0)), 'still diverging');
  t.equal(warnings.length, 1, 'said once while it lasts');
  watch.check(ev(50, [NaN, 4.2], NaN));
  t.equal(warnings.length, 2, 'the ensemble that stops being finite is a divergence too');
  t.match(watch.diverged?.message, /group 0's validation loss 66/);

  // End to end: a learning rate that wrecks the model (finite, clipped) on a divergence factor of 1.05.
  const r = startRun({ config: await tinyConfig(t.testdir(), 'wild', [...settings, 'steps=60', 'optim.lr=3', 'optim.clipNorm=1', 'eval.every=2', 'guard.divergence=1.05', 'guard.stopOnDivergence=true']) });
  await t.rejects(r.done, /validation loss .* the run is diverging .*stopping \(guard.stopOnDivergence\); every group has a checkpoint of step \d+/);
});
