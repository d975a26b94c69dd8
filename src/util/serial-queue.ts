/**
 * Jobs that run one after another, in the order they were pushed, off the caller's critical path: the caller
 * pushes and carries on. A failed job does not stop the ones after it; the first failure is kept for `drain`.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  push(job: () => Promise<void>): void {
    this.tail = this.tail.then(job).catch((err: Error) => {
      this.failure ??= err;
    });
  }

  /** Waits for every job pushed so far; rethrows the first failure. */
  async drain(): Promise<void> {
    await this.tail;
    if (this.failure) throw this.failure;
  }

  /** Waits for every job pushed so far, failed or not. */
  async settled(): Promise<void> {
    await this.tail;
  }
}
