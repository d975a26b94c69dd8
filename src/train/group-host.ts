/**
 * A group hosted on its own: in a child process of a supervisor (process placement) or as the only group of a
 * process on some machine (`codistill train --group i`). It opens what a group needs that a supervisor would
 * otherwise share: the workload's data, the run's checkpoint store, and an exchange over the run's snapshot store.
 */
import type { Config } from '../config/schema.js';
import { workloadOf } from '../config/load.js';
import type { SnapshotStore } from '../store/snapshot.js';
import { openSnapshotStore } from '../store/index.js';
import { StoreExchange } from '../exchange/store-exchange.js';
import type { WorkloadData } from '../workloads/workload.js';
import type { GroupTrainerOptions } from './group-trainer.js';
import { newestIntactCheckpoint } from './checkpoints.js';
import { SupervisedGroup, type SupervisedOptions } from './supervised-group.js';
import { exchangeKeep, runStoreOf } from './run-store.js';

export interface HostedGroup {
  /** The group's loop, restarted from its checkpoint when one of its actors fails. */
  trainer: SupervisedGroup;
  /** The checkpoint step the group continues from (0: the initialisation). */
  from: number;
  data: WorkloadData;
  checkpoints: SnapshotStore;
  close(): Promise<void>;
}

export type HostOptions = Pick<GroupTrainerOptions, 'group' | 'faults' | 'evaluate'> & {
  emit: SupervisedOptions['emit'];
  config: Config;
  runDir: string;
  /** The checkpoint step to continue from; 'newest': the group's newest checkpoint in the store, if any. */
  from?: number | 'newest';
};

/** The exchange of a run whose groups are not all in this process: through the run's snapshot store. */
export function storeExchange(config: Config, runDir: string): StoreExchange {
  const store = runStoreOf(config, runDir);
  return new StoreExchange(openSnapshotStore(store.exchange), {
    runId: store.url,
    model: config.workload,
    keep: exchangeKeep(config),
    pollMs: config.store.pollMs,
  });
}

export async function hostGroup(o: HostOptions): Promise<HostedGroup> {
  const { config, runDir } = o;
  const store = runStoreOf(config, runDir);
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const data = await workloadOf(config).open(config);
    closers.push(() => data.close());
    const checkpoints = openSnapshotStore(store.checkpoints);
    closers.push(() => checkpoints.close());
    const exchange = storeExchange(config, runDir);
    closers.push(() => exchange.close());
    const from = o.from === 'newest' ? await newestIntactCheckpoint(checkpoints, o.group, o.emit) : o.from;
    const trainer = await SupervisedGroup.start({ ...o, from, runId: store.url, data, exchange, checkpoints });
    closers.push(() => trainer.close());
    return { trainer, from: from ?? 0, data, checkpoints, close };
  } catch (err) {
    await close();
    throw err;
  }
}
