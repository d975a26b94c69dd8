import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { lmConfig } from '../src/workloads/lm/config.js';
import { lmWorkload } from '../src/workloads/lm/index.js';
import { Group } from '../src/group/group.js';
import { MemoryExchange } from '../src/exchange/exchange.js';
import { learningRate } from '../src/train/schedule.js';
import { groupSeed } from '../src/train/group-trainer.js';
import { train } from '../src/train/run.js';
import { GroupTeacher, startTeacherActor } from '../src/train/teachers.js';
import { TargetBuffers, targetBytes } from '../src/train/teacher-target.js';
import { randomBatch } from './helpers/batches.js';
import { finalWeights, sameBits, tinyConfig } from './helpers/run.js';

t.test('a student step never changes its teachers: the same batch gets the same teacher prediction', async (t) => {
  const config = loadConfig({ preset: 'tiny', set: ['backend=wasm', 'distill.exchangeEvery=0', 'distill.burnIn=0'] });
  const classes = 64;
  const groups = await Promise.all(
    [0, 1].map((g) =>
      Group.start({ group: g, replicas: 1, config, classes, seed: g + 1 }),
    ),
  );
  const exchange = new MemoryExchange(2);
  for (const [g, group] of groups.entries()) await exchange.publish(g, 0, (await group.state(false)).weights);
  const teacher = await GroupTeacher.start(0, config, classes, lmConfig(config).model.window, exchange);
  t.teardown(() => Promise.all([teacher.close(), exchange.close(), ...groups.map((g) => g.close())]));

  const T = lmConfig(config).model.window;
  const probe = randomBatch(5, 4, T + 1, classes);
  const before = await teacher.predict(0, probe);
  for (let s = 0; s < 5; s++) {
    const batch = randomBatch(10 + s, 8, T + 1, classes);
    const { target } = await teacher.predict(s, batch);
    await groups[0].step({ step: s, lr: 0.05, alpha: 1, batch, positionsPerRow: T, classes, teacher: target });
  }
  const after = await teacher.predict(4, probe);
  t.equal(before.target.kind, 'dense');
  if (before.target.kind === 'dense' && after.target.kind === 'dense') {
    t.ok(sameBits(before.target.values, after.target.values), 'teacher output unchanged, bit for bit');
    t.ok(Math.abs(before.target.values.slice(0, classes).reduce((a, b) => a + b, 0) - 1) < 1e-5, 'a teacher target is a distribution');
  }
  t.same(after.snapshotSteps, [0], 'group 0 is taught by group 1 only, at its published snapshot');
});

t.test('with alpha = 0 each group trains exactly as an independent run on its shards', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'free', ['steps=6', 'distill.alpha=0', 'checkpoint.every=0', 'eval.every=0']);
  const summary = await train({ config });
  const inRun = await finalWeights(summary.runDir, config);

  // Group 1 trained alone: its own model, its own stream, the same schedule, nobody else in the process.
  const data = await lmWorkload.open(config);
  const { classes, positionsPerRow } = data;
  const alone = await Group.start({ group: 1, replicas: 1, config, classes, seed: groupSeed(config.seed, 1) });
  const stream = data.openStream({ group: 1, groups: 2, sameData: false, batch: config.optim.batch, seed: config.seed });
  t.teardown(async () => {
    await stream.close();
    await data.close();
    await alone.close();
  });
  for (let s = 0; s < config.steps; s++) {
    const batch = await stream.next();
    await alone.step({ step: s, lr: learningRate(config.optim, s, config.steps), alpha: 0, batch, positionsPerRow, classes });
  }
  const { weights } = await alone.state(false);
  t.ok(sameBits(weights, inRun[1]), 'group 1 of the run = group 1 trained alone, bit for bit');
  t.notOk(sameBits(inRun[0], inRun[1]), 'and the two groups are different models');
});

t.test('the teacher actor keeps its tensor count flat across predictions and evaluations', async (t) => {
  const config = loadConfig({ preset: 'tiny', set: ['backend=wasm'] });
  const classes = 64;
  const actor = await startTeacherActor('teacher under test', config, classes);
  t.teardown(() => actor.close());
  const group = await Group.start({ group: 0, replicas: 1, config, classes, seed: 3 });
  const { weights } = await group.state(false);
  await group.close();
  await actor.request({ type: 'load', id: 0, slot: 'g0', weights: weights.slice() }, 'ok');
  await actor.request({ type: 'load', id: 0, slot: 'g1', weights: weights.slice() }, 'ok');
  const T = lmConfig(config).model.window;
  const into = new SharedArrayBuffer(3 * 4 * 8);
  const use = async (seed: number) => {
    const b = randomBatch(seed, 6, T + 1, classes);
    await actor.request({ type: 'predict', id: 0, slots: ['g0', 'g1'], batch: b, output: 'probs', topK: 4, positions: new Int32Array([1, 5, 9]), into }, 'predicted');
    await actor.request({ type: 'evaluate', id: 0, slots: ['g0', 'g1'], batch: randomBatch(seed + 1, 6, T + 1, classes), chunkRows: 4 }, 'evaluated');
  };
  await use(1);
  const before = (await actor.request({ type: 'tensors', id: 0 }, 'tensors')).tensors;
  for (let s = 2; s < 8; s++) await use(s);
  t.equal((await actor.request({ type: 'tensors', id: 0 }, 'tensors')).tensors, before);
});

t.test("a group's target buffers are used again: one is taken big enough, and a new one made only when none is free", async (t) => {
  const pool = new TargetBuffers(2);
  const a = pool.take(100);
  const b = pool.take(50);
  t.not(a, b);
  pool.give(a);
  t.equal(pool.take(80), a, 'a free buffer that is big enough comes back');
  pool.give(a);
  const c = pool.take(200);
  t.not(c, a, 'a bigger target gets a new buffer');
  t.equal(c.byteLength, 200);
  pool.give(b);
  pool.give(c);
  t.not(pool.take(150), c, 'the pool keeps only as many as it was told (c was dropped)');
  t.equal(targetBytes(3, 10, 0), 120, 'dense: a float per class');
  t.equal(targetBytes(3, 10, 4), 96, 'top-k: a float and an int per entry');
});
