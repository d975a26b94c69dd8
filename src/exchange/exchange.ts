/**
 * The exchange: how the groups of a run hand each other their snapshots, the only thing codistillation makes them
 * share. Every `distill.exchangeEvery` steps a group publishes its weights; the teachers of the other groups take
 * them from `published$`, an Observable per group that replays the few newest snapshots to a new subscriber and
 * then carries each new one as it appears. Which snapshot a teacher uses at a step is the exchange rule in
 * streams/teacher-snapshot.ts (sync: exactly the last exchange, waiting for it; async: the newest).
 *
 * Two implementations behind the one interface:
 * - `MemoryExchange`: the groups of one process (thread placement): a replaying subject per group, no copies.
 * - `StoreExchange` (store-exchange.ts): groups in other processes or on other machines, through a snapshot store
 *   (LMDB on one machine, a shared directory, S3) that it watches for new snapshots.
 */
import { type Observable, ReplaySubject } from 'rxjs';

export interface Published {
  group: number;
  step: number;
  weights: Float32Array;
}

export interface Exchange {
  /** Makes group `group`'s weights after `step` updates available to the other groups' teachers. */
  publish(group: number, step: number, weights: Float32Array): Promise<void>;
  /** Group `group`'s snapshots in step order: the newest few at once, then each new one. Never completes. */
  published$(group: number): Observable<Published>;
  close(): Promise<void>;
}

/**
 * Snapshots kept per group for teachers that have not caught up. In sync mode groups drift at most one exchange
 * interval apart, so three are enough: the one in use, the next, and one in flight.
 */
export const KEEP_PUBLISHED = 3;

export class MemoryExchange implements Exchange {
  private readonly subjects: ReplaySubject<Published>[];

  constructor(groups: number, keep = KEEP_PUBLISHED) {
    this.subjects = Array.from({ length: groups }, () => new ReplaySubject<Published>(keep));
  }

  async publish(group: number, step: number, weights: Float32Array): Promise<void> {
    this.subjects[group].next({ group, step, weights });
  }

  published$(group: number): Observable<Published> {
    return this.subjects[group].asObservable();
  }

  async close(): Promise<void> {
    for (const s of this.subjects) s.complete();
  }
}
