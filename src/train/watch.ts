/**
 * How a run looks on a terminal or in a log, read from its events alone: the progress display and the closing
 * table that the CLI, the experiments and a service share.
 */
import type { Config } from '../config/schema.js';
import { NATIVE_HOW, nativeStatus } from '../tf/native-kernels.js';
import { createProgress } from '../util/progress.js';
import { formatTable } from '../util/table.js';
import type { EvalEvent, RunEvent } from './events.js';
import type { RunSummary } from './run.js';

/**
 * Renders a run's events on stderr: a progress bar over the run's steps (a step counts once every group trained
 * has done it), with each group's training loss, the throughput and the latest validation losses. `only`: the
 * one group this process trains (`train --group`).
 */
export function watchRun(
  events: { subscribe(o: { next(e: RunEvent): void }): unknown },
  config: Config,
  { label = 'train', only, stream = process.stderr }: { label?: string; only?: number; stream?: NodeJS.WritableStream & { isTTY?: boolean } } = {},
): void {
  const trained = only === undefined ? config.groups : 1;
  const total = config.steps;
  let bar: ReturnType<typeof createProgress> | undefined;
  /** The newest step of each group trained here. */
  const reached = new Array<number>(trained).fill(0);
  const lastLoss = new Array<number>(only === undefined ? config.groups : 1).fill(NaN);
  let positions = 0;
  let unit = 'positions';
  let t0 = 0;
  let val = '';
  events.subscribe({
    next(e) {
      switch (e.type) {
        case 'start':
          stream.write(
            `${label}: ${only === undefined ? `${config.groups} group(s)` : `group ${only} of ${config.groups}`} x ${config.replicas} replica(s), ` +
              `${e.parameters.toLocaleString()} parameters, backend ${e.backend}, ${config.placement.mode} placement, run ${e.runDir}` +
              (e.fromStep ? `, resuming at step ${e.fromStep}` : '') +
              '\n',
          );
          if (e.backend === 'wasm' && config.kernels === 'auto') {
            const status = nativeStatus();
            if (!status.available) stream.write(`${label}: wasm kernels only (native kernels ${status.reason}); for BLAS speed ${NATIVE_HOW}\n`);
          }
          reached.fill(e.fromStep);
          unit = e.unit;
          t0 = performance.now();
          bar = createProgress({ label, total, unit: 'steps', stream });
          bar.update(e.fromStep);
          break;
        case 'step': {
          const g = only === undefined ? e.group : 0;
          reached[g] = e.step;
          positions += e.positions;
          lastLoss[g] = e.taskLoss;
          bar?.update(Math.min(...reached), {
            'task loss': lastLoss.map((l) => l.toFixed(3)).join('/'),
            [`${unit === 'tokens' ? 'tok' : unit}/s`]: Math.round(positions / ((performance.now() - t0) / 1000)),
            ...(val ? { val } : {}),
          });
          break;
        }
        case 'eval':
          val = e.losses.map((l) => l.toFixed(3)).join('/') + (e.losses.length > 1 ? ` ens ${e.ensembleLoss.toFixed(3)}` : '');
          break;
        case 'restart':
          stream.write(`\n${label}: group ${e.group}: ${e.reason}; restarted from step ${e.fromStep} (restart ${e.attempt} of ${config.placement.restarts})\n`);
          break;
        case 'warning':
          stream.write(`\n${label}: warning: ${e.message}\n`);
          break;
        case 'done':
        case 'error':
          bar?.stop();
          break;
        case 'stopped':
          bar?.stop();
          stream.write(`${label}: stopped at step ${e.step}; a resume continues from the checkpoint of step ${e.resumesAt}\n`);
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
  return (
    evalTable(summary.evals.at(-1), summary.unit, summary.reference) +
    `\n${summary.steps}${summary.stopped ? ` of ${config.steps}` : ''} steps in ${summary.trainingSeconds.toFixed(1)} s of training (${summary.seconds.toFixed(1)} s in all), ` +
    `${Math.round(summary.positionsPerSecond).toLocaleString()} ${summary.unit}/s; run folder ${summary.runDir}\n`
  );
}

/** One evaluation as a table: each model's and the ensemble's validation loss, then perplexity or the measures. */
export function evalTable(e: EvalEvent | undefined, unit: string, reference?: { label: string; loss: number }): string {
  const losses = e?.losses ?? [];
  const metrics = Object.entries(e?.metrics ?? {}) as [string, number[]][];
  const cells = (l: number, i: number) =>
    metrics.length ? [l.toFixed(4), ...metrics.map(([, v]) => v[i].toFixed(4))] : [l.toFixed(4), Math.exp(l).toFixed(1)];
  const names = e?.groups ?? losses.map((_, g) => g);
  const rows: string[][] = losses.map((l, i) => [`group ${names[i]}`, ...cells(l, i)]);
  if (e && !e.groups && losses.length > 1) rows.push(['ensemble', ...cells(e.ensembleLoss, losses.length)]);
  if (reference) rows.push([reference.label, reference.loss.toFixed(4), ...(metrics.length ? metrics.map(() => '') : [''])]);
  const header = ['model', `val loss (nats/${unit.replace(/s$/, '')})`, ...(metrics.length ? metrics.map(([m]) => m) : ['perplexity'])];
  return formatTable(header, rows);
}

