/**
 * Checkpoints of a run: each group's weights, optimizer state, data cursor, the snapshot its teachers currently
 * serve to the other groups, the step and the resolved config, one snapshot per group and step in the run's
 * checkpoint store. Each group writes its own (so a group in its own process or on its own machine checkpoints
 * without the others); the last `checkpoint.keep` are kept per group, and never the newest step that every group
 * has, which is where a whole run resumes. A stopped run therefore continues the same trajectory (bitwise, in sync
 * mode on a deterministic backend), and a restarted group continues from its own newest checkpoint.
 */
import type { Config } from '../config/schema.js';
import type { Published } from '../exchange/exchange.js';
import type { ModelState } from '../protocol.js';
import type { NamedArray, Snapshot, SnapshotInput, SnapshotStore } from '../store/snapshot.js';
import type { DataCursor } from '../workloads/workload.js';
import { SerialQueue } from '../util/serial-queue.js';
import { SnapshotError } from '../store/snapshot.js';
import type { CheckpointEvent, WarningEvent } from './events.js';
import { killPoint } from '../util/kill-point.js';
import type { OuterState } from './outer.js';

export interface GroupCheckpoint {
  state: ModelState;
  cursor: DataCursor;
  /** This group's snapshot that the other groups' teachers use at this step. */
  published: Published;
  /** distill.method = average: the outer optimizer's state (the anchor and the outer momentum). */
  outer?: OuterState;
}

export interface LoadedCheckpoint {
  step: number;
  groups: GroupCheckpoint[];
}

function toSnapshot(config: Config, runId: string, group: number, step: number, c: GroupCheckpoint): SnapshotInput {
  const tensors: NamedArray[] = [
    { name: 'weights', shape: [c.state.weights.length], data: c.state.weights },
    { name: 'published', shape: [c.published.weights.length], data: c.published.weights },
    ...c.state.optimizer.map((o) => ({ name: `optimizer/${o.name}`, shape: o.shape, data: o.data })),
    ...(c.outer
      ? [
          { name: 'outer/anchor', shape: [c.outer.anchor.length], data: c.outer.anchor },
          { name: 'outer/momentum', shape: [c.outer.momentum.length], data: c.outer.momentum },
        ]
      : []),
  ];
  return {
    header: {
      runId,
      group,
      step,
      model: config.workload,
      extra: { cursor: c.cursor, publishedStep: c.published.step, config },
    },
    tensors,
  };
}

function fromSnapshot(s: Snapshot): GroupCheckpoint {
  const byName = new Map(s.tensors.map((t) => [t.name, t]));
  const extra = s.header.extra as { cursor: DataCursor; publishedStep: number };
  return {
    state: {
      weights: byName.get('weights')!.data as Float32Array,
      optimizer: s.tensors
        .filter((t) => t.name.startsWith('optimizer/'))
        .map((t) => ({ name: t.name.slice('optimizer/'.length), shape: t.shape, data: t.data as Float32Array })),
    },
    cursor: extra.cursor,
    published: { group: s.header.group, step: extra.publishedStep, weights: byName.get('published')!.data as Float32Array },
    ...(byName.has('outer/anchor')
      ? { outer: { anchor: byName.get('outer/anchor')!.data as Float32Array, momentum: byName.get('outer/momentum')!.data as Float32Array } }
      : {}),
  };
}

/** One group's checkpoints: writes queue behind each other, off the training loop's critical path. */
export class CheckpointWriter {
  private readonly queue = new SerialQueue();

  constructor(
    private readonly store: SnapshotStore,
    private readonly config: Config,
    private readonly runId: string,
    private readonly group: number,
    private readonly emit: (e: CheckpointEvent) => void,
  ) {}

  /** The group's state after `step` updates, written once the writes before it are done. */
  submit(step: number, c: GroupCheckpoint): void {
    this.queue.push(() => this.write(step, c));
  }

