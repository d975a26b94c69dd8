/**
 * An experiment budget: how big each experiment is (steps, batch, seeds, arms), one JSON file per size in
 * config/experiments/ (`test` for the tests, `quick` for 2 CPU cores, `full` for bigger machines).
 *
 * Every arm's config is: the budget's preset <- the budget's `set` <- the user's `--set` <- what the arm itself
 * fixes (groups, batch, seed, distillation). A budget key the schema does not know is an error naming it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, applySet, loadConfig, presetDir, readJsonConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';

const int = (min: number) => z.number().int().min(min);

/** What every experiment section shares: how long each arm trains and how it is evaluated. */
const armShape = {
  steps: int(1).describe('training steps per arm (per group)'),
  evalEvery: int(1).describe('steps between validation passes: steps-to-target is read to about this resolution'),
  lr: z.number().positive().describe('peak learning rate at the section\'s base batch'),
  warmupSteps: int(0).describe('linear warm-up steps (every arm)'),
  /** Targets are `offset` nats above the reference arm's worst-seed final loss, so that the reference reaches all. */
  targetOffsets: z.array(z.number().min(0)).min(1).describe('validation cross-entropy targets, in nats above the reference arm\'s final loss'),
};

const scalingSchema = z.strictObject({
  ...armShape,
  batch: int(1).describe('B: the smallest global batch of the sync-SGD sweep'),
  multipliers: z.array(int(1)).min(2).describe('sync-SGD batches as multiples of B (e.g. [1, 2, 4])'),
  limitRatio: z.number().positive().max(1).describe('doubling the batch is saturated once steps(2b)/steps(b) reaches this'),
  labelSmoothing: z.number().min(0).max(1).describe('label-smoothing baseline strength'),
  lrFactors: z.array(z.number().positive()).min(1).default([1])
    .describe('the rate at each batch, tuned: the first seed runs at each of these multiples of the square-root-scaled rate and the lowest final loss wins ([1]: no tuning)'),
});

const stalenessSchema = z.strictObject({
  ...armShape,
  batch: int(1).describe('batch per group'),
  intervals: z.array(int(0)).min(1).describe('exchange intervals in steps (0 = never exchange after the first snapshot)'),
});

const churnSchema = z.strictObject({
  ...armShape,
  batch: int(1).describe('batch per group'),
  retrains: int(2).describe('R: retrains of each kind (seeds 1..R shifted by the budget\'s first seed)'),
});

export const budgetSchema = z.strictObject({
  description: z.string().default(''),
  preset: z.string().min(1).describe('the config preset every arm starts from'),
  set: z.array(z.string()).default([]).describe('`key=value` overrides of the preset for every arm'),
  seeds: z.array(int(0)).min(1).describe('seeds of each arm (initialisation and data order)'),
  scaling: scalingSchema,
  staleness: stalenessSchema,
  churn: churnSchema,
});

export type Budget = z.infer<typeof budgetSchema>;
export type ScalingBudget = Budget['scaling'];
export type StalenessBudget = Budget['staleness'];
export type ChurnBudget = Budget['churn'];
export type ArmBudget = Pick<ScalingBudget, keyof typeof armShape>;

/**
 * Reads a budget by name or path; `set` lines `scaling.steps=100` edit it. A budget is sized and tuned for one
 * preset: the language model's are config/experiments/NAME.json, another preset's config/experiments/PRESET/NAME.json.
 */
export function loadBudget(nameOrPath: string, set: readonly string[] = [], preset?: string): Budget {
  const dir = preset ? join(presetDir(), 'experiments', preset) : join(presetDir(), 'experiments');
  const file = nameOrPath.endsWith('.json') ? resolve(nameOrPath) : join(dir, `${nameOrPath}.json`);
  if (!existsSync(file)) {
    const known = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
    throw new ConfigError(
      `experiment budget "${nameOrPath}"${preset ? ` for preset ${preset}` : ''} not found (looked for ${file})` +
        (known.length ? `; budgets there: ${known.join(', ')}` : preset ? `; no budgets exist for preset ${preset}` : ''),
    );
  }
  const json = readJsonConfigFile(file, 'experiment budget');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`experiment budget ${file} must hold a JSON object`);
  let tree = json as Record<string, unknown>;
  for (const s of set) tree = applySet(tree, s, '--budget-set');
  const parsed = budgetSchema.safeParse(tree);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `budget ${file}, key "${i.path.join('.')}": ${i.message}`).join('\n'));
  }
  return parsed.data;
}

/** What an arm fixes on top of the budget (nested config keys). */
export type ArmOverrides = Record<string, unknown>;

/** The resolved config of one arm (validated: a bad override names its key). */
export function armConfig(budget: Budget, userSet: readonly string[], overrides: ArmOverrides): Config {
  return loadConfig({ preset: budget.preset, set: [...budget.set, ...userSet], overrides });
}

/** The overrides every arm of a section shares: its schedule and evaluation. */
export function sectionOverrides(s: ArmBudget, lr: number): ArmOverrides {
  return {
    steps: s.steps,
    optim: { lr, warmupSteps: s.warmupSteps },
    eval: { every: s.evalEvery },
  };
}
