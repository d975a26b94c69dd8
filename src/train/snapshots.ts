/**
 * A trained run's models as a program that did not train them finds them: every group's weights at one checkpoint
 * step of the run's store (the newest step every group has, or a named one), for predictions and evaluations.
 */
import type { Config } from '../config/schema.js';
import { RunError } from '../group/group.js';
import { openSnapshotStore } from '../store/index.js';
import { loadCheckpoint } from './checkpoints.js';
import { runStoreOf } from './run-store.js';

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
    const at = step === 'newest' ? await store.latestCommonStep(config.groups) : step;
    if (at === undefined) throw new RunError(`${store.where}: the run has no checkpoint that every group has yet`);
    const have = new Set((await store.list(0)).map((h) => h.step));
    if (!have.has(at)) {
      throw new RunError(`${store.where}: no checkpoint at step ${at} (there are: ${[...have].join(', ') || 'none'})`);
    }
    const weights: Float32Array[] = [];
    for (let g = 0; g < config.groups; g++) weights.push((await loadCheckpoint(store, g, at)).state.weights);
    return { step: at, weights };
  } finally {
    await store.close();
  }
}
