/**
 * The paper's language model: token embedding -> L stacked LSTM layers -> softmax over the vocabulary.
 *
 * A batch row is a window of T+1 tokens: the first T are the inputs, the last T the labels (truncated
 * back-propagation through time over the window). Logits come out row-major: position b*T + t is row b, step t.
 *
 * Written for the wasm backend on few cores, where a kernel call costs more than its arithmetic at these sizes:
 * - the input projection x·W of a layer runs as ONE matMul over all T*B positions before the recurrence, so a
 *   step only adds h·U (one matMul for all four gates) and the elementwise gate math; the recurrence has a
 *   hand-written backward pass (./lstm-recurrence.ts) of a few kernels a step;
 * - the output projection runs as one matMul over all positions; layer norm, when on, also runs once per layer;
 * - biases ride inside those matMuls (`affine`): a broadcast add's bias gradient is a sum over axis 0, which wasm
 *   runs as a full transpose plus a reduction (about 35 ms for the logits of lm-small, against 2 ms as a matMul);
 * - on the wasm kernels no matMul is transposed (the gradient fix in src/tf/grad-fixes.ts keeps the backward pass
 *   plain too); on the native kernels the recurrence, the dense layers and the loss run in C (src/tf/native-kernels.ts);
 * - the embedding gradient is a scatter, not tf.gather's UnsortedSegmentSum (missing on wasm).
 * Every method that allocates is meant to run inside the trainer's tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';
import { affine } from '../../tf/affine.js';
import { variableMaker } from '../../tf/variables.js';
import { embeddingLookup } from '../../tf/grad-fixes.js';
import { lstmRecurrence } from './lstm-recurrence.js';
import type { Batch, Model } from '../workload.js';
import type { ModelConfig } from './config.js';
import { type TokenBatch, tokensOf } from './tokens.js';

export interface LstmSpec {
  model: ModelConfig;
  /** The vocabulary size. */
  classes: number;
  seed: number;
}

const LAYER_NORM_EPSILON = 1e-5;

interface LstmLayer {
  /** [input, 4H]: input projection for the gates, ordered i, f, g, o. */
  kernel: tf.Variable;
  /** [H, 4H]: recurrent projection, same gate order. */
  recurrentKernel: tf.Variable;
  /** [4H]: the forget gate's slice starts at 1 so early training remembers instead of forgetting. */
  bias: tf.Variable;
  norm?: { gain: tf.Variable; bias: tf.Variable };
}

interface LayerState {
  h: tf.Tensor2D;
  c: tf.Tensor2D;
}

export class LstmLanguageModel implements Model {
  readonly classes: number;
  readonly variables: readonly tf.Variable[];
  /** Stable names of `variables`, in the same order, without the per-instance prefix (`lstm0/kernel`, ...). */
  readonly variableNames: readonly string[];
  private readonly window: number;
  private readonly hidden: number;
  private readonly carryState: boolean;
  private readonly embedding: tf.Variable;
  private readonly layers: readonly LstmLayer[];
  private readonly outputKernel: tf.Variable;
  private readonly outputBias: tf.Variable;
  /** Final (h, c) of each layer from the previous window, when carryState is on. */
  private state: LayerState[] | undefined;

  constructor(spec: LstmSpec) {
    const c: ModelConfig = spec.model;
    this.classes = spec.classes;
    this.window = c.window;
    this.hidden = c.hidden;
    this.carryState = c.carryState;
    const { make, seedOf, glorot, names, variables } = variableMaker('lstm-lm', spec.seed);

    const H = c.hidden;
    this.embedding = make('embedding', () => tf.randomUniform([spec.classes, c.embedding], -0.05, 0.05, 'float32', seedOf('embedding')));
    const layers: LstmLayer[] = [];
    for (let l = 0; l < c.layers; l++) {
      const input = l === 0 ? c.embedding : H;
      const layer: LstmLayer = {
        kernel: make(`lstm${l}/kernel`, () => glorot(`lstm${l}/kernel`, [input, 4 * H])),
        recurrentKernel: make(`lstm${l}/recurrentKernel`, () => glorot(`lstm${l}/recurrentKernel`, [H, 4 * H])),
        bias: make(`lstm${l}/bias`, () => tf.concat([tf.zeros([H]), tf.ones([H]), tf.zeros([2 * H])])),
      };
      if (c.layerNorm) {
        layer.norm = {
          gain: make(`lstm${l}/norm/gain`, () => tf.ones([H])),
          bias: make(`lstm${l}/norm/bias`, () => tf.zeros([H])),
        };
      }
      layers.push(layer);
    }
    this.layers = layers;
    this.outputKernel = make('output/kernel', () => glorot('output/kernel', [H, spec.classes]));
    this.outputBias = make('output/bias', () => tf.zeros([spec.classes]));
    this.variables = variables;
    this.variableNames = names;
  }

