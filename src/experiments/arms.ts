/**
 * Runs an experiment's arms one after the other, each a full training run in `<out>/arms/<arm id>/`, and makes the
 * whole experiment resumable: re-running the same command skips arms whose log ends in `done`, resumes an arm that
 * was cut short from its newest checkpoint, and starts the rest. A finished arm's log is kept compressed beside it
 * too (metrics.jsonl.gz), which is all a committed results folder needs of it.
 *
 * Progress: one line per arm (arm i of n, the experiment's share of work done and its ETA), then the run's own bar.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { ConfigError, merge, validateConfig, workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ensureData } from '../commands/ingest.js';
import { watchRun } from '../train/watch.js';
import { startRun } from '../train/run.js';
import { readJsonFile } from '../util/json-file.js';
import { duration } from '../util/progress.js';
import { type Curve, readCurve } from './curves.js';

export interface Arm {
  /** Folder name, unique within the experiment (e.g. `sync-b16-s1`). */
  id: string;
  /** What tables and plots call the arm (seeds of one arm share it). */
  label: string;
  seed: number;
  config: Config;
}

export interface ArmResult {
  arm: Arm;
  runDir: string;
  curve: Curve;
}

export interface RunArmsOptions {
  out: string;
  /** Progress lines (default: stderr). */
  write?: (line: string) => void;
  /** For an experiment run in phases: arms before these, and arms in all (for the `arm i/n` count). */
  numbering?: { before: number; total: number };
}

/** The folder an arm trains in. */
export const armDir = (out: string, id: string): string => resolve(out, 'arms', id);

/** Relative cost of an arm (examples per step of all groups; a distillation step also runs N-1 teacher forwards). */
function cost(c: Config): number {
  const teacher = c.groups > 1 && c.distill.alpha > 0 ? 0.4 * (c.groups - 1) : 0;
  return c.steps * c.groups * c.optim.batch * (1 + teacher);
}

/**
 * The saved config must be this arm's: a changed budget must not silently mix two experiments in one folder. The
 * saved one is resolved by today's schema first, so a config key added since (with its default) is no difference;
 * neither are the workload's untracked keys (e.g. reader threads and read-ahead).
 */
function checkSameConfig(dir: string, config: Config): void {
  let saved: Config | undefined;
  try {
    saved = validateConfig(readJsonFile(join(dir, 'config.json')));
  } catch {
    saved = undefined; // a key that no longer exists, or a value no longer allowed: not this arm's config
  }
  // Where the run lives and how many batches are read ahead change nothing it computes.
  const strip = (c: Config) => {
    const copy = JSON.parse(JSON.stringify({ ...c, runDir: '', name: '' })) as Record<string, Record<string, unknown>>;
    for (const key of workloadOf(c).untracked ?? []) {
      const [section, name] = key.split('.');
      if (copy[section]) copy[section][name] = 0;
    }
    return JSON.stringify(copy);
  };
  if (!saved || strip(saved) !== strip(config)) {
    throw new ConfigError(
      `${dir} holds a run with another config than this experiment's arm; ` +
        'use another --out folder, or delete that arm folder to train it again',
    );
  }
}

export async function runArms(arms: readonly Arm[], opts: RunArmsOptions): Promise<ArmResult[]> {
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const ids = new Set(arms.map((a) => a.id));
  if (ids.size !== arms.length) throw new Error('experiment arms must have distinct ids');
  const total = arms.reduce((n, a) => n + cost(a.config), 0);
  let doneCost = 0;
  let spentCost = 0;
  const started = performance.now();
  const results: ArmResult[] = [];
  const before = opts.numbering?.before ?? 0;
  const count = opts.numbering?.total ?? arms.length;
  for (const [k, arm] of arms.entries()) {
    const i = before + k;
    const dir = armDir(opts.out, arm.id);
    const config: Config = { ...arm.config, runDir: resolve(opts.out, 'arms'), name: arm.id };
    const metrics = join(dir, 'metrics.jsonl');
    const exists = existsSync(join(dir, 'config.json'));
    if (exists) checkSameConfig(dir, config);
    const previous = exists ? readCurve(metrics) : undefined;
    let curve = previous;
    const head = `arm ${i + 1}/${count} ${arm.id} (${arm.label}, seed ${arm.seed})`;
    if (previous?.finished) {
      write(`${head}: finished earlier, skipped`);
      compressLog(metrics);
    } else {
      await ensureData(config);
      const secs = (performance.now() - started) / 1000;
      const eta = spentCost > 0 ? `, ETA ${duration(((total - doneCost) * secs) / spentCost)}` : '';
      const pct = Math.round((100 * doneCost) / total);
      write(`${head}: ${exists ? 'resuming from its newest checkpoint' : 'starting'} (${pct}% of the queued arms' work done${eta})`);
      const run = startRun({ config, resume: exists ? dir : undefined });
      watchRun(run.events$, config, { label: `arm ${i + 1}/${count}` });
      await run.done;
      spentCost += cost(config);
      curve = readCurve(metrics);
      compressLog(metrics);
    }
    doneCost += cost(config);
    results.push({ arm, runDir: dir, curve: curve! });
  }
  return results;
}

/**
 * Keeps a finished arm's log also compressed, as FILE.gz beside it: what a results folder commits (a few hundred
 * kilobytes of JSON lines per arm shrink several-fold), and what a fresh clone reads the arm's curve from.
 */
function compressLog(file: string): void {
  if (existsSync(file) && (!existsSync(`${file}.gz`) || statSync(`${file}.gz`).mtimeMs < statSync(file).mtimeMs)) {
    writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
  }
}

/** Groups results by label, keeping the arms' order. */
export function byLabel(results: readonly ArmResult[]): Map<string, ArmResult[]> {
  const out = new Map<string, ArmResult[]>();
  for (const r of results) out.set(r.arm.label, [...(out.get(r.arm.label) ?? []), r]);
  return out;
}

/** Deep-merges config override objects (later wins). */
export const mergeOverrides = (...parts: Record<string, unknown>[]): Record<string, unknown> => parts.reduce(merge, {});
