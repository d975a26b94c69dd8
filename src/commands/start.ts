/**
 * `codistill start` (what `npm start` runs): the main job on the bundled data.
 *
 * 1. Ingest the preset's data (lm-small: the bundled books and speeches) into LMDB (once; later runs reuse it).
 * 2. Train a 2-group codistillation of the preset (lm-small: minutes on 2 cores).
 * 3. Train the synchronous-SGD baseline of the same budget: one group at twice the batch, split over as many
 *    replicas as the codistillation has groups, for the same steps: the same examples, steps and threads.
 * 4. Print one table: each codistilled model, their ensemble, and the baseline.
 */
import type { Config } from '../config/schema.js';
import { validateConfig } from '../config/load.js';
import { startRun, type RunSummary } from '../train/run.js';
import { formatTable } from '../util/table.js';
import { ensureData } from './ingest.js';
import { watchRun } from '../train/watch.js';

export interface StartResult {
  codistill: RunSummary;
  baseline: RunSummary;
}

/** The baseline of the same budget: groups x batch B as one synchronous-SGD group at batch groups*B. */
export function baselineConfig(config: Config): Config {
  return validateConfig({
    ...config,
    name: `${config.name}-baseline`,
    groups: 1,
    replicas: config.groups * config.replicas,
    optim: { ...config.optim, batch: config.optim.batch * config.groups },
  });
}

export function startTable(r: StartResult, config: Config): string {
  const row = (model: string, loss: number, steps: number, seconds: number) => [
    model,
    loss.toFixed(4),
    Math.exp(loss).toFixed(1),
    String(steps),
    seconds.toFixed(0),
  ];
  const c = r.codistill;
  const rows = [
    ...c.losses.map((l, g) => row(`codistilled model ${g} (batch ${config.optim.batch})`, l, c.steps, c.trainingSeconds)),
    row(`ensemble of the ${c.losses.length} codistilled models`, c.ensembleLoss, c.steps, c.trainingSeconds),
    row(`sync SGD baseline (batch ${config.optim.batch * config.groups})`, r.baseline.losses[0], r.baseline.steps, r.baseline.trainingSeconds),
  ];
  return formatTable(['model', `val loss (nats/${c.unit.replace(/s$/, '')})`, 'perplexity', 'steps', 'training s'], rows);
}

export async function startCommand(config: Config): Promise<StartResult> {
  if (config.groups < 2) throw new Error('codistill start compares codistillation with its baseline: it needs groups >= 2');
  await ensureData(config);
  const name = config.name || `start-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const main = { ...config, name };

  const run = startRun({ config: main });
  watchRun(run.events$, main, { label: 'codistill' });
  const codistill = await run.done;

  const base = baselineConfig(main);
  const baselineRun = startRun({ config: base });
  watchRun(baselineRun.events$, base, { label: 'baseline' });
  const baseline = await baselineRun.done;

  const result = { codistill, baseline };
  process.stdout.write(`\n${startTable(result, main)}\nruns: ${codistill.runDir} and ${baseline.runDir}\n`);
  return result;
}
