import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { Group, type GroupOptions } from '../src/group/group.js';
import { groupStepInput } from './helpers/batches.js';

const classes = 64;
const T = 8;
const config = loadConfig({
  set: ['backend=wasm', 'model.embedding=8', 'model.hidden=16', 'model.layers=1', `model.window=${T}`, 'optim.lr=0.01', 'optim.batch=64'],
});
const options = (replicas: number): GroupOptions => ({ group: 0, replicas, config, classes, seed: 7 });

const stepInput = (step: number, rows: number) => groupStepInput(step, rows, T, classes);

t.test('all replicas of a group hold bitwise-identical weights after many steps', async (t) => {
  const group = await Group.start(options(2));
  t.teardown(() => group.close());
  for (let s = 0; s < 12; s++) await group.step(stepInput(s, 8));
  const [a, b] = await group.replicaWeights();
  t.equal(a.length, group.parameters);
  t.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), 'replica 0 and replica 1 weights are bitwise equal');
});

t.test('K replicas at batch b make the same update as one replica at batch K*b', async (t) => {
  const one = await Group.start(options(1));
  const two = await Group.start(options(2));
  t.teardown(() => Promise.all([one.close(), two.close()]));
  for (let s = 0; s < 3; s++) {
    const r1 = await one.step(stepInput(s, 8));
    const r2 = await two.step(stepInput(s, 8));
    t.ok(Math.abs(r1.loss - r2.loss) < 1e-5, `step ${s}: loss ${r1.loss} ~ ${r2.loss}`);
  }
  const [w1] = await one.replicaWeights();
  const [w2] = await two.replicaWeights();
  let worst = 0;
  for (let i = 0; i < w1.length; i++) worst = Math.max(worst, Math.abs(w1[i] - w2[i]));
  t.ok(worst < 1e-4, `largest weight difference ${worst}`);
});

t.test('the tensor count stays flat across steps, in sync, async and delayed mode', async (t) => {
  for (const mode of ['sync', 'async', 'delayed'] as const) {
    const group = await Group.start({ ...options(2), config: { ...config, sgd: { mode, staleness: null } } });
    await group.step(stepInput(0, 8));
    const before = await group.tensors();
    for (let s = 1; s < 15; s++) await group.step(stepInput(s, 8));
    t.same(await group.tensors(), before, mode);
    await group.close();
  }
});

t.test('a replica that throws is a run error naming its group and replica, not a hang', async (t) => {
  const group = await Group.start({ ...options(2), group: 3 });
  t.teardown(() => group.close());
  await group.injectFault(1, 2);
  await group.step(stepInput(0, 8));
  await group.step(stepInput(1, 8));
  await t.rejects(group.step(stepInput(2, 8)), { name: 'RunError', message: /group 3 replica 1: injected fault at step 2/ });
});

t.test('a replica worker that dies is reported, not a hang', async (t) => {
  const group = await Group.start({ ...options(2), group: 1 });
  t.teardown(() => group.close());
  await group.step(stepInput(0, 8));
  await group.killReplica(0);
  await t.rejects(group.step(stepInput(1, 8)), { name: 'RunError', message: /group 1 replica 0: (exited|crashed|closed)/ });
});

t.test('a teacher target in shared memory trains 2 replicas exactly as a copied one does, and is left as it was', async (t) => {
  const rows = 8;
  const positions = rows * T;
  const dense = (buffer: ArrayBuffer | SharedArrayBuffer) => {
    const values = new Float32Array(buffer, 0, positions * classes);
    for (let i = 0; i < values.length; i++) values[i] = ((i * 7919) % 101) / (101 * 50);
    return values;
  };
  const run = async (buffer: () => ArrayBuffer | SharedArrayBuffer) => {
    const group = await Group.start(options(2));
    try {
      for (let s = 0; s < 3; s++) {
        const values = dense(buffer());
        await group.step({ ...stepInput(s, rows), alpha: 0.5, teacher: { kind: 'dense', values } });
        if (values.buffer instanceof SharedArrayBuffer) t.same(values, dense(new ArrayBuffer(values.byteLength)), `step ${s}: the shared target is unchanged`);
      }
      return (await group.replicaWeights())[0];
    } finally {
      await group.close();
    }
  };
  const shared = await run(() => new SharedArrayBuffer(positions * classes * 4));
  const copied = await run(() => new ArrayBuffer(positions * classes * 4));
  t.ok(Buffer.from(shared.buffer).equals(Buffer.from(copied.buffer)), 'the same weights, bit for bit');
});
