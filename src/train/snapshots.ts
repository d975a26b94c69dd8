/**
 * A trained run's models as a program that did not train them finds them: every group's weights at one checkpoint
 * step of the run's store (the newest step every group has, or a named one), for predictions and evaluations.
 */
import type { Config } from '../config/schema.js';
import { RunError } from '../group/group.js';
import { openSnapshotStore } from '../store/index.js';
import type { SnapshotStore } from '../store/snapshot.js';
import { loadCheckpoint } from './checkpoints.js';
import { runStoreOf } from './run-store.js';

/** The run has no checkpoint at the step asked for (or none every group has yet). */
export class NoCheckpointError extends RunError {
  override name = 'NoCheckpointError';
}

export interface RunModels {
  /** The checkpoint step the weights are from. */
  step: number;
  /** Each group's weights at that step, by group. */
  weights: Float32Array[];
}

/**
 * The weights of every group of the run in `runDir` (its store: `config.store.url`, or the run folder) at `step`,
 * or at the newest step every group has a checkpoint of. Errors name the store and the steps it does have.
 */
export async function loadRunModels(config: Config, runDir: string, step: number | 'newest' = 'newest'): Promise<RunModels> {
  const store = openSnapshotStore(runStoreOf(config, runDir).checkpoints);
  try {
    const at = await checkpointStepIn(store, config.groups, step);
    const weights: Float32Array[] = [];
    for (let g = 0; g < config.groups; g++) weights.push((await loadCheckpoint(store, g, at)).state.weights);
    return { step: at, weights };
  } finally {
    await store.close();
  }
}

/** The checkpoint step that `step` names in the run's store: itself if every group has it, or the newest they all have. */
export async function checkpointStep(config: Config, runDir: string, step: number | 'newest' = 'newest'): Promise<number> {
  const store = openSnapshotStore(runStoreOf(config, runDir).checkpoints);
  try {
    return await checkpointStepIn(store, config.groups, step);
  } finally {
    await store.close();
  }
}

async function checkpointStepIn(store: SnapshotStore, groups: number, step: number | 'newest'): Promise<number> {
  const at = step === 'newest' ? await store.latestCommonStep(groups) : step;
  if (at === undefined) throw new NoCheckpointError(`${store.where}: the run has no checkpoint that every group has yet`);
  const lists = await Promise.all([...Array(groups).keys()].map((g) => store.list(g)));
  const have = lists[0].map((h) => h.step).filter((s) => lists.every((l) => l.some((h) => h.step === s)));
  if (!have.includes(at)) throw new NoCheckpointError(`${store.where}: no checkpoint at step ${at} (there are: ${have.join(', ') || 'none'})`);
  return at;
}
