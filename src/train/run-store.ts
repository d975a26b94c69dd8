/**
 * The run's store: one address (`store.url`) under which the groups of a run, wherever they are, find each other.
 *
 *   <url>/exchange       the snapshots the groups publish for each other's teachers
 *   <url>/checkpoints    every group's checkpoints
 *   <url>/run.json       the config the run was started with, less where and how it is placed
 *
 * An empty `store.url` is the run folder in LMDB (`<runDir>/checkpoints`, as a run in one process always had).
 * A group that joins a run (`codistill train --group i`) must bring the same config: one that differs is refused
 * with the keys that differ, because two groups of different models or schedules would teach each other nonsense.
 */
import type { Config } from '../config/schema.js';
import { KEEP_PUBLISHED } from '../exchange/exchange.js';
import { RunError } from '../group/group.js';
import { childAddress, putRecordOnce, writeRecord } from '../store/index.js';

export interface RunStore {
  /** The store's address as configured, or the run folder's. */
  url: string;
  exchange: string;
  checkpoints: string;
  /** Whether `store.url` named the store (rather than defaulting to the run folder). */
  named: boolean;
}

export const RUN_RECORD = 'run.json';

export function runStoreOf(config: Config, runDir: string): RunStore {
  const url = config.store.url || `lmdb:${runDir}`;
  return { url, exchange: childAddress(url, 'exchange'), checkpoints: childAddress(url, 'checkpoints'), named: config.store.url !== '' };
}

/** Keys that say where and how a run is placed, not what it trains: they may differ between a run's groups. */
const PLACE_KEYS = new Set(['runDir', 'name', 'placement']);

/** The part of a config that every group of a run must share. */
export function recordedConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !PLACE_KEYS.has(k)));
}

/** Dotted keys whose values differ between two config trees (`optim.lr`, `distill.exchangeEvery`). */
export function differingKeys(a: unknown, b: unknown, prefix = ''): string[] {
  const isTree = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isTree(a) && isTree(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differingKeys(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(the whole config)'];
}

/**
 * Records the run's config in its store, or checks it against the one recorded there. `replace` (a whole run
 * resumed by its own supervisor, which may change keys on purpose) writes ours over it instead of checking.
 */
export async function claimRunConfig(store: RunStore, config: Config, replace = false): Promise<void> {
  const ours = `${JSON.stringify(recordedConfig(config), null, 2)}\n`;
  if (replace) {
    await writeRecord(store.url, RUN_RECORD, ours);
    return;
  }
  const stored = await putRecordOnce(store.url, RUN_RECORD, ours);
  if (stored === ours) return;
  const keys = differingKeys(JSON.parse(stored), JSON.parse(ours));
  if (keys.length === 0) return;
  throw new RunError(
    `${store.url}: the run recorded there has another config; differing keys: ${keys.join(', ')} ` +
      '(start this group with the config the run was started with, or use another store.url)',
  );
}

/**
 * Snapshots the exchange keeps per group: enough that a group restarted from its newest checkpoint still finds the
 * other groups' snapshots it needs (they may have run up to two exchanges past it while it was down).
 */
export function exchangeKeep(config: Config): number {
  const { exchangeEvery } = config.distill;
  const interval = config.checkpoint.every > 0 ? config.checkpoint.every : config.steps;
  return KEEP_PUBLISHED + (exchangeEvery > 0 ? Math.ceil(interval / exchangeEvery) + 1 : 1);
}
