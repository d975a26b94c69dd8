/**
 * `codistill train`: one run, with live progress from its event stream and a closing table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig, applySet } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startRun, type RunSummary } from '../train/run.js';
import type { RunEvent } from '../train/events.js';
import { createProgress } from '../util/progress.js';
import { ensureCorpus } from './ingest.js';
import { formatTable } from '../util/table.js';

/** The config a resumed run continues with: the one it saved, with any `--set` overrides on top. */
export function resumeConfig(runDir: string, set: readonly string[]): Config {
  const file = join(runDir, 'config.json');
  if (!existsSync(file)) throw new Error(`cannot resume ${runDir}: it has no config.json (is it a run folder?)`);
  let tree = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  for (const s of set) tree = applySet(tree, s);
  return validateConfig(tree);
}

/** Renders a run's events: a progress bar over all groups' steps, plus a line per evaluation. */
export function watchRun(events: { subscribe(o: { next(e: RunEvent): void }): unknown }, config: Config, label = 'train'): void {
  const total = config.steps * config.groups;
  let bar: ReturnType<typeof createProgress> | undefined;
  let done = 0;
  const lastLoss = new Array<number>(config.groups).fill(NaN);
  let tokens = 0;
  let t0 = 0;
  let val = '';
  events.subscribe({
    next(e) {
      switch (e.type) {
        case 'start':
          process.stderr.write(
            `${label}: ${config.groups} group(s) x ${config.replicas} replica(s), ${e.parameters.toLocaleString()} parameters, backend ${e.backend}, run ${e.runDir}` +
              (e.fromStep ? `, resuming at step ${e.fromStep}` : '') +
              '\n',
          );
          done = e.fromStep * config.groups;
          t0 = performance.now();
          bar = createProgress({ label, total, unit: 'steps' });
          bar.update(done);
          break;
        case 'step':
          done++;
          tokens += e.tokens;
          lastLoss[e.group] = e.taskLoss;
          bar?.update(done, {
            'task loss': lastLoss.map((l) => l.toFixed(3)).join('/'),
            'tok/s': Math.round(tokens / ((performance.now() - t0) / 1000)),
            ...(val ? { val } : {}),
          });
          break;
        case 'eval':
          val = e.losses.map((l) => l.toFixed(3)).join('/') + (e.losses.length > 1 ? ` ens ${e.ensembleLoss.toFixed(3)}` : '');
          break;
        case 'done':
        case 'error':
          bar?.stop();
          break;
        case 'exchange':
        case 'checkpoint':
          break;
      }
    },
  });
}

export function summaryTable(summary: RunSummary, config: Config): string {
  const rows: string[][] = summary.losses.map((l, g) => [`group ${g}`, l.toFixed(4), Math.exp(l).toFixed(1)]);
  if (summary.losses.length > 1) rows.push(['ensemble', summary.ensembleLoss.toFixed(4), Math.exp(summary.ensembleLoss).toFixed(1)]);
  return (
    formatTable(['model', 'val loss (nats/token)', 'perplexity'], rows) +
    `\n${config.steps} steps in ${summary.trainingSeconds.toFixed(1)} s of training (${summary.seconds.toFixed(1)} s in all), ` +
    `${Math.round(summary.tokensPerSecond).toLocaleString()} tokens/s; run folder ${summary.runDir}\n`
  );
}

export async function trainCommand(config: Config, flags: { resume?: string }): Promise<RunSummary> {
  if (!flags.resume) await ensureCorpus(config);
  const run = startRun({ config, resume: flags.resume });
  watchRun(run.events$, config);
  const summary = await run.done;
  process.stdout.write(summaryTable(summary, config));
  return summary;
}
