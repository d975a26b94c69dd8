/**
 * `codistill train`: one run, with live progress from its event stream and a closing table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig, applySet } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startRun, type RunSummary } from '../train/run.js';
import { groupIndexOf, startGroupRun } from '../train/group-run.js';
import type { RunEvent } from '../train/events.js';
import { createProgress } from '../util/progress.js';
import { ensureData } from './ingest.js';
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
export function watchRun(events: { subscribe(o: { next(e: RunEvent): void }): unknown }, config: Config, label = 'train', only?: number): void {
  const trained = only === undefined ? config.groups : 1;
  const total = config.steps * trained;
  let bar: ReturnType<typeof createProgress> | undefined;
  let done = 0;
  const lastLoss = new Array<number>(only === undefined ? config.groups : 1).fill(NaN);
  let positions = 0;
  let unit = 'positions';
  let t0 = 0;
  let val = '';
  events.subscribe({
    next(e) {
      switch (e.type) {
        case 'start':
          process.stderr.write(
            `${label}: ${only === undefined ? `${config.groups} group(s)` : `group ${only} of ${config.groups}`} x ${config.replicas} replica(s), ` +
              `${e.parameters.toLocaleString()} parameters, backend ${e.backend}, ${config.placement.mode} placement, run ${e.runDir}` +
              (e.fromStep ? `, resuming at step ${e.fromStep}` : '') +
              '\n',
          );
          done = e.fromStep * trained;
          unit = e.unit;
          t0 = performance.now();
          bar = createProgress({ label, total, unit: 'steps' });
          bar.update(done);
          break;
        case 'step':
          done++;
          positions += e.positions;
          lastLoss[only === undefined ? e.group : 0] = e.taskLoss;
          bar?.update(done, {
            'task loss': lastLoss.map((l) => l.toFixed(3)).join('/'),
            [`${unit === 'tokens' ? 'tok' : unit}/s`]: Math.round(positions / ((performance.now() - t0) / 1000)),
            ...(val ? { val } : {}),
          });
          break;
        case 'eval':
          val = e.losses.map((l) => l.toFixed(3)).join('/') + (e.losses.length > 1 ? ` ens ${e.ensembleLoss.toFixed(3)}` : '');
          break;
        case 'restart':
          process.stderr.write(`\n${label}: group ${e.group}'s process ${e.reason}; restarted from step ${e.fromStep} (restart ${e.attempt} of ${config.placement.restarts})\n`);
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

/** Per model and for the ensemble: the validation loss, then perplexity or the workload's measures. */
export function summaryTable(summary: RunSummary, config: Config): string {
  const last = summary.evals[summary.evals.length - 1];
  const metrics = Object.entries(last?.metrics ?? {}) as [string, number[]][];
  const unit = summary.unit.replace(/s$/, '');
  const cells = (l: number, i: number) =>
    metrics.length ? [l.toFixed(4), ...metrics.map(([, v]) => v[i].toFixed(4))] : [l.toFixed(4), Math.exp(l).toFixed(1)];
  const names = last?.groups ?? summary.losses.map((_, g) => g);
  const rows: string[][] = summary.losses.map((l, i) => [`group ${names[i]}`, ...cells(l, i)]);
  if (!last?.groups && summary.losses.length > 1) rows.push(['ensemble', ...cells(summary.ensembleLoss, summary.losses.length)]);
  if (summary.reference) rows.push([summary.reference.label, summary.reference.loss.toFixed(4), ...(metrics.length ? metrics.map(() => '') : [''])]);
  const header = ['model', `val loss (nats/${unit})`, ...(metrics.length ? metrics.map(([m]) => m) : ['perplexity'])];
  return (
    formatTable(header, rows) +
    `\n${config.steps} steps in ${summary.trainingSeconds.toFixed(1)} s of training (${summary.seconds.toFixed(1)} s in all), ` +
    `${Math.round(summary.positionsPerSecond).toLocaleString()} ${summary.unit}/s; run folder ${summary.runDir}\n`
  );
}

export async function trainCommand(config: Config, flags: { resume?: string; group?: string | true }): Promise<RunSummary> {
  if (!flags.resume) await ensureData(config);
  const group = flags.group === undefined ? undefined : groupIndexOf(flags.group, config.groups);
  const run = group === undefined ? startRun({ config, resume: flags.resume }) : startGroupRun({ config, group });
  watchRun(run.events$, config, group === undefined ? 'train' : `group ${group}`, group);
  const summary = await run.done;
  process.stdout.write(summaryTable(summary, config));
  return summary;
}
