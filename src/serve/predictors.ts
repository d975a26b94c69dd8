/**
 * The predictors a service keeps open: one per (run, checkpoint step, groups), the least recently used closed once
 * more than `keep` are open. "The newest snapshot" is looked up on every request, so a run that is training answers
 * from its newest checkpoint as soon as every group has written it.
 */
import type { Config } from '../config/schema.js';
import { openPredictor, type RunPredictor } from '../train/predict.js';
import { checkpointStep } from '../train/snapshots.js';

export interface PredictRequest {
  id: string;
  config: Config;
  runDir: string;
  step: number | 'newest';
  groups?: number[];
}

interface Slot {
  predictor: Promise<RunPredictor>;
  /** Requests using it now: an evicted predictor closes once the last of them is answered. */
  users: number;
  evicted: boolean;
}

export class PredictorCache {
  private readonly open = new Map<string, Slot>();

  constructor(private readonly keep: number) {}

  /** Answers `f` with the predictor for the request's run, step and groups (opened if it is not open already). */
  async use<T>(r: PredictRequest, f: (p: RunPredictor) => Promise<T>): Promise<T> {
    const step = await checkpointStep(r.config, r.runDir, r.step);
    const key = `${r.id}\u0000${step}\u0000${r.groups?.join(',') ?? 'all'}`;
    let slot = this.open.get(key);
    if (slot) {
      this.open.delete(key); // re-inserted below: the Map's order is the order of use
    } else {
      const predictor = openPredictor({ config: r.config, runDir: r.runDir, step, groups: r.groups });
      const opened: Slot = { predictor, users: 0, evicted: false };
      // A predictor that failed to open is not kept: the next request tries again.
      predictor.catch(() => this.open.get(key) === opened && this.open.delete(key));
      slot = opened;
    }
    this.open.set(key, slot);
    while (this.open.size > this.keep) {
      const [oldest, s] = this.open.entries().next().value as [string, Slot];
      this.open.delete(oldest);
      s.evicted = true;
      if (s.users === 0) void closeSlot(s);
    }
    slot.users++;
    try {
      return await f(await slot.predictor);
    } finally {
      slot.users--;
      if (slot.evicted && slot.users === 0) void closeSlot(slot);
    }
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map(closeSlot));
  }
}

const closeSlot = (s: Slot): Promise<void> => s.predictor.then((p) => p.close(), () => undefined);
