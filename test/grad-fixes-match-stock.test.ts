/** The fixed gradients give the stock gradients' numbers (cpu backend: the stock reference runs there). */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { embeddingLookup, installGradFixes, uninstallGradFixes } from '../src/tf/grad-fixes.js';

await initBackend('cpu');

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** Gradients of sum(f(a, b) * w) with respect to a and b, under the gradients registered now. */
function matMulGrads(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): Float32Array[] {
  return tf.tidy(() => {
    const out = tf.matMul(a, b, ta, tb);
    const w = seeded(out.shape, 99);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w)))([a, b]);
    return [da.dataSync() as Float32Array, db.dataSync() as Float32Array];
  });
}

/** Largest absolute difference; Infinity when the sizes differ. */
function maxDiff(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst;
}

t.test('matMul gradients equal the stock ones for all four transpose combinations', async (t) => {
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    for (const batch of [[], [2]]) {
      // Logical shapes: op(a) is [3, 4], op(b) is [4, 5].
      const a = seeded([...batch, ...(ta ? [4, 3] : [3, 4])], 1);
      const b = seeded([...batch, ...(tb ? [5, 4] : [4, 5])], 2);
      uninstallGradFixes();
      const stock = matMulGrads(a, b, ta, tb);
      installGradFixes();
      const fixed = matMulGrads(a, b, ta, tb);
      const label = `transposeA=${ta} transposeB=${tb} rank ${2 + batch.length}`;
      t.ok(maxDiff(fixed[0], stock[0]) < 1e-5, `${label}: da`);
      t.ok(maxDiff(fixed[1], stock[1]) < 1e-5, `${label}: db`);
      tf.dispose([a, b]);
    }
  }
});

t.test('the embedding gradient equals tf.gather\'s, repeated ids summed', async (t) => {
  const table = seeded([7, 3], 3) as tf.Tensor2D;
  const ids = tf.tensor2d([[1, 4, 1], [6, 1, 0]], [2, 3], 'int32');
  const weights = seeded([2, 3, 3], 4);
  const gradOf = (lookup: (x: tf.Tensor) => tf.Tensor) =>
    tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(lookup(x), weights)))(table).dataSync() as Float32Array);
  const stock = gradOf((x) => tf.gather(x, ids));
  const fixed = gradOf((x) => embeddingLookup(x as tf.Tensor2D, ids));
  t.ok(maxDiff(fixed, stock) < 1e-6, 'table gradient');
  const forward = tf.tidy(() => tf.sub(embeddingLookup(table, ids), tf.gather(table, ids)).abs().max().dataSync()[0]);
  t.equal(forward, 0, 'forward is exactly a gather');
  t.same(tf.tidy(() => embeddingLookup(table, ids).shape), [2, 3, 3], 'shape [...ids, D]');
});
