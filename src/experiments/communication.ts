/**
 * Bytes a training step moves between workers, per arm: what a cluster running the same arm would send, float32
 * (4 bytes) per weight or gradient value, for a model of P parameters.
 *
 * An arm stands for a data-parallel layout of W workers per group, each with a fixed share of the group's batch:
 *
 *   within a group   sync SGD: a ring all-reduce of the gradient, 2 (W - 1) x 4P bytes sent by all W workers together;
 *                    async or delayed SGD: every worker sends its gradient to the parameter server and reads the
 *                    weights back, 8P per update, W updates a step;
 *   between groups   codistillation: at each exchange every group's snapshot goes to each of the N - 1 others,
 *                    N (N - 1) x 4P; averaging (DiLoCo, local SGD): a ring all-reduce of the weights, 2 (N - 1) x 4P;
 *                    spread over the steps between exchanges (the exact number of exchanges in the run / its steps).
 *
 * The experiments run on one machine, through shared memory; these are the bytes the same arms would put on a network.
 */
import type { Config } from '../config/schema.js';
import type { ArmResult } from './arms.js';
import type { ReportTable } from './report.js';
import { distilling } from '../train/group-trainer.js';
import { averageDue, exchangeDue } from '../train/schedule.js';

export interface StepBytes {
  /** Bytes all groups' workers send among themselves per step (data parallelism inside each group). */
  within: number;
  /** Bytes the groups send each other per step, averaged over the run (codistillation's snapshots, averaging). */
  between: number;
}

/** Exchanges in a run of `config.steps` steps. */
export function exchangesInRun(config: Config): number {
  const { steps, groups, distill } = config;
  if (distill.method === 'average') {
    let n = 0;
    for (let s = 1; s <= steps; s++) if (averageDue(s, groups, distill.exchangeEvery)) n++;
    return n;
  }
  if (!distilling(config)) return 0;
  let n = 0;
  for (let s = 1; s <= steps; s++) if (exchangeDue(s, distill.exchangeEvery, distill.burnIn)) n++;
  return n;
}

/** The bytes per step of `config`'s arm with `workers` workers per group (default: its replicas). */
export function bytesPerStep(config: Config, parameters: number, workers = config.replicas): StepBytes {
  const model = 4 * parameters;
  const n = config.groups;
  const perGroup = config.sgd.mode === 'sync' ? 2 * (workers - 1) * model : workers > 1 ? 2 * model * workers : 0;
  const perExchange = config.distill.method === 'average' ? 2 * (n - 1) * model : n * (n - 1) * model;
  return { within: n * perGroup, between: (exchangesInRun(config) * perExchange) / config.steps };
}

/** 1234567 -> "1.23 MB": bytes in decimal units, three significant digits. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  if (bytes === 0) return '0';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  const k = Math.min(units.length - 1, Math.max(0, Math.floor(Math.log10(bytes) / 3)));
  return `${(bytes / 1000 ** k).toPrecision(3)} ${units[k]}`;
}

/**
 * What every arm would send per step on a network (one row per arm label): its layout of workers per group
 * (`workers(config)`, e.g. the group's batch over the sweep's base batch), the bytes within groups and between
 * groups per step, and their sum over the run.
 */
export function bytesTable(results: readonly ArmResult[], workers: (config: Config) => number, name = 'bytes'): ReportTable {
  const labels = [...new Set(results.map((r) => r.arm.label))];
  return {
    name,
    title: 'Bytes a cluster running each arm would send (float32 values; workers per group each with a share of the group batch)',
    header: ['arm', 'parameters', 'workers per group', 'within groups, per step', 'between groups, per step', 'whole run'],
    rows: labels.map((label) => {
      const r = results.find((x) => x.arm.label === label)!;
      const c = r.arm.config;
      const w = workers(c);
      const b = bytesPerStep(c, r.curve.parameters, w);
      return [label, r.curve.parameters.toLocaleString('en-US'), String(w), formatBytes(b.within), formatBytes(b.between), formatBytes((b.within + b.between) * c.steps)];
    }),
  };
}
