/**
 * Asynchronous SGD (sgd.mode = async) and its deterministic form, delayed SGD (sgd.mode = delayed): the parameter
 * server's update rules and versions, and whole runs that train, report their staleness, reproduce and resume.
 */
import { join } from 'node:path';
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { DEFAULTS, type OptimConfig } from '../src/config/schema.js';
import { createParameterServer, ParameterServer } from '../src/group/parameter-server.js';
import { readMetrics } from '../src/train/metrics.js';
import { createOptimizer } from '../src/train/optim.js';
import { startRun, train } from '../src/train/run.js';
import { Random } from '../src/util/random.js';
import { finalWeights, sameBits, tinyConfig } from './helpers/run.js';

const rng = new Random(14);
const randomArray = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rng.float() * 2 - 1) * scale);
const server = (mode: 'async' | 'delayed', parameters: number, staleness: number | null, optim: Partial<OptimConfig> = {}) => {
  const s = new ParameterServer(createParameterServer(mode, 2, parameters, staleness, { ...DEFAULTS.optim, ...optim }));
  return s;
};

t.test("the parameter server's Adam, momentum and Adagrad updates equal tfjs's optimizers within float rounding", async (t) => {
  await initBackend('wasm', { kernels: 'wasm' });
  const n = 500;
  const start = randomArray(n);
  const grads = [0, 1, 2, 3].map(() => randomArray(n, 0.5));
  for (const optimizer of ['adam', 'momentum', 'adagrad'] as const) {
    const optim = { ...DEFAULTS.optim, optimizer, lr: 0.05 };
    const ps = server('delayed', n, 0, optim);
    ps.setState(start, []);
    grads.forEach((g, k) => {
      const readVersion = ps.read(() => undefined, k + 1);
      const applied = ps.apply(g, { lr: optim.lr, clipNorm: 0, readVersion, update: k + 1, nonFinite: 'fail' });
      t.equal(applied.staleness, 0, `${optimizer}: tau = 0, no staleness`);
    });
    const v = tf.variable(tf.tensor(start), true, `ps-${optimizer}`);
    const opt = createOptimizer(optim);
    for (const g of grads) tf.tidy(() => opt.applyGradients({ [v.name]: tf.tensor(g) }));
    const want = v.dataSync();
    const got = ps.state(false).weights;
    // Weights of about 1 moved by about lr = 0.05 per step: float32 rounding (amplified where a moment nearly cancels)
    // leaves differences far below one step.
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
    t.ok(worst < 1e-5, `${optimizer}: largest difference ${worst.toExponential(2)}`);
    tf.dispose(v);
    opt.dispose();
  }
});

t.test('delayed SGD: update u is computed on exactly version u - 1 - tau, and a saved server continues bit for bit', async (t) => {
  const n = 64;
  const tau = 2;
  const a = server('delayed', n, tau);
  a.setState(randomArray(n), []);
  const grads = Array.from({ length: 8 }, () => randomArray(n, 0.1));
  // The order K free-running replicas produce: every read as soon as its version exists, applies in update order.
  const reads = new Map<number, { version: number; weights: Float32Array }>();
  const read = (s: ParameterServer, u: number) => {
    let copy = new Float32Array(0);
    const version = s.read((w) => (copy = w.slice()), u);
    reads.set(u, { version, weights: copy });
  };
  const apply = (s: ParameterServer, u: number) => s.apply(grads[u - 1], { lr: 0.01, clipNorm: 1, readVersion: reads.get(u)!.version, update: u, nonFinite: 'fail' });
  for (let u = 1; u <= tau + 1; u++) read(a, u);
  const versions: number[][] = [];
  for (let u = 1; u <= 4; u++) {
    const applied = apply(a, u);
    versions.push([u, reads.get(u)!.version, applied.staleness]);
    read(a, u + tau + 1);
  }
  t.same(versions, [[1, 0, 0], [2, 0, 1], [3, 0, 2], [4, 1, 2]], 'the first tau updates read the initial weights, then each is tau stale');
  t.ok(sameBits(reads.get(5)!.weights, reads.get(6)!.weights) === false, 'the versions read differ');

  // Saved after 4 updates (reads of updates 5..7 pending: they need versions 2, 3, 4), loaded into a new server.
  const saved = a.state(true);
  t.same(saved.optimizer.filter((s) => s.name.startsWith('server/weights-')).map((s) => s.name), ['server/weights-1', 'server/weights-2']);
  const b = server('delayed', n, tau);
  b.setState(saved.weights, saved.optimizer);
  t.equal(b.version, 4);
  for (const u of [5, 6, 7]) {
    let fromB = new Float32Array(0);
    b.read((w) => (fromB = w.slice()), u);
    t.ok(sameBits(fromB, reads.get(u)!.weights), `update ${u} reads the same weights from the loaded server`);
  }
  for (let u = 5; u <= 8; u++) {
    if (!reads.has(u)) read(a, u);
    const ra = apply(a, u);
    const rb = b.apply(grads[u - 1], { lr: 0.01, clipNorm: 1, readVersion: reads.get(u)!.version, update: u, nonFinite: 'fail' });
    t.equal(rb.staleness, ra.staleness);
    if (u + tau + 1 <= 8) read(a, u + tau + 1);
  }
  t.ok(sameBits(a.state(false).weights, b.state(false).weights), 'after 8 updates both hold the same weights');
});

