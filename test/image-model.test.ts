/** The MNIST CNN trains on wasm: its convolution and pooling match the stock kernels, and wasm matches cpu. */
import t from 'tap';
import { gradientValues, initialBits, relativeDiff, trainLosses } from './helpers/lm-train.js';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { Random } from '../src/util/random.js';
import { conv2dSame, maxPool2x2 } from '../src/workloads/image/conv.js';
import { ImageModel, type ImageModelOptions } from '../src/workloads/image/model.js';
import type { Batch } from '../src/workloads/workload.js';

const small: ImageModelOptions = { filters: [4, 8], kernel: 5, dense: 16, height: 28, width: 28, classes: 10, seed: 1 };

/** Digit-like data: mostly black background (so that pooling windows tie), the rest random grey levels. */
function imageBatch(seed: number, rows: number): Batch {
  const rng = new Random(seed);
  const pixels = Uint8Array.from({ length: rows * 28 * 28 }, () => (rng.float() < 0.6 ? 0 : rng.int(256)));
  const label = Uint8Array.from({ length: rows }, () => rng.int(10));
  return { rows, fields: { pixels, label } };
}


const seeded = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);

t.test('conv2dSame gives tf.conv2d\'s values and gradients for odd and even kernels (cpu, stock kernels)', async (t) => {
  await initBackend('cpu');
  for (const k of [1, 2, 3, 4, 5]) {
    tf.tidy(() => {
      const x = seeded([3, 9, 8, 2], 1) as tf.Tensor4D;
      const w = seeded([k, k, 2, 5], 2) as tf.Tensor4D;
      const weights = seeded([3, 9, 8, 5], 3);
      const grads = (conv: (a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a as tf.Tensor4D, b as tf.Tensor4D), weights)))([x, w]);
      const [dx, dw] = grads(conv2dSame);
      const [stockDx, stockDw] = grads((a, b) => tf.conv2d(a, b, 1, 'same'));
      t.ok(relativeDiff(conv2dSame(x, w).dataSync(), tf.conv2d(x, w, 1, 'same').dataSync()) < 1e-6, `${k}x${k}: values`);
      t.ok(relativeDiff(dx.dataSync(), stockDx.dataSync()) < 1e-5, `${k}x${k}: input gradient`);
      t.ok(relativeDiff(dw.dataSync(), stockDw.dataSync()) < 1e-5, `${k}x${k}: filter gradient`);
      const [noDx, sameDw] = grads((a, b) => conv2dSame(a, b, false));
      t.equal(tf.abs(noDx).max().dataSync()[0], 0, `${k}x${k}: without inputGradient, dx is zero`);
      t.equal(relativeDiff(sameDw.dataSync(), dw.dataSync()), 0, `${k}x${k}: and dW unchanged`);
    });
  }
});

t.test('maxPool2x2 gives tf.maxPool\'s values, and each window\'s gradient goes where the stock one sends it, ties included (cpu)', async (t) => {
  await initBackend('cpu');
  tf.tidy(() => {
    // Few distinct values, odd sides: windows tie, and the last row and column fall outside every window.
    const x = tf.round(tf.randomUniform([2, 9, 7, 3], -2, 2, 'float32', 5)) as tf.Tensor4D;
    const weights = seeded([2, 4, 3, 3], 6);
    const grad = (pool: (a: tf.Tensor4D) => tf.Tensor) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pool(a as tf.Tensor4D), weights)))(x);
    t.same(maxPool2x2(x).dataSync(), tf.maxPool(x, 2, 2, 'valid').dataSync(), 'values');
    t.same(grad(maxPool2x2).dataSync(), grad((a) => tf.maxPool(a, 2, 2, 'valid')).dataSync(), 'gradient');
  });
});

t.test('logits are [rows, 10], labels int32 [rows], and `at` picks rows', async (t) => {
  await initBackend('wasm');
  const model = new ImageModel(small);
  const batch = imageBatch(1, 5);
  tf.tidy(() => {
    const logits = model.logits(batch);
    t.same(logits.shape, [5, 10]);
    t.equal(model.positions(5), 5);
    const labels = model.labels(batch);
    t.equal(labels.dtype, 'int32');
    t.same(Array.from(labels.dataSync()), Array.from(batch.fields.label));
    const at = tf.tensor1d([4, 1], 'int32');
    const picked = model.logits(batch, at);
    t.same(picked.shape, [2, 10]);
    t.ok(relativeDiff(picked.dataSync(), tf.gather(logits, at).dataSync()) < 1e-6, 'the same rows as the full pass');
  });
  const short: Batch = { rows: 2, fields: { pixels: new Uint8Array(10), label: new Uint8Array(2) } };
  t.throws(() => tf.tidy(() => model.logits(short)), /"pixels" of rows x 28 x 28 = 1568/);
  t.throws(() => new ImageModel({ ...small, filters: [1, 1, 1, 1, 1] }), /shrink a 28x28 image to nothing/);
  model.dispose();
});

t.test('gradients on wasm equal those on cpu for the same seed and batch', async (t) => {
  const batch = imageBatch(2, 6);
  const on = async (backend: 'wasm' | 'cpu') => {
    await initBackend(backend);
    const model = new ImageModel({ ...small, seed: 3 });
    // Positive biases make the black background a plateau of equal positive values: pooling windows there tie.
    model.variables.filter((v) => v.name.endsWith('bias')).forEach((v) => tf.tidy(() => v.assign(tf.fill(v.shape, 0.1))));
    const result = gradientValues(model, batch);
    model.dispose();
    return result;
  };
  const cpu = await on('cpu');
  const wasm = await on('wasm');
  t.ok(Math.abs(wasm.loss - cpu.loss) < 1e-5, `loss ${wasm.loss} vs ${cpu.loss}`);
  const names = new ImageModel(small).variableNames;
  wasm.grads.forEach((g, i) => t.ok(relativeDiff(g, cpu.grads[i]) < 1e-4, `${names[i]}: ${relativeDiff(g, cpu.grads[i])}`));
});

t.test('Adam steps on a batch lower the loss, and the tensor count stays flat', async (t) => {
  await initBackend('wasm');
  const model = new ImageModel(small);
  const opt: tf.Optimizer = tf.train.adam(1e-2);
  const batch = imageBatch(3, 16);
  const { losses, counts } = trainLosses(model, opt, batch, 12);
  t.ok(losses[11] < 0.7 * losses[0], `${losses[0].toFixed(3)} -> ${losses[11].toFixed(3)}`);
  // Step 1 creates Adam's slots; after that nothing may accumulate.
  t.same(new Set(counts.slice(1)).size, 1, `tensors after each step: ${counts.join(' ')}`);
  opt.dispose();
  model.dispose();
});

t.test('the same seed gives bitwise-equal initial weights; another seed does not', async (t) => {
  await initBackend('wasm');
  const weights = (seed: number) => initialBits(() => new ImageModel({ ...small, seed }));
  const [a, b, c] = [weights(5), weights(5), weights(6)];
  t.ok(a.every((w, i) => w.equals(b[i])), 'identical bits');
  t.notOk(a[0].equals(c[0]), 'different seed, different weights');
});
