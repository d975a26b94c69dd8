/**
 * Work that needs every group's piece of one step (an evaluation of all models and their ensemble): pieces
 * arrive from the groups in any order; once a step has all of them, its job is queued after the jobs before it, off
 * the training threads' critical path. The first failure is kept for `drain`.
 */
import { SerialQueue } from '../util/serial-queue.js';

export class StepGather<T> {
  private readonly pending = new Map<number, T[]>();
  private readonly queue = new SerialQueue();

  constructor(
    private readonly groups: number,
    private readonly job: (step: number, pieces: T[]) => Promise<void>,
  ) {}

  /** Group `group`'s piece of step `step`; the step's job is queued when it is the last one missing. */
  submit(group: number, step: number, piece: T): void {
    const got = this.pending.get(step) ?? new Array<T>(this.groups);
    got[group] = piece;
    this.pending.set(step, got);
    if (got.filter((p) => p !== undefined).length < this.groups) return;
    this.pending.delete(step);
    this.queue.push(() => this.job(step, got));
  }

  /** Waits for every job queued so far; rethrows the first failure. */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  /** Waits for every job queued so far, failed or not. */
  settled(): Promise<void> {
    return this.queue.settled();
  }
}
