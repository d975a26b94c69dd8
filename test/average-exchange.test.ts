import { join } from 'node:path';
import t from 'tap';
import { initialOuterState, outerStep } from '../src/train/outer.js';
import { readMetrics } from '../src/train/metrics.js';
import { startRun, train } from '../src/train/run.js';
import { finalWeights, sameBits, tinyConfig } from './helpers/run.js';
import { Random } from '../src/util/random.js';

const randomWeights = (rng: Random, n: number) => Float32Array.from({ length: n }, () => rng.float() * 2 - 1);

t.test('the outer step is Nesterov SGD on the averaged pseudo-gradient (anchor minus mean), by hand', async (t) => {
  const anchor = Float32Array.from([1, -2, 0.5]);
  const groups = [Float32Array.from([0.8, -1.5, 0.5]), Float32Array.from([0.6, -2.5, 1.5])];
  const lr = 0.7;
  const mu = 0.9;
  const first = outerStep(initialOuterState(anchor), groups, lr, mu);
  // delta = anchor - mean = [1 - 0.7, -2 + 2, 0.5 - 1] = [0.3, 0, -0.5]; m = delta; step = delta + 0.9 m = 1.9 delta.
  const delta = [0.3, 0, -0.5];
  t.same([...first.momentum].map((x) => +x.toFixed(6)), delta.map((d) => +Math.fround(d).toFixed(6)));
  t.same([...first.anchor].map((x) => +x.toFixed(6)), [1 - 0.7 * 1.9 * 0.3, -2, 0.5 + 0.7 * 1.9 * 0.5].map((x) => +x.toFixed(6)));
  t.ok(first.anchor[0] < anchor[0], 'groups that moved down pull the anchor down: the pseudo-gradient is subtracted');

  // A second round: the momentum remembers the first.
  const again = [Float32Array.from([0.5, -2, 1]), Float32Array.from([0.5, -2, 1])];
  const second = outerStep(first, again, lr, mu);
  for (let i = 0; i < 3; i++) {
    const d = first.anchor[i] - 0.5 * (again[0][i] + again[1][i]);
    const m = mu * first.momentum[i] + d;
    t.equal(second.momentum[i], Math.fround(m), `momentum ${i}`);
    t.equal(second.anchor[i], Math.fround(first.anchor[i] - lr * (d + mu * m)), `anchor ${i}`);
  }
  t.same([...anchor], [1, -2, 0.5], 'the inputs are left as they were');
});

t.test('averaging with outer lr 1 and no momentum is the mean of the groups\' weights, bit for bit', async (t) => {
  const rng = new Random(7);
  const n = 10_000;
  const state = initialOuterState(randomWeights(rng, n));
  const groups = [randomWeights(rng, n), randomWeights(rng, n), randomWeights(rng, n)];
  const next = outerStep(state, groups, 1, 0);
  const mean = Float32Array.from({ length: n }, (_, i) => (groups[0][i] + groups[1][i] + groups[2][i]) / 3);
  t.ok(sameBits(next.anchor, mean), 'anchor = mean');
  t.throws(() => outerStep(state, [new Float32Array(3)], 1, 0), /group 0's weights have 3 values, the outer state 10000/);
});

const settings = ['steps=12', 'groups=2', 'distill.method=average', 'distill.exchangeEvery=4', 'checkpoint.every=4', 'eval.every=4'];

t.test('local SGD and DiLoCo runs end with every group on the same weights, and resume bitwise', async (t) => {
  const dir = t.testdir();
  const local = await tinyConfig(dir, 'local', [...settings, 'distill.outerLr=1', 'distill.outerMomentum=0']);
  const diloco = await tinyConfig(dir, 'diloco', settings);
  const [rl, rd] = [await train({ config: local }), await train({ config: diloco })];
  const [wl, wd] = [await finalWeights(rl.runDir, local), await finalWeights(rd.runDir, diloco)];
  t.ok(sameBits(wl[0], wl[1]), 'local SGD: both groups hold the average after the last exchange');
  t.ok(sameBits(wd[0], wd[1]), 'DiLoCo: both groups hold the same anchor');
  t.notOk(sameBits(wl[0], wd[0]), 'the outer optimizer changes the result');
  const exchanges = readMetrics(join(dir, 'diloco', 'metrics.jsonl')).filter((e) => e.type === 'exchange');
  t.same(exchanges.map((e) => e.type === 'exchange' && [e.group, e.step]).sort(), [[0, 12], [0, 4], [0, 8], [1, 12], [1, 4], [1, 8]].sort());
  t.ok(rd.losses.every(Number.isFinite));

  // Stopped between two exchanges, then resumed: the outer state comes back from the checkpoint.
  const paused = await tinyConfig(dir, 'paused', settings);
  const run = startRun({ config: paused });
  run.events$.subscribe((e) => {
    if (e.type === 'step' && e.group === 0 && e.step === 5) void run.stop();
  });
  const stopped = await run.done;
  t.ok(stopped.stopped && stopped.steps < 12, `stopped at step ${stopped.steps}`);
  const continued = await train({ config: paused, resume: join(dir, 'paused') });
  const wp = await finalWeights(continued.runDir, paused);
  t.ok(wd.every((w, g) => sameBits(w, wp[g])), 'stopped, then resumed = uninterrupted, bit for bit');
});

t.test('exchange by averaging waits for every group in process placement too', async (t) => {
  const dir = t.testdir();
  const threads = await tinyConfig(dir, 'threads', [...settings, 'steps=8']);
  const processes = await tinyConfig(dir, 'processes', [...settings, 'steps=8', 'placement.mode=process']);
  const [a, b] = [await train({ config: threads }), await train({ config: processes })];
  const [wa, wb] = [await finalWeights(a.runDir, threads), await finalWeights(b.runDir, processes)];
  t.ok(wa.every((w, g) => sameBits(w, wb[g])), 'groups in child processes reach the same weights as groups in threads');
});
