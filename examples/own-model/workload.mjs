// A workload of your own: your data, your tf.sequential model, codistilled by codistill.
//
//   codistill train -p examples/own-model/config.json
//
// The module's default export is a Workload. codistill loads it by path in every actor (worker threads load
// modules, not closures), so it must be importable on its own: plain ES module, no top-level await.
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { arrayData } from 'codistill';

/** Config sections this workload adds (strict, with defaults): `data.*` and `model.*` in the run's config. */
const sections = {
  data: z.strictObject({
    rows: z.number().int().min(100).default(6000).describe('points generated (a tenth held out for validation)'),
    noise: z.number().min(0).default(0.25).describe('standard deviation of the noise around each spiral arm'),
    seed: z.number().int().min(0).default(7).describe('seed of the generated points'),
  }),
  model: z.strictObject({
    hidden: z.number().int().min(1).default(32).describe('units of each of the two hidden layers'),
  }),
};

/** "Your own arrays": three interleaved spirals in the plane, labelled by arm. Seeded, so every actor agrees. */
function spirals({ rows, noise, seed }) {
  let s = seed >>> 0 || 1;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const x = new Float32Array(rows * 2);
  const label = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const arm = i % 3;
    const r = uniform() * 3;
    const angle = r * 1.8 + (arm * 2 * Math.PI) / 3;
    x[2 * i] = r * Math.cos(angle) + noise * gauss();
    x[2 * i + 1] = r * Math.sin(angle) + noise * gauss();
    label[i] = arm;
  }
  const split = Math.floor(rows * 0.9);
  return {
    train: { rows: split, fields: { x: x.slice(0, 2 * split), label: label.slice(0, split) } },
    validation: { rows: rows - split, fields: { x: x.slice(2 * split), label: label.slice(split) } },
  };
}

/** A tf.sequential classifier behind codistill's Model interface: logits and labels of a batch. */
class SequentialModel {
  classes = 3;

  constructor({ hidden }, seed) {
    const init = (k) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
    this.net = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [2], units: hidden, activation: 'relu', kernelInitializer: init(1) }),
        tf.layers.dense({ units: hidden, activation: 'relu', kernelInitializer: init(2) }),
        tf.layers.dense({ units: this.classes, kernelInitializer: init(3) }),
      ],
    });
    // The trainable variables in a fixed order: gradients, the all-reduce and snapshots all follow it.
    this.variables = this.net.trainableWeights.map((w) => w.read());
  }

  logits(batch, at) {
    const y = this.net.apply(tf.tensor2d(batch.fields.x, [batch.rows, 2]));
    return at ? tf.gather(y, at) : y;
  }

  labels(batch) {
    return tf.tensor1d(batch.fields.label, 'int32');
  }

  positions(rows) {
    return rows;
  }

  dispose() {
    this.net.dispose();
  }
}

export default {
  kind: 'spirals',
  sections,
  unit: 'points',
  metrics: ['accuracy'],
  formats: [],
  describe: (config) => `Model: a tf.sequential MLP (${config.model.hidden} units x 2) on ${config.data.rows} generated spiral points.`,
  // Nothing to ingest: the arrays are made in memory.
  dataPath: () => '.',
  ingest: async () => ({ upToDate: true, header: [], rows: [], notes: ['the spirals are generated in memory: nothing to ingest'] }),
  open: async (config) => arrayData({ classes: 3, ...spirals(config.data) }),
  buildModel: ({ config, seed }) => new SequentialModel(config.model, seed),
};
