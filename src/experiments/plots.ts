/**
 * Plots for experiment reports: Vega-Lite specs compiled and rendered to SVG in Node (no browser), and the SVG
 * rasterised to PNG by resvg (a prebuilt binary shipped in npm; text uses the system's fonts, DejaVu Sans first).
 * Every chart is written as NAME.svg and NAME.png.
 */
import { writeFileSync } from 'node:fs';
import { lossUnit } from './units.js';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ArmResult } from './arms.js';
import type { Measure } from './curves.js';

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

/** Shared look: white background, readable type, legend below the chart. */
const CONFIG = {
  background: 'white',
  font: FONT,
  axis: { labelFontSize: 12, titleFontSize: 13, grid: true, gridColor: '#e6e6e6' },
  // Legend symbols as thick opaque strokes: a band layer would otherwise lend them its pale fill.
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 420, orient: 'bottom', columns: 2, symbolType: 'stroke', symbolStrokeWidth: 3, symbolOpacity: 1 },
  title: { fontSize: 15, anchor: 'start' as const, subtitleFontSize: 12, subtitleColor: '#555' },
  view: { stroke: '#ccc' },
  // Ten of matplotlib's tab10, then four dark ones for the scaling experiment's thirteen series.
  range: {
    category: ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22', '#222222', '#000080', '#00a087', '#b15928'],
  },
};

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** Writes `<dir>/<name>.svg` and `.png`; returns the PNG's file name (what the report embeds). */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec): Promise<string> {
  const svg = await renderSvg(spec);
  writeFileSync(join(dir, `${name}.svg`), svg);
  writeFileSync(join(dir, `${name}.png`), svgToPng(svg));
  return `${name}.png`;
}

export interface Series {
  /** Legend entry. */
  name: string;
  /** The arms (one per seed) and which of their losses to plot. */
  results: readonly ArmResult[];
  measure: Measure;
}

interface LossRow {
  series: string;
  seed: number;
  step: number;
  seconds: number;
  loss: number;
}

function lossRows(series: readonly Series[]): LossRow[] {
  return series.flatMap((s) =>
    s.results.flatMap((r) => r.curve.points.map((p) => ({ series: s.name, seed: r.arm.seed, step: p.step, seconds: p.seconds, loss: p[s.measure] }))),
  );
}

/**
 * The y range worth looking at: from just under the best loss to the worst series' loss a fifth of the way in
 * (the first evaluations sit far above and would flatten every difference that matters).
 */
function yDomain(rows: readonly LossRow[], targets: readonly number[]): [number, number] {
  const finite = rows.filter((r) => Number.isFinite(r.loss));
  if (!finite.length) return [0, 1];
  const lo = Math.min(...finite.map((r) => r.loss), ...targets);
  const maxStep = Math.max(...finite.map((r) => r.step));
  const early = finite.filter((r) => r.step >= 0.2 * maxStep);
  const hi = Math.max(...(early.length ? early : finite).map((r) => r.loss).filter((v) => v < Infinity));
  const pad = Math.max(0.01, 0.04 * (hi - lo));
  return [lo - pad, hi + pad];
}

function targetLayer(targets: readonly number[]): TopLevelSpec[] {
  if (!targets.length) return [];
  return [
    {
      data: { values: targets.map((t) => ({ target: t })) },
      mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
      encoding: { y: { field: 'target', type: 'quantitative' } },
    } as TopLevelSpec,
  ];
}

/** Validation loss against steps: the mean over seeds as a line, the seed-to-seed spread (± 1 sd) as a band. */
export function lossVsStepsSpec(series: readonly Series[], targets: readonly number[], title: string): TopLevelSpec {
  const rows = lossRows(series);
  const y = { field: 'loss', type: 'quantitative', title: `validation cross-entropy (${lossUnit(series[0]?.results[0]?.arm.config)})`, scale: { domain: yDomain(rows, targets), zero: false } };
  const color = { field: 'series', type: 'nominal', title: null, sort: series.map((s) => s.name) };
  return {
    title: { text: title, subtitle: 'line: mean over seeds; band: ± 1 sd over seeds; dashed: targets' },
    width: 620,
    height: 360,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'errorband', extent: 'stdev', opacity: 0.18, clip: true },
        encoding: { x: { field: 'step', type: 'quantitative', title: 'training steps (per group)', scale: { domainMin: 0 } }, y, color },
      },
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 2.2, clip: true },
        encoding: { x: { field: 'step', type: 'quantitative' }, y: { ...y, aggregate: 'mean' }, color },
      },
      ...targetLayer(targets),
    ],
  } as TopLevelSpec;
}

