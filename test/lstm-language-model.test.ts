/** The LSTM language model computes what an LSTM computes: checked against tfjs-layers, across windows, on wasm. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { LstmLanguageModel } from '../src/workloads/lm/lstm.js';
import { randomBatch } from './helpers/batches.js';
import { tinyModel } from './helpers/lm-train.js';

await initBackend('wasm');

const classes = 17;

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

t.test('variables come in a fixed order with stable names and the configured shapes', async (t) => {
  const model = new LstmLanguageModel({ model: tinyModel({ layers: 2, layerNorm: true }), classes, seed: 1 });
  t.same(model.variableNames, [
    'embedding',
    'lstm0/kernel', 'lstm0/recurrentKernel', 'lstm0/bias', 'lstm0/norm/gain', 'lstm0/norm/bias',
    'lstm1/kernel', 'lstm1/recurrentKernel', 'lstm1/bias', 'lstm1/norm/gain', 'lstm1/norm/bias',
    'output/kernel', 'output/bias',
  ]);
  t.same(model.variables.map((v) => v.shape), [
    [17, 8], [8, 48], [12, 48], [48], [12], [12], [12, 48], [12, 48], [48], [12], [12], [12, 17], [17],
  ]);
  const bias = Array.from(model.variables[3].dataSync());
  t.same(bias, [...Array(12).fill(0), ...Array(12).fill(1), ...Array(24).fill(0)], 'forget-gate bias starts at 1');
  const other = new LstmLanguageModel({ model: tinyModel({ layers: 2, layerNorm: true }), classes, seed: 1 });
  t.not(other.variables[0].name, model.variables[0].name, 'two live models do not collide in tfjs\'s registry');
  t.equal(maxDiff(other.variables[1].dataSync() as Float32Array, model.variables[1].dataSync() as Float32Array), 0, 'same seed, same init');
  model.dispose();
  other.dispose();
});

t.test('logits equal a tfjs-layers LSTM stack with the same weights', async (t) => {
  const config = tinyModel({ layers: 2 });
  const model = new LstmLanguageModel({ model: config, classes, seed: 2 });
  const batch = randomBatch(3, 4, config.window + 1, classes);
  const [embedding, k0, r0, b0, k1, r1, b1, outK, outB] = model.variables;
  const reference = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: classes, outputDim: config.embedding, inputLength: config.window, weights: [embedding] }),
      tf.layers.lstm({ units: config.hidden, returnSequences: true, recurrentActivation: 'sigmoid', weights: [k0, r0, b0] }),
      tf.layers.lstm({ units: config.hidden, returnSequences: true, recurrentActivation: 'sigmoid', weights: [k1, r1, b1] }),
      tf.layers.dense({ units: classes, weights: [outK, outB] }),
    ],
  });
  const inputs = tf.tensor2d(
    Array.from({ length: batch.rows }, (_, b) => Array.from(batch.data.subarray(b * batch.cols, b * batch.cols + config.window))),
    undefined,
    'int32',
  );
  const expected = tf.tidy(() => (reference.predict(inputs) as tf.Tensor).reshape([-1, classes]).dataSync() as Float32Array);
  const actual = tf.tidy(() => model.logits(batch).dataSync() as Float32Array);
  t.equal(actual.length, model.positions(batch.rows) * classes);
  t.ok(maxDiff(actual, expected) < 1e-5, `largest difference ${maxDiff(actual, expected)}`);
  const labels = tf.tidy(() => Array.from(model.labels(batch).dataSync()));
  t.same(labels.slice(0, config.window), Array.from(batch.data.subarray(1, config.window + 1)), 'labels: the next tokens, row-major');
  reference.dispose();
  inputs.dispose();
  model.dispose();
});

t.test('carryState continues across windows exactly as one long window would', async (t) => {
  const T = 5;
  const long = randomBatch(4, 3, 2 * T + 1, classes);
  const windowAt = (start: number) => {
    const data = new Int32Array(3 * (T + 1));
    for (let b = 0; b < 3; b++) data.set(long.data.subarray(b * long.cols + start, b * long.cols + start + T + 1), b * (T + 1));
    return { rows: 3, fields: { tokens: data } };
  };
  const before = tf.memory().numTensors;
  const carried = new LstmLanguageModel({ model: tinyModel({ window: T, carryState: true, layers: 2 }), classes, seed: 9 });
  const whole = new LstmLanguageModel({ model: tinyModel({ window: 2 * T, layers: 2 }), classes, seed: 9 });
  const weights = tf.memory().numTensors;
  tf.tidy(() => {
    carried.logits(windowAt(0));
  });
  const second = tf.tidy(() => carried.logits(windowAt(T)).dataSync() as Float32Array);
  t.equal(tf.memory().numTensors - weights, 4, 'only the carried (h, c) of two layers stay alive');
  const all = tf.tidy(() => whole.logits(long).dataSync() as Float32Array);
  const secondHalf = new Float32Array(second.length);
  for (let b = 0; b < 3; b++) secondHalf.set(all.subarray((b * 2 * T + T) * classes, (b * 2 * T + 2 * T) * classes), b * T * classes);
  t.ok(maxDiff(second, secondHalf) < 1e-5, `largest difference ${maxDiff(second, secondHalf)}`);

  carried.resetState();
  const fresh = new LstmLanguageModel({ model: tinyModel({ window: T, layers: 2 }), classes, seed: 9 });
  const afterReset = tf.tidy(() => carried.logits(windowAt(T)).dataSync() as Float32Array);
  const fromZero = tf.tidy(() => fresh.logits(windowAt(T)).dataSync() as Float32Array);
  t.equal(maxDiff(afterReset, fromZero), 0, 'after resetState the window starts from zeros');
  for (const m of [carried, whole, fresh]) m.dispose();
  t.equal(tf.memory().numTensors, before, 'dispose releases weights and state');
});

t.test('a batch that does not fit the model is an error that says why', async (t) => {
  const model = new LstmLanguageModel({ model: tinyModel(), classes, seed: 1 });
  t.throws(() => tf.tidy(() => model.logits(randomBatch(1, 2, 5, classes))), /7 \(inputs plus the next token\)/);
  const bad = randomBatch(1, 2, 7, classes);
  bad.data[3] = classes;
  t.throws(() => tf.tidy(() => model.logits(bad)), /token id 17 is outside the vocabulary \[0, 17\)/);
  model.dispose();
});
