/**
 * What every experiment is given (its budget, the user's overrides, the output folder) and the parts of every
 * report that do not depend on the experiment: how to reproduce it and what the model and data were.
 */
import { workloadOf } from '../config/load.js';
import type { ArmResult } from './arms.js';
import type { Budget } from './budget.js';
import { lossVsStepsSpec, lossVsTimeSpec, type Series } from './plots.js';
import type { Report } from './report.js';

export const EXPERIMENTS = ['scaling', 'staleness', 'churn'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface ExperimentContext {
  name: ExperimentName;
  /** The budget's name (or file) as given on the command line. */
  budgetName: string;
  /** The preset given with `-p` (its budgets live in config/experiments/PRESET/). */
  preset?: string;
  budget: Budget;
  /** `--set key=value` overrides for every arm's config. */
  set: string[];
  out: string;
  /** Progress lines (default: stderr). */
  write?: (line: string) => void;
}

export interface ExperimentOutcome {
  dir: string;
  /** report.md's path. */
  report: string;
  plots: string[];
}

export function reproduceCommand(ctx: ExperimentContext): string {
  const sets = ctx.set.map((s) => ` --set ${s}`).join('');
  return `codistill experiment ${ctx.name}${ctx.preset ? ` -p ${ctx.preset}` : ''} --budget ${ctx.budgetName}${sets}`;
}

/** The common head of every report: the command, the budget, the model and the data (as the first arm had them). */
export function preamble(report: Report, ctx: ExperimentContext, first: ArmResult, what: string): void {
  const sample = first.arm.config;
  const backend = first.curve.backend;
  const schedule = sample.optim.decay === 'none' ? 'a constant rate' : `${sample.optim.decay} decay`;
  report.text(
    `${what}\n\n` +
      `Reproduce with \`${reproduceCommand(ctx)}\` (re-running it skips finished arms and resumes an interrupted one). ` +
      `Budget \`${ctx.budgetName}\`${ctx.budget.description ? `: ${ctx.budget.description}` : ''}.\n\n` +
      `${workloadOf(sample).describe(sample)} ` +
      `Optimizer ${sample.optim.optimizer}, ${schedule} after warm-up, gradient clipping at ${sample.optim.clipNorm}. ` +
      `Validation: ${sample.eval.examples} held-out examples every ${sample.eval.every} steps; ` +
      `"model" losses are the mean over a run's groups of each single model's loss. ` +
      `Backend ${backend}; every arm's resolved config and raw metrics.jsonl are in \`arms/<arm>/\`.\n`,
  );
}

/** The validation loss of every series against steps and against wall time; the captions end with `whose`. */
export async function lossCurvePlots(
  report: Report,
  series: readonly Series[],
  targets: readonly number[],
  whose: string,
  whoseInTime = whose,
): Promise<void> {
  await report.plot('loss-vs-steps', lossVsStepsSpec(series, targets, 'Validation loss against steps'), `Validation cross-entropy against training steps, ${whose}`);
  await report.plot('loss-vs-time', lossVsTimeSpec(series, targets, 'Validation loss against wall time'), `Validation cross-entropy against wall-clock seconds, ${whoseInTime}`);
}

/** Writes report.md and results.json (what was run, then the experiment's own numbers in `data`). */
export function finish(report: Report, ctx: ExperimentContext, data: Record<string, unknown>): ExperimentOutcome {
  report.write({ experiment: ctx.name, budget: ctx.budgetName, budgetSettings: ctx.budget, set: ctx.set, ...data });
  return { dir: ctx.out, report: `${ctx.out}/report.md`, plots: report.plots };
}
