/**
 * Experiment reports as the service shows them: each folder `<results>/<experiment>/<name>/` holding a report.md
 * (what `codistill experiment` writes), with its plots and tables beside it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { ServiceError } from './runs.js';

export interface ReportInfo {
  experiment: string;
  name: string;
  /** Its plots (SVG preferred, else PNG), tables (CSV) and other files, by file name. */
  plots: string[];
  tables: string[];
  files: string[];
  modified: number;
}

const TYPES: Record<string, string> = {
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.csv': 'text/csv; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class Reports {
  readonly root: string;

  constructor(results: string) {
    this.root = resolve(results);
  }

  list(): ReportInfo[] {
    const out: ReportInfo[] = [];
    for (const experiment of subfolders(this.root)) {
      for (const name of subfolders(join(this.root, experiment))) {
        if (existsSync(join(this.root, experiment, name, 'report.md'))) out.push(this.info(experiment, name));
      }
    }
    return out.sort((a, b) => b.modified - a.modified);
  }

  info(experiment: string, name: string): ReportInfo {
    const dir = this.folder(experiment, name);
    const files = readdirSync(dir).filter((f) => TYPES[extname(f)] && statSync(join(dir, f)).isFile()).sort();
    const svgs = new Set(files.filter((f) => f.endsWith('.svg')).map((f) => f.slice(0, -4)));
    return {
      experiment,
      name,
      plots: files.filter((f) => f.endsWith('.svg') || (f.endsWith('.png') && !svgs.has(f.slice(0, -4)))),
      tables: files.filter((f) => f.endsWith('.csv')),
      files,
      modified: statSync(join(dir, 'report.md')).mtimeMs,
    };
  }

  markdown(experiment: string, name: string): string {
    return readFileSync(join(this.folder(experiment, name), 'report.md'), 'utf8');
  }

  /** One of a report's files, with its content type; only names the listing has (no paths). */
  file(experiment: string, name: string, file: string): { body: Buffer; type: string } {
    const dir = this.folder(experiment, name);
    if (!NAME.test(file) || !TYPES[extname(file)] || !existsSync(join(dir, file))) {
      throw new ServiceError(404, `report ${experiment}/${name} has no file "${file}"`);
    }
    return { body: readFileSync(join(dir, file)), type: TYPES[extname(file)] };
  }

  private folder(experiment: string, name: string): string {
    const dir = join(this.root, experiment, name);
    if (!NAME.test(experiment) || !NAME.test(name) || !existsSync(join(dir, 'report.md'))) {
      throw new ServiceError(404, `no report ${experiment}/${name} in ${this.root}`);
    }
    return dir;
  }
}

function subfolders(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && NAME.test(d.name))
    .map((d) => d.name);
}
