/**
 * The numbers every experiment reports per series (an arm over its seeds, read as single models or as their
 * ensemble): steps and wall time to each target, and final values at the fixed budget, each with its spread over
 * seeds; and the tables that show them.
 */
import type { ArmResult } from './arms.js';
import type { Config } from '../config/schema.js';
import { lossUnit } from './units.js';
import { crossing, finalValue, formatSpread, spread, type Spread } from './curves.js';
import type { Series } from './plots.js';
import type { ReportTable } from './report.js';

export interface TargetSummary {
  target: number;
  steps: Spread;
  seconds: Spread;
}

export interface SeriesSummary {
  name: string;
  measure: Series['measure'];
  seeds: number[];
  final: Spread;
  seconds: Spread;
  toTarget: TargetSummary[];
  /** Training examples one step of this series consumes, over all its groups (groups x batch per group). */
  examplesPerStep: number;
  /** The config of the series' first arm (its workload names the loss's unit). */
  config?: Config;
}

export function summarise(s: Series, targets: readonly number[]): SeriesSummary {
  return {
    name: s.name,
    measure: s.measure,
    seeds: s.results.map((r) => r.arm.seed),
    final: spread(s.results.map((r) => finalValue(r.curve, s.measure))),
    seconds: spread(s.results.map((r) => r.curve.seconds)),
    examplesPerStep: s.results[0] ? s.results[0].arm.config.groups * s.results[0].arm.config.optim.batch : NaN,
    config: s.results[0]?.arm.config,
    toTarget: targets.map((target) => {
      const hits = s.results.map((r) => crossing(r.curve, s.measure, target));
      return { target, steps: spread(hits.map((h) => h?.step)), seconds: spread(hits.map((h) => h?.seconds)) };
    }),
  };
}

/**
 * Targets `offsets` nats above the reference's final loss in its worst seed, hardest last: the reference reaches
 * every one of them by construction, so the others are measured against a curve that gets there.
 */
export function targetsAbove(reference: readonly ArmResult[], measure: Series['measure'], offsets: readonly number[]): number[] {
  const finals = reference.map((r) => finalValue(r.curve, measure)).filter(Number.isFinite);
  if (!finals.length) return [];
  const worst = Math.max(...finals);
  // Rounded up so a target printed with 3 decimals is never below the loss that defined it.
  return [...new Set(offsets.map((o) => Math.ceil((worst + o) * 1000 - 1e-6) / 1000))].sort((a, b) => b - a);
}

export function stepsToTargetTable(rows: readonly SeriesSummary[], name = 'steps-to-target'): ReportTable {
  return {
    name,
    title: 'Steps (per group) to each validation cross-entropy target, mean ± sd over seeds',
    header: ['arm', ...(rows[0]?.toTarget ?? []).map((t) => `≤ ${t.target.toFixed(3)}`)],
    rows: rows.map((r) => [r.name, ...r.toTarget.map((t) => formatSpread(t.steps, 0))]),
  };
}

export function timeToTargetTable(rows: readonly SeriesSummary[], name = 'time-to-target'): ReportTable {
  return {
    name,
    title: 'Wall-clock seconds of training to each target on this machine, mean ± sd over seeds',
    header: ['arm', ...(rows[0]?.toTarget ?? []).map((t) => `≤ ${t.target.toFixed(3)}`)],
    rows: rows.map((r) => [r.name, ...r.toTarget.map((t) => formatSpread(t.seconds, 1))]),
  };
}

