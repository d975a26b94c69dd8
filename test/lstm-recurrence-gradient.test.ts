/** The hand-written backward pass of the LSTM recurrence equals the tape's gradient of the same recurrence. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { lstmRecurrence } from '../src/workloads/lm/lstm-recurrence.js';

await initBackend('cpu');

const T = 4;
const B = 3;
const H = 5;

/** The textbook recurrence, left to the tape: the reference. */
function reference(xw: tf.Tensor2D, u: tf.Tensor2D, h0: tf.Tensor2D, c0: tf.Tensor2D) {
  let h = h0;
  let c = c0;
  const hs: tf.Tensor2D[] = [];
  for (let t = 0; t < T; t++) {
    const z = tf.add(tf.slice(xw, [t * B, 0], [B, 4 * H]), tf.matMul(h, u));
    const [i, f, g, o] = tf.split(z, 4, 1);
    c = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g)));
    h = tf.mul(tf.sigmoid(o), tf.tanh(c));
    hs.push(h);
  }
  return { sequence: tf.concat(hs, 0), h, c };
}

const inputs = [
  tf.randomUniform([T * B, 4 * H], -1, 1, 'float32', 1),
  tf.randomUniform([H, 4 * H], -1, 1, 'float32', 2),
  tf.randomUniform([B, H], -1, 1, 'float32', 3),
  tf.randomUniform([B, H], -1, 1, 'float32', 4),
] as tf.Tensor2D[];
// Weights on every output, the final c included, so every path of the backward pass is exercised.
const wSeq = tf.randomUniform([T * B, H], -1, 1, 'float32', 5);
const wH = tf.randomUniform([B, H], -1, 1, 'float32', 6);
const wC = tf.randomUniform([B, H], -1, 1, 'float32', 7);

function gradients(recurrence: typeof lstmRecurrence) {
  return tf.tidy(() => {
    const loss = (xw: tf.Tensor, u: tf.Tensor, h0: tf.Tensor, c0: tf.Tensor) => {
      const r = recurrence(xw as tf.Tensor2D, u as tf.Tensor2D, h0 as tf.Tensor2D, c0 as tf.Tensor2D);
      return tf.addN([tf.sum(tf.mul(r.sequence, wSeq)), tf.sum(tf.mul(r.h, wH)), tf.sum(tf.mul(r.c, wC))]) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(loss)(inputs);
    return { value: value.dataSync()[0], grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}

t.test('forward values and all four gradients match the tape\'s', async (t) => {
  const mine = gradients(lstmRecurrence);
  const ref = gradients(reference);
  t.ok(Math.abs(mine.value - ref.value) < 1e-4, `loss ${mine.value} vs ${ref.value}`);
  ['projected', 'recurrentKernel', 'h0', 'c0'].forEach((name, k) => {
    const worst = Math.max(...mine.grads[k].map((v, j) => Math.abs(v - ref.grads[k][j])));
    t.ok(worst < 1e-5, `${name}: largest difference ${worst}`);
  });
});

t.test('a forward pass alone leaves no tensors behind', async (t) => {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    lstmRecurrence(inputs[0], inputs[1], inputs[2], inputs[3]);
  });
  t.equal(tf.memory().numTensors, before);
});