  /** Waits for the writes submitted so far; rethrows the first failure (earlier checkpoints stay intact). */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  /** Waits for the writes submitted so far, failed or not. */
  settled(): Promise<void> {
    return this.queue.settled();
  }

  private async write(step: number, c: GroupCheckpoint): Promise<void> {
    const t0 = performance.now();
    const snapshot = toSnapshot(this.config, this.runId, this.group, step, c);
    await this.store.put(snapshot);
    const common = await this.store.latestCommonStep(this.config.groups);
    await this.store.prune(this.group, this.config.checkpoint.keep, common);
    const bytes = snapshot.tensors.reduce((m, t) => m + t.data.byteLength, 0);
    this.emit({ type: 'checkpoint', group: this.group, step, ms: performance.now() - t0, bytes, time: Date.now() });
    killPoint('checkpoint', step);
  }
}

/** Group `group`'s checkpoint at `step`; an error naming the store when it is not there. */
export async function loadCheckpoint(store: SnapshotStore, group: number, step: number): Promise<GroupCheckpoint> {
  const s = await store.get(group, step);
  if (!s) throw new Error(`${store.where}: no checkpoint of group ${group} at step ${step}`);
  return fromSnapshot(s);
}

/** The newest checkpoint that every group has, or undefined for a run that never wrote one. */
export async function loadLatestCheckpoint(store: SnapshotStore, config: Pick<Config, 'groups'>): Promise<LoadedCheckpoint | undefined> {
  const step = await store.latestCommonStep(config.groups);
  if (step === undefined) return undefined;
  const groups: GroupCheckpoint[] = [];
  for (let g = 0; g < config.groups; g++) groups.push(await loadCheckpoint(store, g, step));
  return { step, groups };
}

/** A checkpoint that cannot be read back as written (its checksum fails, it is cut short): a store error, not a missing one. */
const damaged = (err: unknown): err is SnapshotError => err instanceof SnapshotError && err.kind !== 'io';

/**
 * The newest step at which group `group`'s checkpoint reads back intact, below `before` (default: any), or
 * undefined when none does. A damaged one is reported through `warn` and passed over for the one before it.
 */
export async function newestIntactCheckpoint(
  store: SnapshotStore,
  group: number,
  warn: (e: WarningEvent) => void,
  before = Infinity,
): Promise<number | undefined> {
  const steps = (await store.list(group)).map((h) => h.step).filter((s) => s < before).sort((a, b) => b - a);
  for (const step of steps) {
    if (await readsBack(store, group, step, warn)) return step;
  }
  return undefined;
}

/**
 * The newest step at which every group has a checkpoint that reads back intact (where a whole run resumes), or
 * undefined. Damaged checkpoints are reported through `warn`; the run resumes from the newest step before them.
 */
export async function newestIntactCommonStep(store: SnapshotStore, groups: number, warn: (e: WarningEvent) => void): Promise<number | undefined> {
  const lists = await Promise.all(Array.from({ length: groups }, (_, g) => store.list(g)));
  const common = lists[0].map((h) => h.step).filter((s) => lists.every((l) => l.some((h) => h.step === s)));
  for (const step of common.sort((a, b) => b - a)) {
    let intact = true;
    for (let g = 0; g < groups && intact; g++) intact = await readsBack(store, g, step, warn);
    if (intact) return step;
  }
  return undefined;
}

async function readsBack(store: SnapshotStore, group: number, step: number, warn: (e: WarningEvent) => void): Promise<boolean> {
  try {
    return (await store.get(group, step)) !== undefined;
  } catch (err) {
    if (!damaged(err)) throw err;
    warn({
      type: 'warning',
      kind: 'damaged-checkpoint',
      group,
      step,
      message: `group ${group}'s checkpoint of step ${step} is damaged (${(err as Error).message}); passed over for an older checkpoint`,
      time: Date.now(),
    });
    return false;
  }
}
