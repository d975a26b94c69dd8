/**
 * The exchange through a snapshot store, for groups in separate processes or on separate machines.
 *
 * Publishing writes one snapshot (the wire record every store holds: tensor `weights`) and prunes the group's
 * older ones. Watching polls the store's headers every `pollMs` (`list` reads no bodies) and, for each step newer
 * than the last one seen, reads the body and passes it on; a step pruned before it was read is skipped. Steps a
 * restarted group publishes again are not passed on twice: in a deterministic run they are the same weights.
 *
 * Polling is the one mechanism that works on every store (an LMDB file shared by processes, a directory on NFS, an
 * object store); at the default 25 ms it costs a header read per watched group, against exchanges seconds apart.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type Observable, ReplaySubject } from 'rxjs';
import type { SnapshotStore } from '../store/snapshot.js';
import { type Exchange, type Published, KEEP_PUBLISHED } from './exchange.js';

export interface StoreExchangeOptions {
  /** Stamped into each snapshot's header. */
  runId: string;
  /** The workload kind, stamped into each snapshot's header. */
  model: string;
  /** Snapshots kept per group in the store (older ones are pruned after each publish). */
  keep?: number;
  /** Milliseconds between two looks at the store for new snapshots. */
  pollMs?: number;
}

export class StoreExchange implements Exchange {
  private readonly watched = new Map<number, ReplaySubject<Published>>();
  private readonly watchers: Promise<void>[] = [];
  private readonly stop = new AbortController();
  private readonly keep: number;
  private readonly pollMs: number;

  /** The exchange owns `store` from now on and closes it. */
  constructor(
    private readonly store: SnapshotStore,
    private readonly opts: StoreExchangeOptions,
  ) {
    this.keep = opts.keep ?? KEEP_PUBLISHED;
    this.pollMs = opts.pollMs ?? 25;
  }

  async publish(group: number, step: number, weights: Float32Array): Promise<void> {
    const { runId, model } = this.opts;
    await this.store.put({ header: { runId, group, step, model }, tensors: [{ name: 'weights', shape: [weights.length], data: weights }] });
    await this.store.prune(group, this.keep);
  }

  published$(group: number): Observable<Published> {
    let subject = this.watched.get(group);
    if (!subject) {
      subject = new ReplaySubject<Published>(this.keep);
      this.watched.set(group, subject);
      this.watchers.push(this.watch(group, subject));
    }
    return subject.asObservable();
  }

  /** Stops watching and closes the store (the exchange owns it). */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.all(this.watchers);
    for (const s of this.watched.values()) s.complete();
    await this.store.close();
  }

  private async watch(group: number, out: ReplaySubject<Published>): Promise<void> {
    let last = -1;
    try {
      while (!this.stop.signal.aborted) {
        for (const h of await this.store.list(group)) {
          if (h.step <= last) continue;
          const s = await this.store.get(group, h.step);
          if (!s) continue; // pruned between the listing and the read: a newer one follows
          const weights = s.tensors.find((t) => t.name === 'weights')?.data;
          if (!(weights instanceof Float32Array)) {
            throw new Error(`${this.store.where}: snapshot of group ${group} step ${h.step} has no float32 "weights" tensor`);
          }
          last = h.step;
          out.next({ group, step: h.step, weights });
        }
        await delay(this.pollMs, undefined, { signal: this.stop.signal }).catch(() => undefined);
      }
    } catch (err) {
      if (!this.stop.signal.aborted) out.error(new Error(`watching group ${group}'s snapshots: ${(err as Error).message}`, { cause: err }));
    }
  }
}
