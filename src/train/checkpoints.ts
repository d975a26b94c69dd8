/**
 * Checkpoints of a run: every group's weights, optimizer state, data cursor, the snapshot its teachers currently
 * serve to the other groups, the step and the resolved config, written for all groups in ONE store transaction.
 * The last `checkpoint.keep` are kept. Resuming loads the newest step every group has, so a stopped run continues
 * the same trajectory (bitwise, in sync mode on a deterministic backend).
 */
import type { Config } from '../config/schema.js';
import type { DataCursor } from '../workloads/lm/data/batches.js';
import type { NamedArray, SnapshotInput, SnapshotStore } from '../store/snapshot.js';
import { openSnapshotStore } from '../store/index.js';
import type { ModelState } from '../../actors/replica-messages.js';
import type { Published } from './board.js';
import type { CheckpointEvent } from './events.js';
import { StepGather } from './step-gather.js';

export interface GroupCheckpoint {
  state: ModelState;
  cursor: DataCursor;
  /** This group's snapshot that the other groups' teachers use at this step. */
  published: Published;
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

export class CheckpointWriter {
  private readonly gather: StepGather<GroupCheckpoint>;

  private constructor(
    readonly store: SnapshotStore,
    private readonly config: Config,
    private readonly runId: string,
    private readonly emit: (e: CheckpointEvent) => void,
  ) {
    this.gather = new StepGather(config.groups, (step, states) => this.write(step, states));
  }

  /** Opens the store at `path`; `emit` gets a `checkpoint` event for every step written. */
  static async open(path: string, config: Config, emit: (e: CheckpointEvent) => void): Promise<CheckpointWriter> {
    return new CheckpointWriter(await openSnapshotStore(path), config, path, emit);
  }

  /** Group `group`'s state after `step` updates; all groups' states for a step are written together. */
  submit(group: number, step: number, c: GroupCheckpoint): void {
    this.gather.submit(group, step, c);
  }

  /** Waits for the writes submitted so far; rethrows the first failure (earlier checkpoints stay intact). */
  drain(): Promise<void> {
    return this.gather.drain();
  }

  async close(): Promise<void> {
    await this.gather.settled();
    await this.store.close();
  }

  private async write(step: number, states: GroupCheckpoint[]): Promise<void> {
    const t0 = performance.now();
    const snapshots = states.map((gc, g) => toSnapshot(this.config, this.runId, g, step, gc));
    await this.store.putMany(snapshots);
    for (let g = 0; g < this.config.groups; g++) await this.store.prune(g, this.config.checkpoint.keep);
    const bytes = snapshots.reduce((n, s) => n + s.tensors.reduce((m, t) => m + t.data.byteLength, 0), 0);
    this.emit({ type: 'checkpoint', step, ms: performance.now() - t0, bytes, time: Date.now() });
  }
}

/** The newest checkpoint that every group has, or undefined for a run that never wrote one. */
export async function loadLatestCheckpoint(store: SnapshotStore, config: Config): Promise<LoadedCheckpoint | undefined> {
  const step = await store.latestCommonStep(config.groups);
  if (step === undefined) return undefined;
  const groups: GroupCheckpoint[] = [];
  for (let g = 0; g < config.groups; g++) {
    const s = await store.get(g, step);
    if (!s) throw new Error(`${store.where}: checkpoint of group ${g} at step ${step} vanished while loading`);
    const byName = new Map(s.tensors.map((t) => [t.name, t]));
    const extra = s.header.extra as { cursor: DataCursor; publishedStep: number };
    groups.push({
      state: {
        weights: byName.get('weights')!.data as Float32Array,
        optimizer: s.tensors
          .filter((t) => t.name.startsWith('optimizer/'))
          .map((t) => ({ name: t.name.slice('optimizer/'.length), shape: t.shape, data: t.data as Float32Array })),
      },
      cursor: extra.cursor,
      published: { group: g, step: extra.publishedStep, weights: byName.get('published')!.data as Float32Array },
    });
  }
  return { step, groups };
}
