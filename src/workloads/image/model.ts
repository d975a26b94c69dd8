/**
 * A small convolutional net for MNIST: per entry of `filters`, a 'same' convolution, ReLU and a 2x2 max-pool; then
 * a ReLU dense layer and the class logits.
 *
 * Written for the wasm backend, as the language model is:
 * - convolutions and pooling come from ./conv.ts, whose gradients wasm can run (it has no Conv2DBackpropFilter);
 * - each block pools before adding its bias and applying ReLU: both commute with a max over the window (the bias
 *   is per channel, ReLU is monotone), so the result is the same and the elementwise work a quarter;
 * - the dense biases ride inside their matMuls (`affine`), so their gradients come out of the matMul's backward
 *   pass instead of wasm's slow reduction over the batch axis.
 * Every method that allocates is meant to run inside the trainer's tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';
import { affine } from '../../tf/affine.js';
import { variableMaker } from '../../tf/variables.js';
import type { Batch, Model } from '../workload.js';
import { conv2dSame, maxPool2x2 } from './conv.js';

export interface ImageModelOptions {
  /** Output channels of each convolution, in order. */
  filters: number[];
  /** Side of the square kernels. */
  kernel: number;
  /** Units of the hidden dense layer. */
  dense: number;
  height: number;
  width: number;
  classes: number;
  seed: number;
}

interface ConvBlock {
  /** [kernel, kernel, in, out] */
  kernel: tf.Variable;
  /** [out] */
  bias: tf.Variable;
}

export class ImageModel implements Model {
  readonly classes: number;
  readonly variables: readonly tf.Variable[];
  /** Stable names of `variables`, in the same order, without the per-instance prefix (`conv0/kernel`, ...). */
  readonly variableNames: readonly string[];
  private readonly height: number;
  private readonly width: number;
  private readonly blocks: readonly ConvBlock[];
  private readonly denseKernel: tf.Variable;
  private readonly denseBias: tf.Variable;
  private readonly outputKernel: tf.Variable;
  private readonly outputBias: tf.Variable;

  constructor(o: ImageModelOptions) {
    this.classes = o.classes;
    this.height = o.height;
    this.width = o.width;
    const maker = variableMaker('image', o.seed);
    const { make, names, variables } = maker;
    const glorot = (name: string, shape: number[], fanIn: number, fanOut: number) => make(name, () => maker.glorot(name, shape, fanIn, fanOut));

    const area = o.kernel * o.kernel;
    let channels = 1;
    let [h, w] = [o.height, o.width];
    const blocks: ConvBlock[] = [];
    o.filters.forEach((out, l) => {
      blocks.push({
        kernel: glorot(`conv${l}/kernel`, [o.kernel, o.kernel, channels, out], area * channels, area * out),
        bias: make(`conv${l}/bias`, () => tf.zeros([out])),
      });
      channels = out;
      [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
    });
    if (h < 1 || w < 1) {
      throw new Error(`${o.filters.length} pooling layers shrink a ${o.height}x${o.width} image to nothing: use fewer filters`);
    }
    this.blocks = blocks;
    this.denseKernel = glorot('dense/kernel', [h * w * channels, o.dense], h * w * channels, o.dense);
    this.denseBias = make('dense/bias', () => tf.zeros([o.dense]));
    this.outputKernel = glorot('output/kernel', [o.dense, o.classes], o.dense, o.classes);
    this.outputBias = make('output/bias', () => tf.zeros([o.classes]));
    this.variables = variables;
    this.variableNames = names;
  }

  positions(rows: number): number {
    return rows;
  }

  logits(batch: Batch, at?: tf.Tensor1D): tf.Tensor2D {
    let x: tf.Tensor4D = tf.tensor4d(this.pixels(batch), [batch.rows, this.height, this.width, 1]);
    // Rows are picked before any layer: the data needs no gradient, so a partial forward pass costs only its rows.
    if (at) x = tf.gather(x, at);
    this.blocks.forEach((b, l) => {
      const pooled = maxPool2x2(conv2dSame(x, b.kernel as tf.Tensor4D, l > 0));
      x = tf.relu(tf.add(pooled, b.bias)) as tf.Tensor4D;
    });
    const flat = tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
    const hidden = tf.relu(affine(flat, this.denseKernel, this.denseBias));
    return affine(hidden, this.outputKernel, this.outputBias);
  }

  labels(batch: Batch): tf.Tensor1D {
    const label = batch.fields.label;
    if (!(label instanceof Uint8Array) || label.length !== batch.rows) {
      throw new Error(`an image batch needs a uint8 field "label" of ${batch.rows} values`);
    }
    for (const y of label) if (y >= this.classes) throw new Error(`label ${y} is outside the classes [0, ${this.classes})`);
    return tf.tensor1d(Int32Array.from(label), 'int32');
  }

  dispose(): void {
    tf.dispose(this.variables as tf.Variable[]);
  }

  /** The pixels as floats in [0, 1], converted here so that every backend starts from the same numbers. */
  private pixels(batch: Batch): Float32Array {
    const pixels = batch.fields.pixels;
    const size = batch.rows * this.height * this.width;
    if (!(pixels instanceof Uint8Array) || pixels.length !== size) {
      throw new Error(`an image batch needs a uint8 field "pixels" of rows x ${this.height} x ${this.width} = ${size} values`);
    }
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = pixels[i] / 255;
    return out;
  }
}

