/**
 * The one interface every workload implements, so that groups, teachers, checkpoints and experiments never name one.
 *
 * A workload turns a batch (typed arrays from the reader) into logits over `classes` at `positions` places and the
 * matching integer labels. For the language model a batch is B windows of T+1 tokens: inputs are the first T tokens,
 * labels the last T, positions = B*T and classes = vocabulary size. A click model would have positions = B and
 * classes = 2. Task loss, distillation loss and churn are written once against logits/labels.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../config/schema.js';

/** A batch as the reader delivers it: row-major int32 data of `rows` x `cols`. */
export interface Batch {
  data: Int32Array;
  rows: number;
  cols: number;
}

export interface Model {
  readonly kind: ModelConfig['kind'];
  /** Number of output classes (the vocabulary size for the language model). */
  readonly classes: number;
  /** Trainable variables in a fixed order: gradients, all-reduce buffers and snapshots all use this order. */
  readonly variables: readonly tf.Variable[];
  /**
   * Logits [positions, classes]; with `at` (int32 position indices), only those rows: forward passes that need no
   * gradient (teachers) then skip most of the output layer. Call inside tf.tidy.
   */
  logits(batch: Batch, at?: tf.Tensor1D): tf.Tensor2D;
  /** Labels [positions] (int32). Call inside tf.tidy. */
  labels(batch: Batch): tf.Tensor1D;
  /** Forgets state carried between batches (model.carryState), when the next batch's rows do not continue. */
  resetState?(): void;
  /** Positions a batch of `rows` rows predicts (B*T for the language model). */
  positions(rows: number): number;
  dispose(): void;
}

export interface ModelSpec {
  config: ModelConfig;
  /** Classes of the output layer (the corpus vocabulary for the language model). */
  classes: number;
  /** Seed of the initialisation. */
  seed: number;
}
