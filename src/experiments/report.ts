/**
 * An experiment's report folder: report.md (prose, tables and embedded plots, in the order they are added), every
 * table also as NAME.csv, and results.json with every table plus whatever raw numbers the experiment adds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { markdownTable } from '../util/table.js';
import { writePlot } from './plots.js';

export interface ReportTable {
  /** File name (NAME.csv) and key in results.json. */
  name: string;
  title: string;
  header: string[];
  rows: string[][];
}

const csvCell = (s: string): string => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

export function toCsv(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

export class Report {
  private readonly parts: string[] = [];
  private readonly tables: ReportTable[] = [];
  readonly plots: string[] = [];

  constructor(
    readonly dir: string,
    title: string,
  ) {
    mkdirSync(dir, { recursive: true });
    this.parts.push(`# ${title}\n`);
  }

  /** A Markdown paragraph or section, as written. */
  text(md: string): void {
    this.parts.push(md.trimEnd() + '\n');
  }

  table(t: ReportTable): void {
    this.tables.push(t);
    writeFileSync(join(this.dir, `${t.name}.csv`), toCsv(t.header, t.rows));
    this.parts.push(`**${t.title}** ([${t.name}.csv](${t.name}.csv))\n\n${markdownTable(t.header, t.rows)}`);
  }

  async plot(name: string, spec: TopLevelSpec, caption: string): Promise<void> {
    const png = await writePlot(this.dir, name, spec);
    this.plots.push(png);
    this.parts.push(`![${caption}](${png})\n\n*${caption}* ([SVG](${name}.svg))\n`);
  }

  /** Writes report.md and results.json (`extra` holds the experiment's raw numbers). */
  write(extra: Record<string, unknown>): void {
    writeFileSync(join(this.dir, 'report.md'), this.parts.join('\n'));
    const tables = Object.fromEntries(this.tables.map((t) => [t.name, { title: t.title, header: t.header, rows: t.rows }]));
    writeFileSync(join(this.dir, 'results.json'), `${JSON.stringify({ ...extra, tables }, null, 2)}\n`);
  }
}

/** A number for a table cell: fixed digits, `n/a` for what does not apply (NaN / undefined). */
export function cell(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
}