t.test('a non-finite gradient: fail throws and changes nothing; skip advances the version with the weights unchanged', async (t) => {
  const n = 16;
  const ps = server('delayed', n, 0, { optimizer: 'momentum' });
  const start = randomArray(n);
  ps.setState(start, []);
  const bad = randomArray(n);
  bad[3] = NaN;
  t.throws(() => ps.apply(bad, { lr: 0.1, clipNorm: 1, readVersion: 0, update: 1, nonFinite: 'fail' }), /gradient norm is NaN/);
  t.equal(ps.version, 0);
  const skipped = ps.apply(bad, { lr: 0.1, clipNorm: 1, readVersion: 0, update: 1, nonFinite: 'skip' });
  t.ok(skipped.skipped);
  t.equal(ps.version, 1);
  t.ok(sameBits(ps.state(false).weights, start), 'the weights are as they were');
  const huge = new Float32Array(n).fill(1e30);
  t.throws(() => ps.apply(huge, { lr: 1e30, clipNorm: 0, readVersion: 1, update: 2, nonFinite: 'fail' }), /non-finite/, 'an update that overflows the weights fails');
});

const group = ['groups=1', 'replicas=2', 'steps=12', 'checkpoint.every=4', 'eval.every=4'];

t.test('a delayed-SGD run reproduces bit for bit, reports a staleness of tau, and resumes bitwise after a stop', async (t) => {
  const dir = t.testdir();
  const settings = [...group, 'sgd.mode=delayed'];
  const [a, b] = [await tinyConfig(dir, 'a', settings), await tinyConfig(dir, 'b', settings)];
  await train({ config: a });
  await train({ config: b });
  const [wa, wb] = [await finalWeights(join(dir, 'a'), a), await finalWeights(join(dir, 'b'), b)];
  t.ok(sameBits(wa[0], wb[0]), 'two runs, the same bits');
  const steps = readMetrics(join(dir, 'a', 'metrics.jsonl')).flatMap((e) => (e.type === 'step' ? [e] : []));
  t.equal(steps.length, 12);
  t.same(steps[0].gradientStaleness, 0.5, 'step 1: the first update reads the initial weights fresh, the second one update late');
  t.ok(steps.slice(1).every((e) => e.gradientStaleness === 1), 'afterwards every update is tau = replicas - 1 = 1 stale');

  const paused = await tinyConfig(dir, 'paused', settings);
  const run = startRun({ config: paused });
  run.events$.subscribe((e) => {
    if (e.type === 'step' && e.step === 6) void run.stop();
  });
  const stopped = await run.done;
  t.ok(stopped.stopped && stopped.steps < 12, `stopped at step ${stopped.steps}`);
  await train({ config: paused, resume: join(dir, 'paused') });
  const wp = await finalWeights(join(dir, 'paused'), paused);
  t.ok(sameBits(wa[0], wp[0]), 'stopped, then resumed = uninterrupted, bit for bit');

  const other = await tinyConfig(dir, 'paused', [...group, 'sgd.mode=sync', 'steps=16']);
  await t.rejects(train({ config: other, resume: join(dir, 'paused') }), /cannot resume .*: sgd\.mode "delayed" -> "sync"/);
});

t.test('an async-SGD run trains without a barrier between its replicas, with the measured staleness in every step', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'async', [...group, 'sgd.mode=async', 'replicas=3', 'optim.batch=9']);
  const summary = await train({ config });
  t.ok(summary.losses.every(Number.isFinite));
  const steps = readMetrics(join(dir, 'async', 'metrics.jsonl')).flatMap((e) => (e.type === 'step' ? [e] : []));
  t.equal(steps.length, 12);
  t.ok(
    steps.every((e) => e.gradientStaleness !== undefined && e.gradientStaleness >= 0 && e.gradientStaleness <= 2 * 3),
    `staleness per step: ${steps.map((e) => e.gradientStaleness?.toFixed(2)).join(' ')}`,
  );
});
