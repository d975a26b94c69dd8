/**
 * The bundled click data: vega-datasets' flights-3m.parquet (3 million US domestic flights of 2001) written out as
 * Criteo text, so that it goes through the same parser and store as any Criteo file.
 *
 * A row is one flight; its label says whether it left more than 15 minutes late (about 20% did). Integer features:
 * month, day of month, hour, minute, weekday (0 = Sunday), day of year and distance in miles; the other six are
 * empty. Categoricals: origin, destination, route (origin-destination), origin x hour and destination x hour, each
 * as the 8 hex digits of a 32-bit hash; the other 21 are empty.
 *
 * The file holds January to June 2001 in date order, plus 6 flights dated 2001-07-01 00:00, the last departures of
 * June 30 written as the next midnight. January-May (about 2.5 million rows) is the training split and everything
 * after it (June and those 6, about 0.5 million) the validation split: a model is judged on the month after the ones
 * it learned from.
 *
 * The parquet columns: date (a TIMESTAMP in microseconds, not UTC-adjusted, which hyparquet hands back as a Date whose
 * UTC fields are the local time), delay and distance (INT64, as BigInt), origin and destination (strings).
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type AsyncBuffer, asyncBufferFromFile, type ColumnData, type FileMetaData, parquetMetadataAsync, parquetRead } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { IngestProgressSink } from '../workload.js';
import { CriteoError, hex8 } from './criteo.js';

export const FLIGHTS_FILE = 'flights-3m.parquet';
export const TRAIN_FILE = 'train.txt';
export const VALIDATION_FILE = 'validation.txt';

/** Departure delay, in minutes, above which a flight counts as late (the positive class). */
export const LATE_MINUTES = 15;
/** The last month (1-12) of the training split. */
const LAST_TRAIN_MONTH = 5;
const COLUMNS = ['date', 'delay', 'distance', 'origin', 'destination'];
const EMPTY_DENSE = '\t'.repeat(13 - 7);
const EMPTY_CATEGORICAL = '\t'.repeat(26 - 5);
const LINES_PER_WRITE = 16384;

/** Where vega-datasets keeps the flights (its package exports only its script, so the folder is found from that). */
export function flightsParquet(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('vega-datasets'));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new CriteoError('cannot find the vega-datasets package folder');
    dir = up;
  }
  const path = join(dir, 'data', FLIGHTS_FILE);
  if (!existsSync(path)) throw new CriteoError(`${path} is missing: reinstall vega-datasets`);
  return path;
}

/** Size and modification time of the bundled parquet: what a store built from it remembers. */
export function flightsSource(): { file: string; bytes: number; mtimeMs: number } {
  const stat = statSync(flightsParquet());
  return { file: `vega-datasets/data/${FLIGHTS_FILE}`, bytes: stat.size, mtimeMs: stat.mtimeMs };
}

const DAY_MS = 86_400_000;

/** Milliseconds since 1970 of a parquet timestamp, whichever way the reader hands it back. */
function toMillis(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'bigint') return Number(v / 1000n);
  if (typeof v === 'number') return v / 1000;
  throw new CriteoError(`${FLIGHTS_FILE}: a date of type ${typeof v}`);
}

interface Day {
  /** The integer features that depend on the day only: month, day of month (the hour and minute go between). */
  date: string;
  /** Weekday and day of year. */
  week: string;
  train: boolean;
}

interface Airport {
  hex: string;
  /** Airport x hour, filled as met. */
  hours: string[];
  /** Route to each destination, filled as met. */
  routes: Map<string, string>;
}

/**
 * Builds the lines, caching what repeats: 3 million flights have a few hundred airports, a few thousand routes and
 * about 180 days.
 */
class FlightLines {
  private readonly days = new Map<number, Day>();
  private readonly airports = new Map<string, Airport>();

  day(ms: number): Day {
    const n = Math.floor(ms / DAY_MS);
    let day = this.days.get(n);
    if (day === undefined) {
      const d = new Date(n * DAY_MS);
      const dayOfYear = n - Date.UTC(d.getUTCFullYear(), 0, 1) / DAY_MS + 1;
      const month = d.getUTCMonth() + 1;
      const train = d.getUTCFullYear() === 2001 && month <= LAST_TRAIN_MONTH;
      day = { date: `${month}\t${d.getUTCDate()}`, week: `${d.getUTCDay()}\t${dayOfYear}`, train };
      this.days.set(n, day);
    }
    return day;
  }

