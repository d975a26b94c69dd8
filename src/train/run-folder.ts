/**
 * A run folder belongs to one run, trained by one process at a time.
 *
 *   the lock       `run.lock` (or `group-<i>.lock` for one group of a launcher-placed run) holds the pid and host of
 *                  the process training there; a second process is refused with the holder's pid. A lock whose
 *                  process is gone (killed, crashed) is stale and taken over.
 *   a used folder  (checkpoints, or a metrics log with training steps in it) is not started again from step 0 unless
 *                  asked to (`overwrite`): resume it, or name the new run otherwise. A folder that holds only the
 *                  record of a start that failed before training is free to start again.
 *   a resume       continues the same models on the same data: keys that change the model's shape, the group count,
 *                  the workload or its data, the exchange method or the SGD mode are refused (they would load weights
 *                  or optimizer state into another model or optimizer, or train on other data), naming each key.
 *                  Other keys (steps, learning rate, distillation) may change.
 */
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { Workload } from '../workloads/workload.js';
import { RunError } from '../group/group.js';
import { readJsonFile } from '../util/json-file.js';
import { readMetrics } from './metrics.js';
import { openSnapshotStore } from '../store/index.js';
import { differingKeys, runStoreOf } from './run-store.js';

/** The run folder is held by another live process. */
export class RunLockedError extends RunError {
  override name = 'RunLockedError';
}

interface LockRecord {
  pid: number;
  host: string;
  since: string;
}

/** Whether a process with this pid is alive on this machine (EPERM: alive, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as LockRecord;
    return typeof r.pid === 'number' ? r : undefined;
  } catch {
    return undefined; // unreadable or half-written: a crash while taking it, so nobody holds it
  }
}

export interface RunLock {
  readonly file: string;
  release(): void;
}

/**
 * Takes the run folder's lock (creating the folder), or throws a RunLockedError naming the process that holds it.
 * The lock is created exclusively (`wx`), so two processes starting at once cannot both take it.
 */
export function lockRunFolder(runDir: string, name = 'run.lock'): RunLock {
  const file = join(runDir, name);
  const record: LockRecord = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      try {
        writeSync(fd, `${JSON.stringify(record)}\n`);
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw heldBy(file);
        throw err;
      }
      const holder = readLock(file);
      // Another host's process cannot be asked whether it lives: its lock stands until removed by hand.
      if (holder && (holder.host !== record.host || alive(holder.pid))) throw heldBy(file, holder);
      unlinkSync(file); // stale: its process is gone
    }
  }
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      // Only our own lock is removed (a folder deleted and reused meanwhile holds someone else's).
      if (readLock(file)?.pid === process.pid) rmSync(file, { force: true });
    },
  };
}

function heldBy(file: string, holder = readLock(file)): RunLockedError {
  const who = holder ? `process ${holder.pid} on ${holder.host} (since ${holder.since})` : 'another process';
  return new RunLockedError(
    `${file}: the run folder is in use by ${who}; wait for it to end or stop it` +
      (holder && holder.host !== hostname() ? ', or delete the lock file if that process is gone' : ''),
  );
}

/**
 * What a folder already holds of a run: checkpoints in the run's store, or a metrics log that shows training
 * steps. Undefined when it is free (missing, empty, or only the record of a start that failed before training).
 */
async function runFolderUse(config: Config, runDir: string): Promise<string | undefined> {
  const store = openSnapshotStore(runStoreOf(config, runDir).checkpoints);
  try {
    const held = await store.list();
    if (held.length > 0) return `checkpoints in ${store.where}`;
  } finally {
    await store.close();
  }
  if (!existsSync(runDir)) return undefined;
  for (const log of readdirSync(runDir).filter((e) => /^metrics(-group-\d+)?\.jsonl$/.test(e))) {
    if (readMetrics(join(runDir, log)).some((e) => e.type === 'step')) return `a metrics log of training steps, ${log}`;
  }
  return undefined;
}

/**
 * Refuses to start a new run in a folder a run has used, unless `overwrite`, which empties the folder first (a
 * store elsewhere, `store.url`, is never emptied: its checkpoints may be another machine's).
 */
export async function claimNewRunFolder(config: Config, runDir: string, overwrite: boolean): Promise<void> {
  const use = await runFolderUse(config, runDir);
  if (use === undefined) return;
  if (!overwrite || (runStoreOf(config, runDir).named && use.startsWith('checkpoints'))) {
    throw new RunError(
      `${runDir} already holds a run (${use}): resume it (codistill train --resume ${runDir}), ` +
        `start this one under another name (--set name=...)${overwrite ? ' or store.url' : ', or replace it (--overwrite)'}`,
    );
  }
  for (const entry of readdirSync(runDir)) {
    if (!entry.endsWith('.lock')) rmSync(join(runDir, entry), { recursive: true, force: true });
  }
}

/** Keys a resume may not change: the workload, the group count, and every key of the workload's own sections that changes what it computes. */
export function resumeFixedKeys(key: string, workload: Workload): boolean {
  // The checkpoints' optimizer state is of this exchange and this way of combining gradients (an outer optimizer, a
  // parameter server with its in-flight weight versions).
  if (key === 'workload' || key === 'groups' || key === 'distill.method' || key.startsWith('sgd.')) return true;
  const section = key.split('.')[0];
  return section in workload.sections && !(workload.untracked ?? []).includes(key);
}

/**
 * Checks that a resume continues the run it names: the saved config and the one to resume with may differ only in
 * keys that change neither the model's shape, nor the groups, nor the data. Throws a RunError naming the keys.
 */
export function checkResume(saved: Config, config: Config, workload: Workload, runDir: string): void {
  const keys = differingKeys(saved, config).filter((k) => resumeFixedKeys(k, workload));
  if (keys.length === 0) return;
  const values = keys.map((k) => `${k} ${show(get(saved, k))} -> ${show(get(config, k))}`);
  throw new RunError(
    `cannot resume ${runDir} with another model, group count, data, exchange method or SGD mode: ${values.join(', ')} ` +
      '(its checkpoints are of the run as it was started; start a new run for the new config)',
  );
}

function get(tree: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((t, k) => (t && typeof t === 'object' ? (t as Record<string, unknown>)[k] : undefined), tree);
}

const show = (v: unknown): string => (v === undefined ? '(unset)' : JSON.stringify(v));

/** The config a run folder was started with (`config.json`), or undefined when there is none. */
export function savedConfig(runDir: string): Config | undefined {
  const file = join(runDir, 'config.json');
  if (!existsSync(file)) return undefined;
  return readJsonFile(file) as Config;
}
