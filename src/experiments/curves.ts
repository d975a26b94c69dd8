/**
 * An arm's validation curve, read back from its metrics.jsonl, and the numbers experiments take from curves:
 * steps and wall time to a target loss (linear interpolation between evaluations), final values, and the spread
 * over seeds.
 *
 * A resumed run appends to the same log, so the log may hold steps done after the last checkpoint twice. Each
 * `start` event cuts the trajectory back to the step it resumed from; wall time runs on from there (the pause
 * between the two runs is not counted).
 */
import type { EvalEvent, RunEvent } from '../train/events.js';
import { readMetrics } from '../train/metrics.js';

export interface CurvePoint {
  step: number;
  /** Seconds of training (all groups in parallel) until every group had done `step` steps. */
  seconds: number;
  /** Validation loss of each group's model, their mean (a single model's loss), and the ensemble's. */
  losses: number[];
  model: number;
  ensemble: number;
}

export interface Curve {
  points: CurvePoint[];
  /** Whether the run reached its `done` event. */
  finished: boolean;
  /** Training steps per group the run was asked for (the last `done` step, or the last step seen). */
  steps: number;
  seconds: number;
  /** The tfjs backend the run reported at start ('' before it started). */
  backend: string;
  /** Trainable parameters of one model (0 before it started). */
  parameters: number;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The clean trajectory of a run from its events, in order. */
export function curveFromEvents(events: readonly RunEvent[]): Curve {
  // elapsed[group] maps step -> seconds; evals map step -> event. Both are cut back at every start.
  let elapsed = new Map<number, number[]>();
  let evals = new Map<number, EvalEvent>();
  let segmentStart = 0;
  let carried = 0;
  let finished = false;
  let lastStep = 0;
  let backend = '';
  let parameters = 0;
  for (const e of events) {
    switch (e.type) {
      case 'start': {
        const from = e.fromStep;
        elapsed = new Map([...elapsed].filter(([s]) => s <= from));
        evals = new Map([...evals].filter(([s]) => s <= from));
        carried = from > 0 ? Math.max(0, ...(elapsed.get(from) ?? [0])) : 0;
        segmentStart = e.time;
        backend = e.backend;
        parameters = e.parameters;
        finished = false;
        lastStep = from;
        break;
      }
      case 'step': {
        const t = elapsed.get(e.step) ?? [];
        t[e.group] = carried + (e.time - segmentStart) / 1000;
        elapsed.set(e.step, t);
        lastStep = Math.max(lastStep, e.step);
        break;
      }
      case 'eval':
        evals.set(e.step, e);
        break;
      case 'done':
        finished = true;
        lastStep = e.step;
        break;
      case 'exchange':
      case 'checkpoint':
      case 'restart':
      case 'warning':
      case 'stopped':
      case 'error':
        break;
    }
  }
  const secondsAt = (step: number) => Math.max(0, ...(elapsed.get(step) ?? []).filter((v) => v !== undefined));
  const points = [...evals.values()]
    .sort((a, b) => a.step - b.step)
    .map((e) => ({ step: e.step, seconds: secondsAt(e.step), losses: e.losses, model: mean(e.losses), ensemble: e.ensembleLoss }));
  return { points, finished, steps: lastStep, seconds: secondsAt(lastStep), backend, parameters };
}

export function readCurve(metricsFile: string): Curve {
  return curveFromEvents(readMetrics(metricsFile));
}

export type Measure = 'model' | 'ensemble';

export interface Crossing {
  step: number;
  seconds: number;
}

/**
 * When `measure` first reaches `target` or below: interpolated linearly between the evaluation before and the one
 * at the crossing (a crossing at the first evaluation reads as that evaluation). Undefined if never reached.
 */
export function crossing(curve: Curve, measure: Measure, target: number): Crossing | undefined {
  const pts = curve.points;
  for (let k = 0; k < pts.length; k++) {
    const y = pts[k][measure];
    if (!(y <= target)) continue;
    if (k === 0) return { step: pts[0].step, seconds: pts[0].seconds };
    const a = pts[k - 1];
    const b = pts[k];
    const f = (a[measure] - target) / (a[measure] - y);
    return { step: a.step + f * (b.step - a.step), seconds: a.seconds + f * (b.seconds - a.seconds) };
  }
  return undefined;
}

/** The last evaluation's value of `measure` (NaN for a curve without evaluations). */
export function finalValue(curve: Curve, measure: Measure): number {
  const last = curve.points[curve.points.length - 1];
  return last ? last[measure] : NaN;
}

/** Mean and spread over seeds. `n` counts the values present (a target some seeds never reached has n < of). */
export interface Spread {
  mean: number;
  /** Sample standard deviation over seeds (0 for one value). */
  sd: number;
  min: number;
  max: number;
  n: number;
  of: number;
}

export function spread(values: readonly (number | undefined)[]): Spread {
  const xs = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  const m = xs.length ? mean(xs) : NaN;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) : xs.length ? 0 : NaN;
  return { mean: m, sd, min: xs.length ? Math.min(...xs) : NaN, max: xs.length ? Math.max(...xs) : NaN, n: xs.length, of: values.length };
}

/** `123 ± 4`, `123 ± 4 (1/2 reached)`, or `not reached`; `digits` after the point. */
export function formatSpread(s: Spread, digits: number): string {
  if (s.n === 0) return 'not reached';
  const core = `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}`;
  return s.n < s.of ? `${core} (${s.n}/${s.of} reached)` : core;
}
