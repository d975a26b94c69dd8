/**
 * The two terms of codistillation's loss (PAPER.md, Algorithm 1), written once for every workload.
 *
 *   loss = phi(y, F(theta_i, x)) + alpha * psi(teacher, F(theta_i, x))
 *
 * phi: softmax cross-entropy against the labels (label smoothing optional: a baseline of the same code).
 * psi: cross-entropy from the averaged teacher PROBABILITIES to the student's, summed over classes and averaged over
 *      positions (its gradient equals KL(teacher || student)'s; summing over classes keeps the term from vanishing),
 *      or the mean squared error between logits. Teachers arrive as plain data: no gradient can reach them.
 * All functions allocate tensors: call them inside tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';

/** Mean softmax cross-entropy of logits [P, C] against integer labels [P]; smoothing spreads eps over all classes. */
export function taskLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing = 0): tf.Scalar {
  const classes = logits.shape[1];
  const logProbs = tf.logSoftmax(logits);
  let target = tf.oneHot(labels, classes).toFloat();
  if (smoothing > 0) target = target.mul(1 - smoothing).add(smoothing / classes);
  return tf.neg(tf.sum(target.mul(logProbs), 1)).mean() as tf.Scalar;
}

export type DistillKind = 'ce' | 'mse-logits';

/** What the teachers sent for a batch: averaged probabilities (ce) or averaged logits (mse-logits), [P, C]. */
export function distillLoss(logits: tf.Tensor2D, teacher: tf.Tensor2D, kind: DistillKind): tf.Scalar {
  if (kind === 'mse-logits') return tf.squaredDifference(logits, teacher).mean() as tf.Scalar;
  return tf.neg(tf.sum(teacher.mul(tf.logSoftmax(logits)), 1)).mean() as tf.Scalar;
}

/** Rebuilds a dense [P, C] teacher distribution from its top-k entries (indices and renormalised probabilities). */
export function denseFromTopK(indices: Int32Array, probs: Float32Array, positions: number, k: number, classes: number): tf.Tensor2D {
  const coords = new Int32Array(positions * k * 2);
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < k; j++) {
      const o = (p * k + j) * 2;
      coords[o] = p;
      coords[o + 1] = indices[p * k + j];
    }
  }
  return tf.scatterND(tf.tensor2d(coords, [positions * k, 2], 'int32'), tf.tensor1d(probs), [positions, classes]) as tf.Tensor2D;
}

/** The distillation weight at a step: 0 during burn-in, then a linear ramp to alpha over `ramp` steps. */
export function distillWeight(step: number, d: { alpha: number; burnIn: number; ramp: number }): number {
  if (step < d.burnIn) return 0;
  if (d.ramp <= 0) return d.alpha;
  return d.alpha * Math.min(1, (step - d.burnIn + 1) / d.ramp);
}
