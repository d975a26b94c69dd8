/**
 * On wasm with tfjs's own kernels, the model trains through the fixed paths: no transposed matMul, no
 * UnsortedSegmentSum, no copies. (With the native kernels transposed products are free: test/native-kernels.)
 */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { LstmLanguageModel } from '../src/workloads/lm/lstm.js';
import { gradFixesInstalled } from '../src/tf/grad-fixes.js';
import { randomBatch } from './helpers/batches.js';
import { lossAndGrads, tinyModel } from './helpers/lm-train.js';

const spec = { model: tinyModel({ layers: 2, layerNorm: true }), classes: 20, seed: 5 };
const batch = randomBatch(11, 3, spec.model.window + 1, spec.classes);

/** Gradients of the model's task loss, in variable order, on the active backend. */
function gradients(): Float32Array[] {
  const model = new LstmLanguageModel(spec);
  const { loss, grads } = lossAndGrads(model, batch);
  const values = model.variables.map((v) => (grads[v.name].dataSync() as Float32Array).slice());
  tf.dispose([loss, ...Object.values(grads)]);
  model.dispose();
  return values;
}

const cpuGradients = await (async () => {
  await initBackend('cpu');
  return gradients();
})();
await initBackend('wasm', { kernels: 'wasm' });

t.test('initBackend installs the fixes', async (t) => {
  t.ok(gradFixesInstalled());
});

t.test('the backward pass never runs a transposed matMul', async (t) => {
  const stock = tf.getKernel('BatchMatMul', 'wasm')!;
  const calls: { transposeA: boolean; transposeB: boolean }[] = [];
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      calls.push(args.attrs as unknown as { transposeA: boolean; transposeB: boolean });
      return stock.kernelFunc(args);
    },
  });
  try {
    gradients();
  } finally {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel(stock);
  }
  t.ok(calls.length > 10, `${calls.length} matMuls ran`);
  t.equal(calls.filter((c) => c.transposeA || c.transposeB).length, 0, 'none transposed');
});

t.test('the embedding gradient runs on wasm, where tf.gather\'s cannot', async (t) => {
  const table = tf.ones([5, 2]);
  const ids = tf.tensor1d([1, 1, 3], 'int32');
  t.throws(() => tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, ids)))(table), /UnsortedSegmentSum/);
  t.doesNotThrow(() => gradients());
  tf.dispose([table, ids]);
});

t.test('clones and same-type casts share memory instead of copying', async (t) => {
  const backend = tf.engine().backend as unknown as { refCount(dataId: tf.DataId): number };
  const x = tf.tensor1d([1, 2, 3]);
  const y = x.clone();
  const z = tf.cast(x, 'float32');
  t.equal(backend.refCount(x.dataId), 3, 'one buffer, three references');
  const n = tf.cast(x, 'int32');
  t.not(n.dataId, x.dataId, 'a real cast still converts');
  t.same(Array.from(n.dataSync()), [1, 2, 3]);
  x.dispose();
  t.same(Array.from(y.dataSync()), [1, 2, 3], 'the clone outlives its source');
  tf.dispose([y, z, n]);
});

t.test('the LSTM\'s gradients on wasm equal the cpu backend\'s', async (t) => {
  const wasm = gradients();
  t.equal(wasm.length, cpuGradients.length);
  let worst = 0;
  wasm.forEach((g, i) => g.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - cpuGradients[i][j])))));
  // Not bitwise: wasm's exp and tanh are not the cpu backend's Math.exp and Math.tanh.
  t.ok(worst < 1e-4, `largest difference ${worst}`);
});
