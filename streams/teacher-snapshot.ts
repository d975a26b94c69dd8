/**
 * Which snapshot of another group's model a teacher uses for each student step: the exchange rule of codistillation.
 *
 * - `sync`: the snapshot of exactly step floor(s/K)*K, or of the end of burn-in when that is later (the first exchange
 *   happens when distillation starts, so no student ever learns from another group's random initialisation). If that
 *   group has not published it yet, the answer waits for it (so a group that runs ahead waits for the slower ones, and
 *   a run is deterministic).
 * - `async`: the newest snapshot published when the step asks, never waiting.
 *
 * `published$` must replay what was already published (the snapshot board gives a ReplaySubject per group).
 *
 * @example
 *   steps$.pipe(teacherSnapshot(board.published$(1), 'sync', 50))   // step 75 -> group 1's snapshot of step 50
 */
import { concatMap, filter, map, type Observable, type OperatorFunction, take, withLatestFrom } from 'rxjs';

export interface SnapshotRef {
  group: number;
  step: number;
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

export function teacherSnapshot<P extends SnapshotRef>(
  published$: Observable<P>,
  mode: 'sync' | 'async',
  exchangeEvery: number,
  burnIn = 0,
): OperatorFunction<number, P> {
  if (mode === 'async') {
    return (steps$) => steps$.pipe(withLatestFrom(published$), map(([, p]) => p));
  }
  // concatMap keeps answers in step order even when an earlier step waits longer.
  return (steps$) =>
    steps$.pipe(
      concatMap((step) => {
        const wanted = syncSnapshotStep(step, exchangeEvery, burnIn);
        return published$.pipe(
          filter((p) => p.step === wanted),
          take(1),
        );
      }),
    );
}