/** Steps to target times the examples a step consumes: compare arms at equal training compute, not equal steps. */
export function computeToTargetTable(rows: readonly SeriesSummary[], name = 'compute-to-target'): ReportTable {
  const scaled = (x: Spread, k: number): Spread => ({ ...x, mean: x.mean * k, sd: x.sd * k, min: x.min * k, max: x.max * k });
  return {
    name,
    title:
      'Training compute to each target: thousands of examples processed by all groups together (steps × groups × batch), ' +
      'mean ± sd over seeds; a codistillation step also runs the teachers\' forward passes, not counted here',
    header: ['arm', 'examples per step', ...(rows[0]?.toTarget ?? []).map((t) => `≤ ${t.target.toFixed(3)}`)],
    rows: rows.map((r) => [r.name, String(r.examplesPerStep), ...r.toTarget.map((t) => formatSpread(scaled(t.steps, r.examplesPerStep / 1000), 1))]),
  };
}

export function finalTable(rows: readonly SeriesSummary[], steps: number, name = 'final'): ReportTable {
  return {
    name,
    title: `Final validation cross-entropy after ${steps} steps and the wall time it took, mean ± sd over seeds`,
    header: ['arm', 'seeds', `final val loss (${lossUnit(rows[0]?.config)})`, 'wall seconds'],
    rows: rows.map((r) => [r.name, String(r.seeds.length), formatSpread(r.final, 4), formatSpread(r.seconds, 1)]),
  };
}

/** Ratio a/b of two spreads' means, with the spread of the ratio by first-order error propagation. */
export function ratio(a: Spread, b: Spread): { value: number; sd: number } {
  const value = a.mean / b.mean;
  const rel = Math.sqrt((a.sd / a.mean) ** 2 + (b.sd / b.mean) ** 2);
  return { value, sd: Math.abs(value) * rel };
}

/** The hardest target every listed series reached in all seeds (undefined when none). */
export function deepestCommonTarget(rows: readonly SeriesSummary[]): number | undefined {
  const targets = rows[0]?.toTarget.map((t) => t.target) ?? [];
  let best: number | undefined;
  for (const [i, t] of targets.entries()) {
    if (rows.every((r) => r.toTarget[i].steps.n === r.toTarget[i].steps.of)) best = t;
  }
  return best;
}

/** What was run: one row per arm label (its seeds together), with the settings that differ between arms. */
export function armsTable(results: readonly ArmResult[], name = 'arms'): ReportTable {
  const labels = [...new Set(results.map((r) => r.arm.label))];
  return {
    name,
    title: 'Arms (each trained once per seed)',
    header: ['arm', 'groups', 'batch per group', 'replicas, SGD', 'peak lr', 'warm-up', 'exchange', 'alpha', 'burn-in', 'exchange every', 'label smoothing', 'steps', 'seeds'],
    rows: labels.map((label) => {
      const rs = results.filter((r) => r.arm.label === label);
      const c = rs[0].arm.config;
      const average = c.groups > 1 && c.distill.method === 'average';
      const distilling = c.groups > 1 && c.distill.method === 'codistill' && c.distill.alpha > 0;
      const tau = c.sgd.mode === 'delayed' ? `, tau ${c.sgd.staleness ?? c.replicas - 1}` : '';
      const exchange = average ? `average (outer lr ${c.distill.outerLr}, momentum ${c.distill.outerMomentum})` : distilling ? 'codistill' : '-';
      return [
        label,
        String(c.groups),
        String(c.optim.batch),
        `${c.replicas}, ${c.sgd.mode}${tau}`,
        c.optim.lr.toPrecision(3),
        String(c.optim.warmupSteps),
        exchange,
        String(distilling ? c.distill.alpha : 0),
        distilling ? String(c.distill.burnIn) : '-',
        distilling || average ? (c.distill.exchangeEvery === 0 ? 'never' : String(c.distill.exchangeEvery)) : '-',
        String(c.distill.labelSmoothing),
        String(c.steps),
        rs.map((r) => r.arm.seed).join(' '),
      ];
    }),
  };
}

/** The four tables of steps, seconds and compute to each target and of the final loss, in report order. */
export function targetTables(summaries: readonly SeriesSummary[], steps: number): ReportTable[] {
  return [stepsToTargetTable(summaries), timeToTargetTable(summaries), computeToTargetTable(summaries), finalTable(summaries, steps)];
}
