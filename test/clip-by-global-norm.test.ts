/** Clipping by the global norm: one scale for all gradients, applied only above the limit; the norm is reported. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { clipByGlobalNorm } from '../src/train/optim.js';

await tf.setBackend('cpu');

// Global norm of these: sqrt(9 + 16 + 144) = 13.
const grads = () => ({ a: tf.tensor1d([3, 4]), b: tf.tensor2d([[12]]) });

t.test('above the limit every gradient shrinks by the same factor', async (t) => {
  tf.tidy(() => {
    const { grads: clipped, norm } = clipByGlobalNorm(grads(), 6.5);
    t.equal(norm, 13);
    t.same(Array.from(clipped.a.dataSync()), [1.5, 2]);
    t.same(Array.from(clipped.b.dataSync()), [6]);
    t.same(clipped.b.shape, [1, 1]);
  });
});

t.test('at or below the limit, and with clipping off, the gradients pass unchanged', async (t) => {
  tf.tidy(() => {
    for (const limit of [13, 100, 0]) {
      const input = grads();
      const { grads: out, norm } = clipByGlobalNorm(input, limit);
      t.equal(norm, 13, `limit ${limit}: the norm is still reported`);
      t.equal(out.a, input.a, `limit ${limit}: the same tensors`);
    }
  });
});

t.test('no gradients: norm 0', async (t) => {
  t.equal(clipByGlobalNorm({}, 1).norm, 0);
});