  line(ms: number, day: Day, late: boolean, distance: unknown, origin: string, destination: string): string {
    const minutes = Math.floor((ms % DAY_MS) / 60_000);
    const hour = Math.floor(minutes / 60);
    const from = this.airport(origin);
    const to = this.airport(destination);
    let route = from.routes.get(destination);
    if (route === undefined) from.routes.set(destination, (route = hex8(`${origin}-${destination}`)));
    const fromHour = (from.hours[hour] ??= hex8(`${origin}@${hour}`));
    const toHour = (to.hours[hour] ??= hex8(`${destination}@${hour}`));
    return (
      `${late ? 1 : 0}\t${day.date}\t${hour}\t${minutes % 60}\t${day.week}\t${distance}\t${EMPTY_DENSE}` +
      `${from.hex}\t${to.hex}\t${route}\t${fromHour}\t${toHour}${EMPTY_CATEGORICAL}`
    );
  }

  private airport(code: string): Airport {
    let a = this.airports.get(code);
    if (a === undefined) this.airports.set(code, (a = { hex: hex8(code), hours: [], routes: new Map() }));
    return a;
  }
}

/** Buffers lines and appends them to a file in large writes. */
class LineWriter {
  private lines: string[] = [];

  constructor(private readonly fh: FileHandle) {}

  /** Adds a line; true when enough are buffered that the caller should flush. */
  push(line: string): boolean {
    return this.lines.push(line) >= LINES_PER_WRITE;
  }

  async flush(): Promise<void> {
    if (this.lines.length === 0) return;
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    await this.fh.write(text);
  }
}

/** Rows [rowStart, rowEnd) of the file, a column at a time. */
async function readColumns(
  file: AsyncBuffer,
  metadata: FileMetaData,
  rowStart: number,
  rowEnd: number,
): Promise<Record<string, unknown[]>> {
  const columns = Object.fromEntries(COLUMNS.map((c) => [c, new Array<unknown>(rowEnd - rowStart)]));
  // A chunk may reach outside the rows asked for: only its overlap with them is kept.
  const onChunk = (chunk: ColumnData) => {
    const column = columns[chunk.columnName];
    const from = Math.max(chunk.rowStart, rowStart);
    const to = Math.min(chunk.rowEnd, rowEnd);
    for (let r = from; r < to; r++) column[r - rowStart] = chunk.columnData[r - chunk.rowStart];
  };
  await parquetRead({ file, metadata, compressors, columns: COLUMNS, rowStart, rowEnd, onChunk });
  return columns;
}

/**
 * Writes `outDir`/train.txt and `outDir`/validation.txt from the bundled flights (`limit` rows of them when given,
 * spread over the file), through a temporary sibling folder renamed into place at the end, so that `outDir` is
 * always complete or absent.
 */
export async function convertFlights(
  outDir: string,
  o: { limit?: number; progress?: IngestProgressSink } = {},
): Promise<{ train: number; validation: number; positiveRate: number }> {
  const file = await asyncBufferFromFile(flightsParquet());
  const metadata = await parquetMetadataAsync(file);
  const rowsInFile = Number(metadata.num_rows);
  const total = Math.min(rowsInFile, o.limit ?? Infinity);
  const tmp = `${outDir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const counts = { train: 0, validation: 0, positives: 0 };
  const lines = new FlightLines();
  const train = await open(join(tmp, TRAIN_FILE), 'w');
  const validation = await open(join(tmp, VALIDATION_FILE), 'w');
  try {
    const out = { train: new LineWriter(train), validation: new LineWriter(validation) };
    o.progress?.phase('convert flights', total, 'rows');
    // One row group at a time (about 270 thousand rows): hyparquet decodes whole column chunks anyway. A limit takes
    // the first rows of every group, so that a small sample still spans all the months.
    let groupStart = 0;
    for (const group of metadata.row_groups) {
      const groupEnd = groupStart + Number(group.num_rows);
      const rows = Math.floor((total * groupEnd) / rowsInFile) - Math.floor((total * groupStart) / rowsInFile);
      if (rows > 0) {
        const { date, delay, distance, origin, destination } = await readColumns(file, metadata, groupStart, groupStart + rows);
        for (let i = 0; i < rows; i++) {
          if (delay[i] == null || date[i] == null || origin[i] == null || destination[i] == null || distance[i] == null) {
            throw new CriteoError(`${FLIGHTS_FILE}: row ${groupStart + i} has an empty column`);
          }
          const ms = toMillis(date[i]);
          const day = lines.day(ms);
          const late = Number(delay[i]) > LATE_MINUTES;
          const split = day.train ? 'train' : 'validation';
          if (out[split].push(lines.line(ms, day, late, distance[i], String(origin[i]), String(destination[i])))) {
            await out[split].flush();
          }
          counts[split]++;
          if (late) counts.positives++;
        }
        o.progress?.update(counts.train + counts.validation);
      }
      groupStart = groupEnd;
    }
    await out.train.flush();
    await out.validation.flush();
  } catch (err) {
    await Promise.allSettled([train.close(), validation.close()]);
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  await Promise.all([train.close(), validation.close()]);
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
  const rows = counts.train + counts.validation;
  return { train: counts.train, validation: counts.validation, positiveRate: rows ? counts.positives / rows : 0 };
}
