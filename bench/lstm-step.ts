/**
 * Time of one training step (forward, backward, Adam update) of the LSTM language model on one thread, with and
 * without the gradient fixes of src/tf/grad-fixes.ts. Prints ms per step and tokens per second.
 *
 *   npx tsx bench/lstm-step.ts [preset=lm-small] [backend=wasm] [steps=10] [key=value ...]
 *
 * key=value pairs override the preset like `--set` (e.g. corpus.vocabSize=16 to time the recurrence alone).
 */
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend, type BackendChoice } from '../src/backend.js';
import { loadConfig } from '../src/config/load.js';
import { lmConfig } from '../src/workloads/lm/config.js';
import { LstmLanguageModel } from '../src/workloads/lm/lstm.js';
import { installGradFixes, uninstallGradFixes } from '../src/tf/grad-fixes.js';
import { taskLoss } from '../src/train/loss.js';

const [preset = 'lm-small', backend = 'wasm', stepsArg = '10', ...set] = process.argv.slice(2);
const steps = Number(stepsArg);
const config = loadConfig({ preset, set });
const info = await initBackend(backend as BackendChoice);
console.log(describeBackend(info));

const { model: modelConfig, optim, corpus } = lmConfig(config);
const classes = corpus.vocabSize;
const rows = optim.batch;
const cols = modelConfig.window + 1;
const data = new Int32Array(rows * cols);
let s = config.seed;
for (let k = 0; k < data.length; k++) {
  s = (s * 1103515245 + 12345) >>> 0;
  data[k] = s % classes;
}
const batch = { rows, fields: { tokens: data } };

function measure(label: string): number {
  const model = new LstmLanguageModel({ model: modelConfig, classes, seed: config.seed });
  const opt: tf.Optimizer = tf.train.adam(optim.lr);
  const step = () => {
    const cost = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => taskLoss(model.logits(batch), model.labels(batch)), model.variables as tf.Variable[]);
      opt.applyGradients(grads);
      return value;
    });
    cost.dataSync();
    cost.dispose();
  };
  step(); // warm-up: kernel set-up and first allocations
  const t0 = performance.now();
  for (let k = 0; k < steps; k++) step();
  const ms = (performance.now() - t0) / steps;
  const tokens = rows * modelConfig.window;
  console.log(`${label}: ${ms.toFixed(1)} ms/step, ${Math.round((tokens * 1000) / ms)} tokens/s (${rows} x ${modelConfig.window} tokens a step)`);
  opt.dispose();
  model.dispose();
  return ms;
}

// Interleaved rounds, best of each: the machine is shared, so single timings are noisy.
const rounds = 3;
const best = { all: Infinity, noSharing: Infinity, noMatMul: Infinity, none: Infinity };
for (let r = 0; r < rounds; r++) {
  installGradFixes();
  best.all = Math.min(best.all, measure('all fixes'));
  uninstallGradFixes('wasmKernels');
  best.noSharing = Math.min(best.noSharing, measure('stock wasm kernels'));
  installGradFixes();
  uninstallGradFixes('matMulGradient');
  best.noMatMul = Math.min(best.noMatMul, measure('stock matMul gradient'));
  uninstallGradFixes('all');
  best.none = Math.min(best.none, measure('no fixes'));
}
installGradFixes();
const tokens = rows * modelConfig.window;
const line = (label: string, ms: number) => `${label}: ${ms.toFixed(1)} ms/step, ${Math.round((tokens * 1000) / ms)} tokens/s`;
console.log(`best of ${rounds}:\n${line('all fixes', best.all)}\n${line('stock wasm kernels', best.noSharing)}\n${line('stock matMul gradient', best.noMatMul)}\n${line('no fixes', best.none)}`);
const ratio = (ms: number) => `${(ms / best.all).toFixed(2)}x`;
console.log(`speed-up from the matMul gradient fix: ${ratio(best.noMatMul)}; wasm kernel fixes: ${ratio(best.noSharing)}; all: ${ratio(best.none)}`);
