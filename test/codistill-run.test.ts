import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMetrics } from '../src/train/metrics.js';
import { syncSnapshotStep } from '../src/train/schedule.js';
import { startRun, train } from '../src/train/run.js';
import { evaluate } from '../src/train/evaluate.js';
import type { ExchangeEvent, StepEvent } from '../src/train/events.js';
import { finalWeights, sameBits, tinyConfig } from './helpers/run.js';

const settings = ['steps=12', 'distill.burnIn=2', 'distill.exchangeEvery=4', 'checkpoint.every=4', 'eval.every=6'];

t.test('a 2-group codistillation trains end to end and reports every model and the ensemble', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'a', settings);
  const run = startRun({ config });
  const events: string[] = [];
  run.events$.subscribe((e) => events.push(e.type));
  const summary = await run.done;
  t.equal(summary.losses.length, 2);
  t.ok(summary.losses.every(Number.isFinite) && Number.isFinite(summary.ensembleLoss));
  t.same(summary.evals.map((e) => e.step), [6, 12], 'evaluated every 6 steps and at the end');
  t.equal(events[0], 'start');
  t.equal(events[events.length - 1], 'done');
  for (const type of ['step', 'eval', 'exchange', 'checkpoint']) t.ok(events.includes(type), `emits ${type} events`);
  const log = readMetrics(join(run.runDir, 'metrics.jsonl'));
  const steps = log.filter((e): e is StepEvent => e.type === 'step');
  t.equal(steps.length, 24, 'every step of both groups is in metrics.jsonl');
  t.ok(steps.filter((s) => s.step <= 2).every((s) => s.alpha === 0 && s.staleness === undefined), 'burn-in: no distillation');
  t.ok(steps.filter((s) => s.step > 2).every((s) => s.alpha === 1 && s.distillLoss > 0), 'afterwards the distillation term is on');
  // Sync mode, K = 4, burn-in 2: the step making update s (0-based s = step - 1) uses snapshot 2 until 4, then floor(s/4)*4.
  t.ok(steps.filter((s) => s.step > 2).every((s) => s.staleness === s.step - 1 - syncSnapshotStep(s.step - 1, 4, 2)), 'staleness follows the exchange rule');
  t.same(log.filter((e): e is ExchangeEvent => e.type === 'exchange' && e.group === 0).map((e) => e.step), [2, 4, 8, 12], 'exchanges at burn-in, then every 4 steps');
  t.ok(existsSync(join(run.runDir, 'config.json')));
  t.equal(JSON.parse(readFileSync(join(run.runDir, 'config.json'), 'utf8')).distill.exchangeEvery, 4, 'the resolved config is saved');

  // Evaluating the run's checkpoints afterwards gives what the run itself measured at its last step.
  const again = await evaluate({ config, runDir: run.runDir });
  t.same([again.step, again.losses, again.ensembleLoss], [12, summary.losses, summary.ensembleLoss], 'evaluate() of the newest checkpoint = the final evaluation');
  await t.rejects(evaluate({ config, runDir: run.runDir, step: 5 }), /no checkpoint at step 5 \(there are: 8, 12\)/);
});

t.test('two runs with the same seed end bitwise identical, another seed differs', async (t) => {
  const dir = t.testdir();
  const a = await tinyConfig(dir, 'a', settings);
  const b = await tinyConfig(dir, 'b', settings);
  const c = await tinyConfig(dir, 'c', [...settings, 'seed=99']);
  const [ra, rb, rc] = [await train({ config: a }), await train({ config: b }), await train({ config: c })];
  const [wa, wb, wc] = [await finalWeights(ra.runDir, a), await finalWeights(rb.runDir, b), await finalWeights(rc.runDir, c)];
  t.ok(wa.every((w, g) => sameBits(w, wb[g])), 'same seed: same bits');
  t.notOk(sameBits(wa[0], wc[0]), 'another seed: other weights');
});

t.test('a run that fails mid-way and resumes ends bitwise identical to one never stopped', async (t) => {
  const dir = t.testdir();
  const whole = await tinyConfig(dir, 'whole', settings);
  const broken = await tinyConfig(dir, 'broken', [...settings, 'placement.restarts=0']);
  const reference = await train({ config: whole });
  // A replica of group 1 fails while making update 10: the newest checkpoint is step 8.
  await t.rejects(train({ config: broken, faults: [{ group: 1, replica: 0, atStep: 9 }] }), {
    name: 'RunError',
    message: /group 1 replica 0: injected fault at step 9/,
  });
  const resumed = await train({ config: broken, resume: join(dir, 'broken') });
  t.equal(resumed.steps, 12);
  const [w1, w2] = [await finalWeights(reference.runDir, whole), await finalWeights(resumed.runDir, broken)];
  t.ok(w1.every((w, g) => sameBits(w, w2[g])), 'resumed run = uninterrupted run, bit for bit');
  t.same(resumed.losses, reference.losses, 'and the same final validation losses');

  // Stopped through the API while training: every group checkpoints where it is, and a resume continues from there.
  const paused = await tinyConfig(dir, 'paused', settings);
  const run = startRun({ config: paused });
  run.events$.subscribe((e) => {
    if (e.type === 'step' && e.group === 0 && e.step === 5) void run.stop();
  });
  const stopped = await run.done;
  t.ok(stopped.stopped && stopped.steps >= 5 && stopped.steps < 12, `stop() ended the run early, at step ${stopped.steps}`);
  const log = readMetrics(join(dir, 'paused', 'metrics.jsonl'));
  t.same(log.at(-1), { ...log.at(-1), type: 'stopped', step: stopped.steps, resumesAt: stopped.steps }, 'every group stopped and checkpointed at the same step');
  t.notOk(log.some((e) => e.type === 'done'));
  const continued = await train({ config: paused, resume: join(dir, 'paused') });
  const w3 = await finalWeights(continued.runDir, paused);
  t.ok(continued.steps === 12 && !continued.stopped);
  t.ok(w1.every((w, g) => sameBits(w, w3[g])), 'stopped, then resumed = uninterrupted, bit for bit');
});

t.test('a diverging run stops with a clear error and keeps its earlier checkpoints intact', async (t) => {
  const dir = t.testdir();
  const set = [...settings, 'groups=1', 'optim.lr=1e30', 'optim.clipNorm=0', 'optim.optimizer=momentum', 'checkpoint.every=1'];
  const config = await tinyConfig(dir, 'nan', set);
  await t.rejects(train({ config }), { name: 'RunError', message: /group 0 replica 0: ((loss|gradient norm) is (NaN|Infinity)|the update of step \d+ made the weights non-finite)/ });
  const [weights] = await finalWeights(join(dir, 'nan'), config);
  t.ok(weights.every(Number.isFinite), 'the newest checkpoint holds finite weights');
});
