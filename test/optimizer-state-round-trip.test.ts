/** Weights plus optimizer state, taken out and loaded into a fresh model and optimizer, reproduce the next step exactly. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../src/backend.js';
import { DEFAULTS, type OptimConfig } from '../src/config/schema.js';
import { LstmLanguageModel } from '../src/workloads/lm/lstm.js';
import { createOptimizer, flatToWeights, loadOptimizerState, optimizerState, weightsToFlat } from '../src/train/optim.js';
import { randomBatch } from './helpers/batches.js';
import { snapshot, tinyModel, trainStep } from './helpers/lm-train.js';

const classes = 11;
const config = tinyModel({ embedding: 4, hidden: 6, window: 4 });

function bitwiseEqual(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength)));
}

async function roundTrip(backend: BackendChoice, optim: OptimConfig) {
  await initBackend(backend);
  const batch = (k: number) => randomBatch(k, 3, config.window + 1, classes);
  const source = new LstmLanguageModel({ model: config, classes, seed: 1 });
  const sourceOpt = createOptimizer(optim);
  // After 20 steps Adam's running beta powers no longer equal pow(beta, step): the state must carry them.
  for (let k = 0; k < 20; k++) trainStep(source, sourceOpt, batch(k));

  const weights = weightsToFlat(source.variables);
  const state = await optimizerState(sourceOpt);
  // Moved as a worker would move them: every buffer transferred, none shared with a live tensor.
  const moved = structuredClone({ weights, state }, { transfer: [weights.buffer, ...state.map((s) => s.data.buffer)] as ArrayBuffer[] });

  trainStep(source, sourceOpt, batch(9));
  const expected = snapshot(source);

  const target = new LstmLanguageModel({ model: config, classes, seed: 2 });
  const targetOpt = createOptimizer(optim);
  trainStep(target, targetOpt, batch(5)); // a used optimizer: loading must replace its slots, not leak them
  const before = tf.memory().numTensors;
  flatToWeights(moved.weights, target.variables);
  await loadOptimizerState(targetOpt, moved.state);
  const leaked = tf.memory().numTensors - before;
  trainStep(target, targetOpt, batch(9));
  const identical = bitwiseEqual(snapshot(target), expected);
  for (const o of [sourceOpt, targetOpt]) o.dispose();
  for (const m of [source, target]) m.dispose();
  return { transferred: weights.length === 0, leaked, identical };
}

const cases = [
  ['wasm', 'adam'],
  ['wasm', 'momentum'],
  ['wasm', 'adagrad'],
  // cpu: dataSync returns the tensor's own storage, so the state must be copied before it can be transferred.
  ['cpu', 'adam'],
] as const;
for (const [backend, optimizer] of cases) {
  t.test(`${optimizer} on ${backend}`, async (t) => {
    const r = await roundTrip(backend, { ...DEFAULTS.optim, optimizer, lr: 0.05 });
    t.ok(r.transferred, 'the weights buffer was transferred');
    t.equal(r.leaked, 0, 'loading into a used optimizer leaks no tensors');
    t.ok(r.identical, 'the next step is bitwise identical');
  });
}

t.test('the state is named arrays: step counter first, then the slots', async (t) => {
  await initBackend('wasm');
  const model = new LstmLanguageModel({ model: config, classes, seed: 1 });
  const opt = createOptimizer({ ...DEFAULTS.optim });
  trainStep(model, opt, randomBatch(1, 2, config.window + 1, classes));
  const state = await optimizerState(opt);
  const n = model.variables.length;
  t.equal(state.length, 1 + 2 * n + 2, 'iter, m and v per variable, Adam\'s two beta powers');
  t.equal(state[0].name, 'iter');
  t.same(Array.from(state[0].data), [1]);
  t.same(state[1].shape, model.variables[0].shape);
  t.ok(state.every((s) => s.data instanceof Float32Array));
  opt.dispose();
  model.dispose();
});
