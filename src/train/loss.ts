/**
 * The two terms of codistillation's loss (Algorithm 1 of Anil et al. 2018), written once for every workload.
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
import type { TeacherTarget } from '../protocol.js';
import { activeNativeKernels, nativeCrossEntropyGrad, nativeSoftmaxRows } from '../tf/native-kernels.js';

export type { TeacherTarget };

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



export interface CodistillLossOptions {
  /** Label smoothing of the task term. */
  smoothing: number;
  /** Absent during burn-in. */
  teacher?: TeacherTarget;
  alpha: number;
  kind: DistillKind;
}

export interface CodistillLoss {
  /** task + alpha * distill: the scalar to differentiate. */
  total: tf.Scalar;
  task: tf.Scalar;
  /** The distillation term: the mean over the positions that carry a teacher target. */
  distill: tf.Scalar;
}

/** [S*k, 2] (row, class) coordinates of a teacher target's entries, rows renumbered to the batch's positions. */
function teacherCoordinates(t: TeacherTarget & { kind: 'topk' }, rows: number): Int32Array {
  const coords = new Int32Array(rows * t.k * 2);
  for (let s = 0; s < rows; s++) {
    const row = t.positions ? t.positions[s] : s;
    for (let j = 0; j < t.k; j++) {
      coords[(s * t.k + j) * 2] = row;
      coords[(s * t.k + j) * 2 + 1] = t.indices[s * t.k + j];
    }
  }
  return coords;
}

/** A teacher target's pieces that the loss uploads or computes once a step, however many terms use them. */
interface TeacherInputs {
  target: TeacherTarget;
  /** S: positions that carry a target. */
  distilled: number;
  /** The target's positions as an [S] int32 tensor; absent when every position carries one. */
  rows?: tf.Tensor1D;
  /** Top-k only: the (row, class) coordinates of its entries. */
  coords?: Int32Array;
  /** Top-k only: its probabilities, [S * k]. */
  probs?: tf.Tensor1D;
}

function teacherInputs(t: TeacherTarget, positions: number): TeacherInputs {
  const distilled = t.positions?.length ?? positions;
  const rows = t.positions && tf.tensor1d(t.positions, 'int32');
  if (t.kind === 'dense') return { target: t, distilled, rows };
  return { target: t, distilled, rows, coords: teacherCoordinates(t, distilled), probs: tf.tensor1d(t.probs) };
}

/** An [P, 1] column: `value` at the target's positions, 0 elsewhere. */
function rowWeights(t: TeacherInputs, positions: number, value: number): tf.Tensor2D {
  return tf.scatterND(t.rows!.reshape([t.distilled, 1]), tf.fill([t.distilled, 1], value), [positions, 1]) as tf.Tensor2D;
}

/** The teacher target as a dense [P, C] tensor times `scale` (zero rows where no target), built in one scatter. */
function denseTeacher(t: TeacherInputs, positions: number, classes: number, scale: number): tf.Tensor2D {
  const { target, distilled: rows } = t;
  if (target.kind === 'topk') {
    return tf.scatterND(tf.tensor2d(t.coords!, [rows * target.k, 2], 'int32'), t.probs!.mul(scale), [positions, classes]) as tf.Tensor2D;
  }
  const values = tf.tensor2d(target.values, [rows, classes]).mul(scale) as tf.Tensor2D;
  if (!t.rows) return values;
  return tf.scatterND(t.rows.reshape([rows, 1]), values, [positions, classes]) as tf.Tensor2D;
}

/**
 * The whole training loss in one softmax (the replicas' hot path).
 *
 * Both cross-entropy terms share the student's probabilities q, so their gradient is closed-form:
 *   d/dlogits [CE(y', q) + alpha * mean over the S distilled positions of CE(t, q)]
 *     = (q * (1 + alpha * P/S * m) - y' - alpha * P/S * t) / P,      m = 1 where a position carries a target.
 * tfjs's taped logSoftmax gradient costs several exp passes over the [P, C] logits on wasm; this costs one softmax and
 * a few elementwise passes. The reported values avoid log and row gathers over [P, C] (both slow on wasm): with
 * lse = logsumexp(z) = max(z) - log(max(q)) per row, CE(t, q) = lse - sum_c t_c z_c for any distribution t.
 * Values and gradients equal taskLoss/distillLoss (tested). MSE on logits keeps tfjs's own gradient.
 */