  positions(rows: number): number {
    return rows * this.window;
  }

  logits(batch: Batch, at?: tf.Tensor1D): tf.Tensor2D {
    const { rows: B } = batch;
    const T = this.window;
    let x: tf.Tensor2D = embeddingLookup(this.embedding as tf.Tensor2D, this.timeMajorInputs(batch)) as tf.Tensor2D;
    const initial = this.initialState(B);
    const final: LayerState[] = [];
    for (let l = 0; l < this.layers.length; l++) {
      const out = this.runLayer(this.layers[l], x, initial[l]);
      final.push(out.last);
      x = out.sequence;
    }
    if (this.carryState) this.keepState(final);
    // [T*B, H] time-major -> [B*T, H] row-major, then the one big projection onto the vocabulary.
    const rowMajor = tf.reshape(tf.transpose(tf.reshape(x, [T, B, this.hidden]), [1, 0, 2]), [B * T, this.hidden]) as tf.Tensor2D;
    // Gathering rows is forward-only here (its gradient would need UnsortedSegmentSum, which wasm lacks).
    return affine(at ? (tf.gather(rowMajor, at) as tf.Tensor2D) : rowMajor, this.outputKernel, this.outputBias);
  }

  labels(batch: Batch): tf.Tensor1D {
    const { data, rows, cols } = this.checked(batch);
    const T = this.window;
    const labels = new Int32Array(rows * T);
    for (let b = 0; b < rows; b++) labels.set(data.subarray(b * cols + 1, b * cols + 1 + T), b * T);
    return tf.tensor1d(labels, 'int32');
  }

  /** Forgets the carried LSTM state: the next window starts from zeros (a new stream, or after evaluation). */
  resetState(): void {
    if (this.state) tf.dispose(this.state.flatMap((s) => [s.h, s.c]));
    this.state = undefined;
  }

  dispose(): void {
    this.resetState();
    tf.dispose(this.variables as tf.Variable[]);
  }

  /** One layer over the whole window: x [T*B, in] time-major -> h sequence [T*B, H] time-major. */
  private runLayer(layer: LstmLayer, x: tf.Tensor2D, start: LayerState) {
    // The input half of every step's gates, for all T steps in one matMul; the recurrence adds h·U step by step.
    const projected = affine(x, layer.kernel, layer.bias);
    const { sequence, h, c } = lstmRecurrence(projected, layer.recurrentKernel as tf.Tensor2D, start.h, start.c);
    const normalised = layer.norm ? layerNorm(sequence, layer.norm.gain, layer.norm.bias) : sequence;
    return { sequence: normalised, last: { h, c } };
  }

  private initialState(B: number): LayerState[] {
    if (this.state && this.state[0].h.shape[0] === B) {
      // Clones share the kept data but belong to the caller's tidy: the carried tensors can be replaced freely.
      return this.state.map((s) => ({ h: s.h.clone(), c: s.c.clone() }));
    }
    return this.layers.map(() => ({ h: tf.zeros([B, this.hidden]), c: tf.zeros([B, this.hidden]) }));
  }

  private keepState(final: LayerState[]): void {
    this.resetState();
    this.state = final.map((s) => ({ h: tf.keep(s.h.clone()), c: tf.keep(s.c.clone()) }));
  }

  /** Input ids [T*B] ordered time-major (t*B + b), so each step's rows are one contiguous slice. */
  private timeMajorInputs(batch: Batch): tf.Tensor1D {
    const { data, rows, cols } = this.checked(batch);
    const T = this.window;
    const ids = new Int32Array(T * rows);
    for (let b = 0; b < rows; b++) {
      for (let t = 0; t < T; t++) ids[t * rows + b] = data[b * cols + t];
    }
    return tf.tensor1d(ids, 'int32');
  }

  private checked(b: Batch): TokenBatch {
    const batch = tokensOf(b);
    if (batch.cols !== this.window + 1) {
      throw new Error(`batch rows have ${batch.cols} tokens; model.window = ${this.window} needs ${this.window + 1} (inputs plus the next token)`);
    }
    if (batch.data.length < batch.rows * batch.cols) {
      throw new Error(`batch data holds ${batch.data.length} tokens, fewer than rows x cols = ${batch.rows * batch.cols}`);
    }
    for (let k = 0; k < batch.rows * batch.cols; k++) {
      const id = batch.data[k];
      // wasm's gather does not check bounds: an id outside the vocabulary would read another row's memory.
      if (id < 0 || id >= this.classes) throw new Error(`token id ${id} is outside the vocabulary [0, ${this.classes})`);
    }
    return batch;
  }
}


/** Normalises each row of x [N, H] to zero mean and unit variance, then scales and shifts it. */
function layerNorm(x: tf.Tensor2D, gain: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, 1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LAYER_NORM_EPSILON))), gain), bias) as tf.Tensor2D;
}
