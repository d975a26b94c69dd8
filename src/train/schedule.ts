/**
 * The schedule of a run: which step does what. Pure arithmetic on step numbers and config values, no tfjs and no
 * I/O, so the supervisor, a group's loop, the teachers and the tests all apply the same rules.
 *
 *   learningRate      the rate of update s (warm-up, then decay)
 *   distillWeight     alpha at step s: 0 during burn-in, then (optionally ramped) distill.alpha
 *   distilledPositions  which positions of a batch carry the distillation term at step s
 *   exchangeDue       whether a group publishes a snapshot after s updates
 *   averageDue        whether the groups take an outer step (exchange by averaging) after s updates
 *   syncSnapshotStep  which snapshot of another group a teacher uses at step s in sync mode
 *   periodicDue       whether an every-N-steps job (evaluation, checkpoint) runs after s updates
 */
import type { OptimConfig } from '../config/schema.js';

/**
 * The rate for update number `step` (0-based) of `totalSteps`: a linear warm-up reaching optim.lr at the last
 * warm-up step, then the decay, never below minLrRatio * lr (except during warm-up).
 */
export function learningRate(optim: OptimConfig, step: number, totalSteps: number): number {
  const { lr, warmupSteps } = optim;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const floor = optim.minLrRatio * lr;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  switch (optim.decay) {
    case 'none':
      return lr;
    case 'cosine':
      return floor + (lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
    case 'linear':
      return floor + (lr - floor) * (1 - progress);
    case 'inverse-sqrt': {
      // lr at the end of warm-up, then proportional to 1/sqrt(step): continuous where warm-up ends.
      const pivot = Math.max(1, warmupSteps);
      return Math.max(floor, lr * Math.sqrt(pivot / Math.max(pivot, step)));
    }
    default: {
      const unknown: never = optim.decay;
      throw new Error(`unknown optim.decay '${String(unknown)}'`);
    }
  }
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

/**
 * The snapshot step a teacher uses at `step` in sync mode: the last exchange at or before it. Exchanges happen every
 * `exchangeEvery` steps (0: never after the first) and once when burn-in ends.
 */
export function syncSnapshotStep(step: number, exchangeEvery: number, burnIn = 0): number {
  const periodic = exchangeEvery > 0 ? Math.floor(step / exchangeEvery) * exchangeEvery : 0;
  return step >= burnIn && burnIn > periodic ? burnIn : periodic;
}

/** Whether a group publishes a snapshot after finishing `done` updates. */
export function exchangeDue(done: number, exchangeEvery: number, burnIn = 0): boolean {
  return (exchangeEvery > 0 && done % exchangeEvery === 0) || (burnIn > 0 && done === burnIn);
}

/** Exchange by averaging: every `exchangeEvery` steps (0 = never), when there are groups to average. */
export function averageDue(done: number, groups: number, exchangeEvery: number): boolean {
  return groups > 1 && exchangeEvery > 0 && done % exchangeEvery === 0;
}

/** Evaluations and checkpoints come every `every` steps (0: never) and always after the last step. */
export function periodicDue(done: number, every: number, steps: number): boolean {
  return done === steps || (every > 0 && done % every === 0);
}
