/**
 * `codistill experiment <scaling|staleness|churn>`: runs one experiment's arms (resumably) and writes its report
 * folder: report.md, tables as CSV and JSON, plots as PNG and SVG, and every arm's config and metrics.
 */
import { resolve } from 'node:path';
import { ConfigError } from '../config/load.js';
import { loadBudget } from '../experiments/budget.js';
import { churnExperiment } from '../experiments/churn.js';
import { EXPERIMENTS, type ExperimentContext, type ExperimentName, type ExperimentOutcome } from '../experiments/context.js';
import { scalingExperiment } from '../experiments/scaling.js';
import { stalenessExperiment } from '../experiments/staleness.js';

export interface ExperimentFlags {
  /** A budget name from config/experiments/ (test, quick, full) or a JSON file; default quick. */
  budget?: string;
  /** Run on this preset's workload with its own budgets (config/experiments/PRESET/); default the language model's. */
  preset?: string;
  /** Report folder; default results/<experiment>/<budget>. */
  out?: string;
  /** `key=value` overrides of every arm's config. */
  set?: string[];
  /** `key=value` overrides of the budget itself (e.g. `scaling.steps=400`). */
  budgetSet?: string[];
  /** Progress lines (default: stderr). */
  write?: (line: string) => void;
}

const RUNNERS: Record<ExperimentName, (ctx: ExperimentContext) => Promise<ExperimentOutcome>> = {
  scaling: scalingExperiment,
  staleness: stalenessExperiment,
  churn: churnExperiment,
};

export const defaultOut = (name: string, budget: string): string =>
  resolve('results', name, budget.replace(/\.json$/, '').replace(/[^\w.-]+/g, '-'));

export async function experimentCommand(name: string, flags: ExperimentFlags = {}): Promise<ExperimentOutcome> {
  if (!(EXPERIMENTS as readonly string[]).includes(name)) {
    throw new ConfigError(`unknown experiment "${name}" (one of: ${EXPERIMENTS.join(', ')})`);
  }
  const budgetName = flags.budget ?? 'quick';
  const budget = loadBudget(budgetName, flags.budgetSet ?? [], flags.preset);
  const ctx: ExperimentContext = {
    name: name as ExperimentName,
    budgetName,
    preset: flags.preset,
    budget,
    set: flags.set ?? [],
    out: resolve(flags.out ?? defaultOut(name, flags.preset ? `${flags.preset}-${budgetName}` : budgetName)),
    write: flags.write,
  };
  const outcome = await RUNNERS[ctx.name](ctx);
  process.stdout.write(`${name}: report written to ${outcome.report}\n`);
  return outcome;
}