export function codistillLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, o: CodistillLossOptions): CodistillLoss {
  const [positions, classes] = logits.shape;
  const teacher = o.teacher && o.alpha > 0 ? teacherInputs(o.teacher, positions) : undefined;
  const ce = teacher && o.kind === 'ce' ? teacher : undefined;
  const distilled = teacher?.distilled ?? positions;
  // Each distilled position's pull is weighted alpha * P/S, so that the term is a mean over the S positions.
  const share = (o.alpha * positions) / distilled;
  const scaledTeacher = ce && denseTeacher(ce, positions, classes, share);
  const rows = ce?.rows;
  const weight: tf.Tensor = rows ? rowWeights(ce, positions, share).add(1) : tf.scalar(ce ? 1 + share : 1);
  // With the native kernels one pass gives q, lse and the labels' logits, and one pass the gradient; the tfjs path
  // builds the one-hot pull y' + teacher and gathers the labels' logits.
  const native = activeNativeKernels() !== undefined;
  let pull: tf.Tensor2D | undefined;
  let labelIndex: tf.Tensor1D | undefined;
  if (!native) {
    let target = tf.oneHot(labels, classes).toFloat() as tf.Tensor2D;
    if (o.smoothing > 0) target = target.mul(1 - o.smoothing).add(o.smoothing / classes) as tf.Tensor2D;
    pull = scaledTeacher ? (target.add(scaledTeacher) as tf.Tensor2D) : target;
    labelIndex = tf.range(0, positions, 1, 'int32').mul(tf.scalar(classes, 'int32')).add(labels.toInt()) as tf.Tensor1D;
  }
  let values: tf.Scalar[] = [];
  const fusedCrossEntropy = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    // Inside the custom op nothing is taped: the values below carry no gradient.
    let q: tf.Tensor2D;
    let lse: tf.Tensor1D;
    let labelLogits: tf.Tensor1D;
    if (native) {
      const [probs, stats] = nativeSoftmaxRows(z, labels);
      q = probs;
      [lse, labelLogits] = tf.unstack(stats, 1) as [tf.Tensor1D, tf.Tensor1D];
    } else {
      q = tf.softmax(z);
      lse = tf.max(z, 1).sub(tf.log(tf.max(q, 1)));
      labelLogits = tf.gather(z.reshape([-1]), labelIndex!) as tf.Tensor1D;
    }
    let task = lse.sub(labelLogits).mean() as tf.Scalar;
    if (o.smoothing > 0) task = task.mul(1 - o.smoothing).add(lse.sub(z.mean(1)).mean().mul(o.smoothing)) as tf.Scalar;
    let distill = tf.scalar(0);
    if (ce) {
      const lseRows = rows ? tf.gather(lse, rows) : lse;
      const teacherDotZ = ce.coords
        ? tf.sum(ce.probs!.mul(tf.gather(z.reshape([-1]), topkFlatIndex(ce.coords, classes))))
        : tf.sum(scaledTeacher!.mul(z)).div(share);
      distill = lseRows.sum().sub(teacherDotZ).div(distilled) as tf.Scalar;
    }
    values = [tf.keep(task), tf.keep(distill)];
    if (native) {
      save([q, labels, weight, ...(scaledTeacher ? [scaledTeacher] : [])]);
      return {
        value: tf.scalar(0),
        gradFunc: (dy: tf.Scalar, [q, labels, weight, teacher]: tf.Tensor[]) =>
          nativeCrossEntropyGrad(q as tf.Tensor2D, labels as tf.Tensor1D, weight, teacher as tf.Tensor2D | undefined, o.smoothing, dy.dataSync()[0] / positions),
      };
    }
    // Saved tensors outlive the forward pass's tidy; a closure over `pull` would see it disposed.
    save([q, pull!, weight]);
    return {
      value: tf.scalar(0),
      // Without a teacher the weight is 1: skip that full pass over [P, C].
      gradFunc: (dy: tf.Scalar, [q, pull, weight]: tf.Tensor[]) => (ce ? q.mul(weight) : q).sub(pull).mul(dy.div(positions)),
    };
  });
  const fused = fusedCrossEntropy(logits) as tf.Scalar;
  // Tracked copies of the values, so that the caller's tidy owns them.
  const task = values[0].clone();
  let distill = values[1].clone();
  tf.dispose(values);
  let total = fused.add(task).add(distill.mul(ce ? o.alpha : 0)) as tf.Scalar;
  if (teacher && o.kind === 'mse-logits') {
    const dense = denseTeacher(teacher, positions, classes, 1);
    const diff = tf.squaredDifference(logits, dense);
    // Mean over the distilled positions (and classes): rows without a target are masked out.
    distill = (teacher.rows ? diff.mul(rowWeights(teacher, positions, positions / distilled)) : diff).mean() as tf.Scalar;
    total = total.add(distill.mul(o.alpha));
  }
  return { total, task, distill };
}

/** Flat [P * C] indices of a top-k target's entries, from their (row, class) coordinates. */
function topkFlatIndex(coords: Int32Array, classes: number): tf.Tensor1D {
  const flat = new Int32Array(coords.length / 2);
  for (let i = 0; i < flat.length; i++) flat[i] = coords[2 * i] * classes + coords[2 * i + 1];
  return tf.tensor1d(flat, 'int32');
}
