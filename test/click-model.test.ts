/** The click model trains on wasm: its logits are [0, z], wasm's gradients match cpu's, and it learns a batch. */
import t from 'tap';
import { gradientValues, initialBits, relativeDiff, trainLosses } from './helpers/lm-train.js';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { taskLoss } from '../src/train/loss.js';
import { Random } from '../src/util/random.js';
import { ClickModel, type ClickModelOptions } from '../src/workloads/click/model.js';
import type { Batch } from '../src/workloads/workload.js';

const small: ClickModelOptions = { embedding: 4, hidden: [16, 8], buckets: 64, dense: 13, categorical: 26, seed: 1 };

/** Ids drawn from few buckets, so that rows share embedding rows and the scatter has to sum them. */
function clickBatch(seed: number, rows: number, buckets = small.buckets): Batch {
  const rng = new Random(seed);
  const dense = Float32Array.from({ length: rows * 13 }, () => rng.float() * 2 - 1);
  const categorical = Int32Array.from({ length: rows * 26 }, () => rng.int(buckets));
  const label = Uint8Array.from({ length: rows }, () => (rng.float() < 0.3 ? 1 : 0));
  return { rows, fields: { dense, categorical, label } };
}


t.test('logits are [rows, 2] = [0, z], so softmax gives p(1) = sigmoid(z) and the task loss is the log loss', async (t) => {
  await initBackend('wasm');
  const model = new ClickModel(small);
  const batch = clickBatch(1, 7);
  tf.tidy(() => {
    const logits = model.logits(batch);
    t.same(logits.shape, [7, 2]);
    t.equal(model.positions(7), 7);
    t.equal(model.classes, 2);
    const [zero, z] = tf.split(logits, 2, 1);
    t.equal(tf.abs(zero).max().dataSync()[0], 0, 'the first logit is 0');
    const p1 = tf.slice(tf.softmax(logits), [0, 1], [7, 1]);
    t.ok(relativeDiff(p1.dataSync(), tf.sigmoid(z).dataSync()) < 1e-6, 'p(1) = sigmoid(z)');
    const labels = model.labels(batch);
    t.equal(labels.dtype, 'int32');
    t.same(Array.from(labels.dataSync()), Array.from(batch.fields.label));
    const y = labels.toFloat().reshape([7, 1]);
    const logLoss = tf.neg(tf.add(tf.mul(y, tf.log(tf.sigmoid(z))), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, tf.sigmoid(z)))))).mean();
    t.ok(Math.abs(taskLoss(logits, labels).dataSync()[0] - logLoss.dataSync()[0]) < 1e-6, 'cross-entropy = log loss');
  });
  model.dispose();
});

t.test('`at` picks rows: the same logits as the full pass at those rows', async (t) => {
  await initBackend('wasm');
  const model = new ClickModel(small);
  const batch = clickBatch(2, 6);
  tf.tidy(() => {
    const at = tf.tensor1d([5, 0, 3], 'int32');
    const picked = model.logits(batch, at);
    t.same(picked.shape, [3, 2]);
    t.ok(relativeDiff(picked.dataSync(), tf.gather(model.logits(batch), at).dataSync()) < 1e-6);
  });
  model.dispose();
});

t.test('a batch that does not fit the model is an error that says why', async (t) => {
  await initBackend('wasm');
  const model = new ClickModel(small);
  const bad = clickBatch(3, 2);
  (bad.fields.categorical as Int32Array)[5] = small.buckets;
  t.throws(() => tf.tidy(() => model.logits(bad)), /categorical id 64 is outside the hash buckets \[0, 64\)/);
  t.throws(() => tf.tidy(() => model.logits({ rows: 2, fields: { ...bad.fields, dense: new Float32Array(3) } })), /"dense" of rows x 13 = 26/);
  t.throws(() => tf.tidy(() => model.labels({ rows: 2, fields: { label: Uint8Array.of(0, 2) } })), /label 2 is not a click label/);
  model.dispose();
});

t.test('gradients on wasm equal those on cpu for the same seed and batch', async (t) => {
  const batch = clickBatch(4, 12);
  const on = async (backend: 'wasm' | 'cpu') => {
    await initBackend(backend);
    const model = new ClickModel({ ...small, seed: 3 });
    const result = gradientValues(model, batch);
    model.dispose();
    return result;
  };
  const cpu = await on('cpu');
  const wasm = await on('wasm');
  t.ok(Math.abs(wasm.loss - cpu.loss) < 1e-5, `loss ${wasm.loss} vs ${cpu.loss}`);
  const names = new ClickModel(small).variableNames;
  t.same(names, ['embedding', 'hidden0/kernel', 'hidden0/bias', 'hidden1/kernel', 'hidden1/bias', 'output/kernel', 'output/bias']);
  wasm.grads.forEach((g, i) => t.ok(relativeDiff(g, cpu.grads[i]) < 1e-4, `${names[i]}: ${relativeDiff(g, cpu.grads[i])}`));
});

t.test('Adagrad steps on a batch lower the loss, and the tensor count stays flat', async (t) => {
  await initBackend('wasm');
  const model = new ClickModel(small);
  const opt: tf.Optimizer = tf.train.adagrad(0.3);
  const batch = clickBatch(5, 32);
  const { losses, counts } = trainLosses(model, opt, batch, 15);
  t.ok(losses[14] < 0.5 * losses[0], `${losses[0].toFixed(3)} -> ${losses[14].toFixed(3)}`);
  // Step 1 creates Adagrad's accumulators; after that nothing may accumulate.
  t.same(new Set(counts.slice(1)).size, 1, `tensors after each step: ${counts.join(' ')}`);
  opt.dispose();
  model.dispose();
});

t.test('the same seed gives bitwise-equal initial weights; another seed does not', async (t) => {
  await initBackend('wasm');
  const weights = (seed: number) => initialBits(() => new ClickModel({ ...small, seed }));
  const [a, b, c] = [weights(5), weights(5), weights(6)];
  t.ok(a.every((w, i) => w.equals(b[i])), 'identical bits');
  t.notOk(a[0].equals(c[0]), 'different seed, different embedding');
  t.notOk(a[1].equals(c[1]), 'different seed, different kernels');
});
