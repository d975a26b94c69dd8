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

/**
 * The positions that carry the distillation term at `step` when only `fraction` of them do: every k-th position of
 * each row (k = round(1/fraction)), starting at step mod k, so that over k steps every position is distilled.
 * Undefined means all positions.
 */
export function distilledPositions(rows: number, perRow: number, fraction: number, step: number): Int32Array | undefined {
  const k = Math.round(1 / fraction);
  if (k <= 1) return undefined;
  const offset = step % k;
  const each = offset < perRow ? Math.ceil((perRow - offset) / k) : 0;
  const out = new Int32Array(rows * each);
  let i = 0;
  for (let r = 0; r < rows; r++) for (let p = offset; p < perRow; p += k) out[i++] = r * perRow + p;
  return out;
}

/** The distillation weight at a step: 0 during burn-in, then a linear ramp to alpha over `ramp` steps. */
export function distillWeight(step: number, d: { alpha: number; burnIn: number; ramp: number }): number {
  if (step < d.burnIn) return 0;
  if (d.ramp <= 0) return d.alpha;
  return d.alpha * Math.min(1, (step - d.burnIn + 1) / d.ramp);
}

export interface CodistillLossOptions {
  /** Label smoothing of the task term. */
  smoothing: number;
  /** The teachers' averaged probabilities (ce) or logits (mse-logits), [P, C]; absent during burn-in. */
  teacher?: tf.Tensor2D;
  /**
   * [P, 1]: P/S for the S positions that carry a teacher target, 0 elsewhere (distill.positionFraction < 1); the
   * teacher's other rows must be zero. The distillation term is then the mean over those S positions.
   */
  teacherMask?: tf.Tensor2D;
  alpha: number;
  kind: DistillKind;
}

export interface CodistillLoss {
  /** task + alpha * distill: the scalar to differentiate. */
  total: tf.Scalar;
  task: tf.Scalar;
  distill: tf.Scalar;
}

/**
 * The whole training loss in one softmax (the replicas' hot path). Both cross-entropy terms share the student's
 * probabilities q, and their gradient is closed-form: d/dlogits [CE(y', q) + alpha * CE(teacher, q)]
 * = ((1 + alpha) q - y' - alpha * teacher) / P. tfjs's taped logSoftmax gradient costs several exp passes over the
 * [P, C] logits on wasm; this costs one softmax. The values equal taskLoss/distillLoss (tested).
 */
export function codistillLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, o: CodistillLossOptions): CodistillLoss {
  const [positions, classes] = logits.shape;
  const ceTeacher = o.teacher && o.kind === 'ce' && o.alpha > 0 ? o.teacher : undefined;
  let target = tf.oneHot(labels, classes).toFloat() as tf.Tensor2D;
  if (o.smoothing > 0) target = target.mul(1 - o.smoothing).add(o.smoothing / classes) as tf.Tensor2D;
  // Rows without a teacher target get no distillation gradient; rows with one are scaled so the term averages them.
  const scaledTeacher = ceTeacher && o.teacherMask ? ceTeacher.mul(o.teacherMask) : ceTeacher;
  const weight: tf.Tensor | number = !ceTeacher ? 1 : o.teacherMask ? o.teacherMask.mul(o.alpha).add(1) : 1 + o.alpha;
  // Everything the gradient pulls the student toward, in one [P, C] target.
  const pull = scaledTeacher ? target.add(scaledTeacher.mul(o.alpha)) : target;
  let probs: tf.Tensor2D | undefined;
  const fusedCrossEntropy = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const q = tf.softmax(x);
    probs = tf.keep(q);
    // Saved tensors outlive the forward pass's tidy; a closure over `pull` would see it disposed.
    save([q, pull, typeof weight === 'number' ? tf.scalar(weight) : weight]);
    return {
      value: tf.scalar(0),
      gradFunc: (dy: tf.Scalar, [savedQ, savedPull, savedWeight]: tf.Tensor[]) =>
        tf.mul(dy, savedQ.mul(savedWeight).sub(savedPull).div(positions)),
    };
  });
  const fused = fusedCrossEntropy(logits) as tf.Scalar;
  // q was made inside the custom op, off the tape: values computed from it carry no gradient.
  const logq = tf.log(probs!.maximum(1e-30));
  tf.dispose(probs);
  const task = tf.neg(tf.sum(target.mul(logq))).div(positions) as tf.Scalar;
  let total = fused.add(task) as tf.Scalar;
  let distill: tf.Scalar = tf.scalar(0);
  if (ceTeacher) {
    distill = tf.neg(tf.sum(scaledTeacher!.mul(logq))).div(positions) as tf.Scalar;
    total = total.add(distill.mul(o.alpha));
  } else if (o.teacher && o.kind === 'mse-logits' && o.alpha > 0) {
    // MSE on logits keeps tfjs's own gradient: it is cheap and has no softmax.
    distill = o.teacherMask
      ? (tf.squaredDifference(logits, o.teacher).mul(o.teacherMask).mean() as tf.Scalar)
      : distillLoss(logits, o.teacher, 'mse-logits');
    total = total.add(distill.mul(o.alpha));
  }
  return { total, task, distill };
}
