/**
 * The paper's click-through model: one embedding table shared by the 26 hashed categorical features, their 26
 * embeddings concatenated with the 13 dense features, ReLU layers, and one logistic output z.
 *
 * The logits are [0, z]: softmax then gives p(click) = sigmoid(z) and the run's softmax cross-entropy is the log
 * loss, so the binary task trains and distills through the same code as the others.
 *
 * Written for the wasm backend, as the language model is: the lookup's gradient is a scatter (tf.gather's needs
 * UnsortedSegmentSum, which wasm lacks), and biases ride inside their matMuls (`affine`) instead of paying for
 * wasm's slow reduction over the batch axis. Every method that allocates is meant to run inside the trainer's tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';
import { affine } from '../../tf/affine.js';
import { variableMaker } from '../../tf/variables.js';
import { embeddingLookup } from '../../tf/grad-fixes.js';
import type { Batch, Model } from '../workload.js';

export interface ClickModelOptions {
  /** Width of each categorical feature's embedding. */
  embedding: number;
  /** Units of each ReLU layer, in order. */
  hidden: number[];
  /** Rows of the shared embedding table: categorical ids are hash buckets in [0, buckets). */
  buckets: number;
  /** Dense features per row (13 for Criteo). */
  dense: number;
  /** Categorical features per row (26 for Criteo). */
  categorical: number;
  seed: number;
}

interface Layer {
  kernel: tf.Variable;
  bias: tf.Variable;
}

export class ClickModel implements Model {
  readonly classes = 2;
  readonly variables: readonly tf.Variable[];
  /** Stable names of `variables`, in the same order, without the per-instance prefix (`hidden0/kernel`, ...). */
  readonly variableNames: readonly string[];
  private readonly o: Pick<ClickModelOptions, 'buckets' | 'dense' | 'categorical'>;
  private readonly embedding: tf.Variable;
  private readonly layers: readonly Layer[];
  private readonly output: Layer;

  constructor(o: ClickModelOptions) {
    this.o = { buckets: o.buckets, dense: o.dense, categorical: o.categorical };
    const { make, seedOf, glorot, names, variables } = variableMaker('click', o.seed);
    const dense = (name: string, rows: number, cols: number): Layer => ({
      kernel: make(`${name}/kernel`, () => glorot(`${name}/kernel`, [rows, cols])),
      bias: make(`${name}/bias`, () => tf.zeros([cols])),
    });

    this.embedding = make('embedding', () => tf.randomUniform([o.buckets, o.embedding], -0.05, 0.05, 'float32', seedOf('embedding')));
    let width = o.categorical * o.embedding + o.dense;
    this.layers = o.hidden.map((units, l) => {
      const layer = dense(`hidden${l}`, width, units);
      width = units;
      return layer;
    });
    this.output = dense('output', width, 1);
    this.variables = variables;
    this.variableNames = names;
  }

  positions(rows: number): number {
    return rows;
  }

  logits(batch: Batch, at?: tf.Tensor1D): tf.Tensor2D {
    const { dense, categorical } = this.checked(batch);
    const { rows } = batch;
    let ids: tf.Tensor2D = tf.tensor2d(categorical, [rows, this.o.categorical], 'int32');
    let values: tf.Tensor2D = tf.tensor2d(dense, [rows, this.o.dense]);
    // Rows are picked from the inputs: the data needs no gradient, so a partial forward pass costs only its rows.
    if (at) [ids, values] = [tf.gather(ids, at), tf.gather(values, at)];
    const picked = ids.shape[0];
    const embedded = tf.reshape(embeddingLookup(this.embedding as tf.Tensor2D, ids), [picked, -1]);
    let x = tf.concat([embedded, values], 1) as tf.Tensor2D;
    for (const layer of this.layers) x = tf.relu(affine(x, layer.kernel, layer.bias));
    const z = affine(x, this.output.kernel, this.output.bias);
    return tf.concat([tf.zerosLike(z), z], 1) as tf.Tensor2D;
  }

  labels(batch: Batch): tf.Tensor1D {
    const label = batch.fields.label;
    if (!(label instanceof Uint8Array) || label.length !== batch.rows) {
      throw new Error(`a click batch needs a uint8 field "label" of ${batch.rows} values`);
    }
    for (const y of label) if (y > 1) throw new Error(`label ${y} is not a click label (0 or 1)`);
    return tf.tensor1d(Int32Array.from(label), 'int32');
  }

  dispose(): void {
    tf.dispose(this.variables as tf.Variable[]);
  }

  private checked(batch: Batch): { dense: Float32Array; categorical: Int32Array } {
    const { dense, categorical } = batch.fields;
    const { rows } = batch;
    if (!(dense instanceof Float32Array) || dense.length !== rows * this.o.dense) {
      throw new Error(`a click batch needs a float32 field "dense" of rows x ${this.o.dense} = ${rows * this.o.dense} values`);
    }
    if (!(categorical instanceof Int32Array) || categorical.length !== rows * this.o.categorical) {
      const size = rows * this.o.categorical;
      throw new Error(`a click batch needs an int32 field "categorical" of rows x ${this.o.categorical} = ${size} values`);
    }
    for (const id of categorical) {
      // Checked before any kernel runs, so that every backend fails alike and the message names the table's size.
      if (id < 0 || id >= this.o.buckets) throw new Error(`categorical id ${id} is outside the hash buckets [0, ${this.o.buckets})`);
    }
    return { dense, categorical };
  }
}

