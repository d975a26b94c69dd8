/** Model tests' helpers: a plain training step (task loss, gradients, optional clipping, one update), and more. */
import * as tf from '@tensorflow/tfjs';
import { LM_DEFAULTS, type ModelConfig } from '../../src/workloads/lm/config.js';
import type { Batch, Model } from '../../src/workloads/workload.js';
import { taskLoss } from '../../src/train/loss.js';
import { clipByGlobalNorm } from '../../src/train/optim.js';

/** A tiny language model config: fast on wasm, still every code path of the real one. */
export function tinyModel(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return { ...LM_DEFAULTS.model, embedding: 8, hidden: 12, layers: 1, window: 6, ...overrides };
}

/** Loss and named gradients of the task loss on one batch. The caller disposes the returned tensors. */
export function lossAndGrads(model: Model, batch: Batch): { loss: tf.Scalar; grads: tf.NamedTensorMap } {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => taskLoss(model.logits(batch), model.labels(batch)), model.variables as tf.Variable[]);
    return { loss: value, grads };
  });
}

/** One update; returns the loss before it. */
export function trainStep(model: Model, opt: tf.Optimizer, batch: Batch, clipNorm = 0): number {
  const { loss, grads } = lossAndGrads(model, batch);
  tf.tidy(() => opt.applyGradients(clipByGlobalNorm(grads, clipNorm).grads));
  const value = loss.dataSync()[0];
  tf.dispose([loss, ...Object.values(grads)]);
  return value;
}

/** Every variable's values, in order: for bitwise comparisons. */
export function snapshot(model: Model): Float32Array[] {
  return model.variables.map((v) => v.dataSync() as Float32Array).map((a) => a.slice());
}

/** `steps` plain updates on one batch: the loss before each, and the live tensor count after each. */
export function trainLosses(model: Model, opt: tf.Optimizer, batch: Batch, steps: number): { losses: number[]; counts: number[] } {
  const losses: number[] = [];
  const counts: number[] = [];
  for (let step = 0; step < steps; step++) {
    losses.push(trainStep(model, opt, batch));
    counts.push(tf.memory().numTensors);
  }
  return { losses, counts };
}

/** Each variable's initial bits of a freshly built model (disposed afterwards). */
export function initialBits(build: () => Model): Buffer[] {
  const model = build();
  const values = model.variables.map((v) => Buffer.from((v.dataSync() as Float32Array).slice().buffer));
  model.dispose();
  return values;
}

/** The task loss and each variable's gradient values, in variable order. */
export function gradientValues(model: Model, batch: Batch): { loss: number; grads: Float32Array[] } {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => taskLoss(model.logits(batch), model.labels(batch)), model.variables as tf.Variable[]);
    return { loss: value.dataSync()[0], grads: model.variables.map((v) => grads[v.name].dataSync() as Float32Array) };
  });
}

/** Largest difference relative to the largest magnitude of `expected`. */
export function relativeDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return actual.length === expected.length ? diff / (scale || 1) : Infinity;
}
