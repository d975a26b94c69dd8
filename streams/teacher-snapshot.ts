/**
 * Which snapshot of another group's model a teacher uses for each student step: the exchange rule of codistillation.
 *
 * - `sync`: the snapshot of exactly step floor(s/K)*K, or of the end of burn-in when that is later (the first exchange
 *   happens when distillation starts, so no student ever learns from another group's random initialisation). If that
 *   group has not published it yet, the answer waits for it (so a group that runs ahead waits for the slower ones, and
 *   a run is deterministic).
 * - `async`: the newest snapshot published when the step asks, never waiting.
 *
 * `published$` must replay what was already published, in step order (an exchange's `published$` does). In sync
 * mode a snapshot newer than the one wanted, seen before it, means the wanted one is gone (pruned from the store
 * while this group was down for longer than the store keeps snapshots): that is an error naming both steps, never
 * a wait without end.
 *
 * @example
 *   steps$.pipe(teacherSnapshot(exchange.published$(1), 'sync', 50))   // step 75 -> group 1's snapshot of step 50
 */
import { concatMap, map, type Observable, type OperatorFunction, first, withLatestFrom } from 'rxjs';
import { syncSnapshotStep } from '../src/train/schedule.js';

export interface SnapshotRef {
  group: number;
  step: number;
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
          first((p) => p.step >= wanted),
          map((p) => {
            if (p.step === wanted) return p;
            throw new Error(
              `group ${p.group}'s snapshot of step ${wanted} (the teacher of step ${step}) is gone: the oldest one left is of step ${p.step}`,
            );
          }),
        );
      }),
    );
}
