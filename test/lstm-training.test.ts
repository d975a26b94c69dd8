/** Training the LSTM on wasm: it learns, it is bitwise reproducible from its seed, and it leaks no tensors. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { DEFAULTS } from '../src/config/schema.js';
import { LstmLanguageModel } from '../src/workloads/lm/lstm.js';
import { taskLoss } from '../src/train/loss.js';
import { clipByGlobalNorm, createOptimizer, flatLength, flatToGrads, gradsToFlat, setLearningRate } from '../src/train/optim.js';
import { randomBatch } from './helpers/batches.js';
import { snapshot, tinyModel, trainStep } from './helpers/lm-train.js';

await initBackend('wasm');

const classes = 16;
const optim = { ...DEFAULTS.optim, lr: 0.03, clipNorm: 1 };

function train(seed: number, steps: number, dataSeed = 1) {
  const model = new LstmLanguageModel({ model: tinyModel(), classes, seed });
  const opt = createOptimizer(optim);
  const batch = randomBatch(dataSeed, 4, model.positions(1) + 1, classes);
  const losses = Array.from({ length: steps }, () => trainStep(model, opt, batch, optim.clipNorm));
  const weights = snapshot(model);
  opt.dispose();
  model.dispose();
  return { losses, weights };
}

t.test('the loss on a small batch falls over 30 Adam steps', async (t) => {
  const { losses } = train(1, 30);
  t.ok(Math.abs(losses[0] - Math.log(classes)) < 0.1, `starts near log(V): ${losses[0].toFixed(3)}`);
  t.ok(losses[29] < 0.6 * losses[0], `${losses[0].toFixed(3)} -> ${losses[29].toFixed(3)}`);
});

t.test('the same seed gives bitwise identical weights; another seed does not', async (t) => {
  const a = train(7, 5);
  const b = train(7, 5);
  const c = train(8, 5);
  t.same(a.losses, b.losses);
  t.ok(a.weights.every((w, i) => Buffer.from(w.buffer).equals(Buffer.from(b.weights[i].buffer))), 'identical bits');
  t.notOk(Buffer.from(a.weights[1].buffer).equals(Buffer.from(c.weights[1].buffer)), 'different seed, different weights');
});

t.test('the tensor count stays flat across training steps (the replica\'s step, every option on)', async (t) => {
  const model = new LstmLanguageModel({ model: tinyModel({ layers: 2, layerNorm: true, carryState: true }), classes, seed: 3 });
  const opt = createOptimizer(optim);
  const vars = model.variables as tf.Variable[];
  const flat = new Float32Array(flatLength(vars));
  const counts: number[] = [];
  for (let step = 0; step < 12; step++) {
    const batch = randomBatch(100 + step, 3, model.positions(1) + 1, classes);
    const { value, grads } = tf.tidy(() => tf.variableGrads(() => taskLoss(model.logits(batch), model.labels(batch)), vars));
    gradsToFlat(grads, vars, flat);
    tf.dispose([value, ...Object.values(grads)]);
    setLearningRate(opt, optim.lr / (step + 1));
    tf.tidy(() => {
      opt.applyGradients(clipByGlobalNorm(flatToGrads(flat, vars), optim.clipNorm).grads);
    });
    counts.push(tf.memory().numTensors);
  }
  // Step 1 creates Adam's slots and the carried state; after that nothing may accumulate.
  t.same(new Set(counts.slice(1)).size, 1, `tensors after each step: ${counts.join(' ')}`);
  opt.dispose();
  model.dispose();
});
