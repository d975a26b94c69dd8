/**
 * Progress for long steps (ingest, training, benchmarks), on stderr by default.
 *
 * On a terminal: a redrawn `cli-progress` bar with rate and ETA. Anywhere else (a pipe, a log file, CI, where
 * redrawing would fill the log with escape codes): one plain line at most every 2 s or at each further 10%, and a
 * last line on stop().
 *
 *   const bar = createProgress({ label: 'encode', total: bytes, unit: 'B' });
 *   bar.update(done, { tokens });
 *   bar.stop();
 */
import { SingleBar } from 'cli-progress';

export interface ProgressOptions {
  label: string;
  /** Amount of work; 0 or less when unknown (no percentage or ETA then). */
  total: number;
  /** 'B' shows bytes as kB/MB/GB; any other unit is printed after the count ('tokens', 'steps'). */
  unit: string;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Clock in milliseconds (tests pass a fake one). */
  now?: () => number;
}

export interface Progress {
  /** Sets the amount done; `fields` are shown after it (e.g. `{ tokens: 1200 }`). */
  update(done: number, fields?: Record<string, string | number>): void;
  increment(n?: number): void;
  stop(): void;
}

const LINE_EVERY_MS = 2000;

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? (() => performance.now());
  const interactive = Boolean(stream.isTTY) && !process.env.CI;
  const started = now();
  let done = 0;
  let fields: Record<string, string | number> = {};
  let stopped = false;

  const rate = () => done / Math.max((now() - started) / 1000, 1e-3);
  const describe = () => {
    const r = rate();
    const parts = [ofTotal(done, opts.total, opts.unit), perSecond(r, opts.unit)];
    if (opts.total > 0 && r > 0 && done < opts.total) parts.push(`ETA ${duration((opts.total - done) / r)}`);
    for (const [k, v] of Object.entries(fields)) parts.push(`${k} ${typeof v === 'number' ? compact(v) : v}`);
    return parts.join(', ');
  };

  if (interactive) {
    const bar = new SingleBar({
      stream,
      format: `${opts.label} {bar} {percentage}% | {status}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    });
    bar.start(Math.max(opts.total, 1), 0, { status: describe() });
    return {
      update(n, more) {
        done = n;
        if (more) fields = { ...fields, ...more };
        bar.update(Math.min(done, Math.max(opts.total, 1)), { status: describe() });
      },
      increment(n = 1) {
        this.update(done + n);
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.update(Math.min(done, Math.max(opts.total, 1)), { status: describe() });
        bar.stop();
      },
    };
  }

  let lastLine = -Infinity;
  let lastTenth = -1;
  const line = (final: boolean) => {
    const pct = opts.total > 0 ? `${Math.floor((100 * done) / opts.total)}% ` : '';
    const took = final ? ` in ${duration((now() - started) / 1000)}` : '';
    stream.write(`${opts.label}: ${pct}${describe()}${took}\n`);
    lastLine = now();
  };
  return {
    update(n, more) {
      done = n;
      if (more) fields = { ...fields, ...more };
      // The 100% line is left to stop(), which adds the time taken.
      const tenth = opts.total > 0 ? Math.min(9, Math.floor((10 * done) / opts.total)) : -1;
      if (now() - lastLine >= LINE_EVERY_MS || tenth > lastTenth) {
        lastTenth = Math.max(lastTenth, tenth);
        line(false);
      }
    },
    increment(n = 1) {
      this.update(done + n);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      line(true);
    },
  };
}

/** `12.3 MB/27.0 MB` for bytes, `1.20k/5.00k tokens` for anything else (no total: just the amount done). */
function ofTotal(done: number, total: number, unit: string): string {
  if (unit === 'B') return total > 0 ? `${bytes(done)}/${bytes(total)}` : bytes(done);
  const suffix = unit ? ` ${unit}` : '';
  return total > 0 ? `${compact(done)}/${compact(total)}${suffix}` : `${compact(done)}${suffix}`;
}

function perSecond(rate: number, unit: string): string {
  return unit === 'B' ? `${bytes(rate)}/s` : `${compact(rate)}${unit ? ` ${unit}` : ''}/s`;
}

/** 512 B, 3.4 kB, 12.3 MB, 1.2 GB (decimal units, as disks and network rates are quoted). */
export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

/** 950, 12.3k, 4.56M, 7.1G. */
export function compact(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toPrecision(3)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** 42s, 3m05s, 2h07m. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