/** Validation loss against wall-clock seconds: one line per seed (seeds take different times). */
export function lossVsTimeSpec(series: readonly Series[], targets: readonly number[], title: string): TopLevelSpec {
  const rows = lossRows(series);
  return {
    title: { text: title, subtitle: 'one line per seed; wall time of training on this machine; dashed: targets' },
    width: 620,
    height: 360,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 1.8, clip: true },
        encoding: {
          x: { field: 'seconds', type: 'quantitative', title: 'wall-clock seconds of training', scale: { domainMin: 0 } },
          y: { field: 'loss', type: 'quantitative', title: `validation cross-entropy (${lossUnit(series[0]?.results[0]?.arm.config)})`, scale: { domain: yDomain(rows, targets), zero: false } },
          color: { field: 'series', type: 'nominal', title: null, sort: series.map((s) => s.name) },
          detail: { field: 'seed', type: 'nominal' },
        },
      },
      ...targetLayer(targets),
    ],
  } as TopLevelSpec;
}

/**
 * One panel per metric: a dot at the mean per category, an error bar for ± 1 sd, a small grey dot per seed. With
 * `series`, the rows' series share each category side by side, one colour each.
 */
export function dotsWithSpreadSpec(opts: {
  title: string;
  /** Lines under the title (several short lines: Vega over-estimates the width of one long line without a canvas). */
  subtitle: string | string[];
  rows: readonly { category: string; panel: string; value: number; series?: string }[];
  categories: readonly string[];
  categoryTitle: string;
  panels: readonly string[];
  series?: readonly string[];
}): TopLevelSpec {
  const finite = opts.rows.filter((r) => Number.isFinite(r.value));
  const several = opts.series !== undefined && opts.series.length > 1;
  const color = several ? { field: 'series', type: 'nominal', scale: { domain: [...opts.series!] }, title: null } : undefined;
  const offset = several ? { xOffset: { field: 'series', type: 'nominal', scale: { domain: [...opts.series!] } } } : {};
  return {
    title: { text: opts.title, subtitle: opts.subtitle },
    hconcat: opts.panels.map((panel) => ({
      width: 340,
      height: 280,
      data: { values: finite.filter((r) => r.panel === panel) },
      encoding: {
        x: {
          field: 'category', type: 'ordinal', title: opts.categoryTitle,
          // Every category keeps its place, even one without a value in this panel (a target never reached).
          scale: { domain: [...opts.categories] },
          axis: { labelAngle: 0, labelExpr: "split(datum.label, ' ')" },
        },
        ...offset,
      },
      layer: [
        {
          mark: { type: 'errorbar', extent: 'stdev', ticks: { size: 14 }, thickness: 2, ...(several ? {} : { color: '#111' }) },
          encoding: { y: { field: 'value', type: 'quantitative', title: panel, scale: { zero: false } }, ...(several ? { color } : {}) },
        },
        {
          mark: { type: 'point', filled: true, size: 25, opacity: 0.5, ...(several ? {} : { color: '#999', xOffset: 10 }) },
          encoding: { y: { field: 'value', type: 'quantitative', title: panel }, ...(several ? { color } : {}) },
        },
        {
          mark: { type: 'point', filled: true, size: 90, ...(several ? {} : { color: '#d62728' }) },
          encoding: { y: { field: 'value', type: 'quantitative', aggregate: 'mean', title: panel }, ...(several ? { color } : {}) },
        },
      ],
    })),
  } as TopLevelSpec;
}

/** Grouped bars: one panel per metric, a bar per category at the mean, an error bar for ± 1 sd. */
export function barsSpec(opts: {
  title: string;
  subtitle: string;
  rows: readonly { category: string; panel: string; value: number }[];
  categories: readonly string[];
  panels: readonly string[];
}): TopLevelSpec {
  return {
    title: { text: opts.title, subtitle: opts.subtitle },
    hconcat: opts.panels.map((panel) => ({
      width: 240,
      height: 260,
      data: { values: opts.rows.filter((r) => r.panel === panel && Number.isFinite(r.value)) },
      encoding: {
        x: { field: 'category', type: 'nominal', sort: opts.categories, title: null, axis: { labelAngle: 0, labelExpr: "split(datum.label, ' ')" } },
      },
      layer: [
        {
          mark: { type: 'bar', color: '#9ecae1' },
          encoding: { y: { field: 'value', type: 'quantitative', aggregate: 'mean', title: panel } },
        },
        {
          mark: { type: 'errorbar', extent: 'stdev', ticks: { color: '#111', size: 14 }, color: '#111', thickness: 2 },
          encoding: { y: { field: 'value', type: 'quantitative', title: panel } },
        },
        { mark: { type: 'point', filled: true, color: '#444', size: 25, xOffset: 22 }, encoding: { y: { field: 'value', type: 'quantitative', title: panel } } },
      ],
    })),
  } as TopLevelSpec;
}
