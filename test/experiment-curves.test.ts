import t from 'tap';
import { crossing, curveFromEvents, formatSpread, spread } from '../src/experiments/curves.js';
import { findLimit } from '../src/experiments/scaling.js';
import { summarise, targetsAbove } from '../src/experiments/summary.js';
import { toCsv } from '../src/experiments/report.js';
import type { RunEvent } from '../src/train/events.js';
import type { ArmResult } from '../src/experiments/arms.js';
import { type Config, DEFAULTS } from '../src/config/schema.js';

const start = (fromStep: number, time: number): RunEvent =>
  ({ type: 'start', runId: 'r', runDir: 'r', backend: 'wasm', parameters: 1, unit: 'tokens', config: {} as Config, fromStep, time }) as RunEvent;
const step = (s: number, time: number, group = 0): RunEvent =>
  ({ type: 'step', group, step: s, loss: 0, taskLoss: 0, distillLoss: 0, alpha: 0, lr: 0, gradNorm: 0, positions: 1, ms: 1, computeMs: 1, reduceMs: 0, teacherWaitMs: 0, time }) as RunEvent;
const evalAt = (s: number, losses: number[], ensembleLoss = losses[0]): RunEvent =>
  ({ type: 'eval', step: s, losses, ensembleLoss, positions: 1, time: 0 }) as RunEvent;

t.test('a curve interpolates the step and the time at which a target is first reached', async (t) => {
  const curve = curveFromEvents([
    start(0, 1000),
    step(10, 2000), evalAt(10, [4]),
    step(20, 3000), evalAt(20, [3]),
    step(30, 4000), evalAt(30, [2.5]),
    { type: 'done', step: 30, seconds: 3, losses: [2.5], ensembleLoss: 2.5, time: 4000 },
  ]);
  t.ok(curve.finished);
  t.equal(curve.backend, 'wasm');
  t.same(crossing(curve, 'model', 3.5), { step: 15, seconds: 1.5 });
  t.same(crossing(curve, 'model', 4.5), { step: 10, seconds: 1 }, 'a target met at the first evaluation reads as it');
  t.equal(crossing(curve, 'model', 2), undefined, 'never reached');
});

t.test('a resumed log is cut back to the checkpoint it resumed from, and its pause is not counted', async (t) => {
  const curve = curveFromEvents([
    start(0, 0),
    step(10, 1000), evalAt(10, [4]),
    step(20, 2000), evalAt(20, [9]), // done after the last checkpoint (10), then lost
    start(10, 60_000),
    step(20, 61_000), evalAt(20, [3]),
    { type: 'done', step: 20, seconds: 2, losses: [3], ensembleLoss: 3, time: 61_000 },
  ]);
  t.same(curve.points.map((p) => [p.step, p.model, p.seconds]), [[10, 4, 1], [20, 3, 2]]);
  t.equal(curve.seconds, 2);
});

t.test('with several groups, a step counts when its slowest group did it; model loss is the groups\' mean', async (t) => {
  const curve = curveFromEvents([start(0, 0), step(5, 1000, 0), step(5, 3000, 1), evalAt(5, [4, 2], 2.5)]);
  t.same(curve.points[0], { step: 5, seconds: 3, losses: [4, 2], model: 3, ensemble: 2.5 });
  t.notOk(curve.finished);
});

t.test('spreads show the seeds that reached a target; targets sit above the reference\'s worst seed', async (t) => {
  t.equal(formatSpread(spread([10, 12]), 0), '11 ± 1');
  t.equal(formatSpread(spread([10, undefined]), 0), '10 ± 0 (1/2 reached)');
  t.equal(formatSpread(spread([undefined, undefined]), 0), 'not reached');
  const result = (seed: number, final: number): ArmResult => ({
    arm: { id: `a${seed}`, label: 'a', seed, config: {} as Config },
    runDir: '',
    curve: curveFromEvents([start(0, 0), step(10, 1000), evalAt(10, [final])]),
  });
  t.same(targetsAbove([result(1, 3), result(2, 3.2)], 'model', [0, 0.1]), [3.3, 3.2]);
});

t.test('the limit is the first batch whose doubling saves too few steps', async (t) => {
  const result = (seed: number, losses: number[]): ArmResult => ({
    arm: { id: `x${seed}`, label: 'x', seed, config: DEFAULTS },
    runDir: '',
    curve: curveFromEvents([start(0, 0), ...losses.flatMap((l, i) => [step(10 * (i + 1), 1000 * (i + 1)), evalAt(10 * (i + 1), [l])])]),
  });
  const targets = [2];
  // Batch 8 needs 40 steps, 16 needs 20 (ratio 0.5), 32 needs 20 again (ratio 1): the limit is 16.
  const sync = [
    summarise({ name: 'b8', results: [result(1, [5, 4, 3, 2])], measure: 'model' }, targets),
    summarise({ name: 'b16', results: [result(1, [3, 2, 1, 1])], measure: 'model' }, targets),
    summarise({ name: 'b32', results: [result(1, [3, 2, 1, 1])], measure: 'model' }, targets),
  ];
  const limit = findLimit([8, 16, 32], sync, 0.85);
  t.equal(limit.batch, 16);
  t.ok(limit.saturated);
  t.same(limit.ratios.map((r) => r.ratio?.value), [0.5, 1]);
  t.equal(sync[0].examplesPerStep, DEFAULTS.groups * DEFAULTS.optim.batch, 'compute per step: groups x batch');
  t.notOk(findLimit([8, 16], sync.slice(0, 2), 0.85).saturated, 'still gaining: the largest batch, not saturated');
});

t.test('CSV cells with commas or quotes are quoted', async (t) => {
  t.equal(toCsv(['a', 'b'], [['1, 2', 'say "hi"']]), 'a,b\n"1, 2","say ""hi"""\n');
});
