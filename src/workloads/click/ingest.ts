/**
 * Ingest of the click workload: Criteo-format text in, a record store of (dense, categorical, label) rows out.
 *
 * Training rows come from data.inputs and validation rows from data.validationInputs, or, without those, from a
 * seeded share of the input rows picked by a hash of file name and line (so a row keeps its side whatever else is
 * ingested). With no inputs at all, the bundled flights are converted to Criteo text once, next to the store, and
 * split by month.
 *
 * The store remembers each input's size and modification time and every setting that shapes its rows: the same
 * again is a no-op that reads nothing, anything else is refused unless forced. Input files are checked (present,
 * non-empty, regular) before the store is touched; a failure while parsing leaves the previous store as it was.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RecordError, type RecordMeta, recordStoreExists, RecordWriter, storedMeta } from '../../records/store.js';
import { deriveSeed } from '../../util/random.js';
import type { IngestProgressSink, IngestReport } from '../workload.js';
import type { ClickDataConfig } from './config.js';
import {
  CATEGORICAL_FIELDS,
  CriteoError,
  DENSE_FIELDS,
  hex8,
  MALFORMED_REASONS,
  type MalformedReason,
  readCriteo,
} from './criteo.js';
import { convertFlights, flightsSource, TRAIN_FILE, VALIDATION_FILE } from './flights.js';

export const CLICK_RECORD_KIND = 'criteo';

/** Bump whenever the same inputs and settings would give other rows. */
const INGEST_VERSION = 1;
const DEFAULT_SPLIT_SEED = 1;
/** The converted bundled flights, in this folder beside the store. */
export const FLIGHTS_TEXT_DIR = 'flights-criteo-text';

const FIELDS = [
  { name: 'dense', dtype: 'float32', width: DENSE_FIELDS },
  { name: 'categorical', dtype: 'int32', width: CATEGORICAL_FIELDS },
  { name: 'label', dtype: 'uint8', width: 1 },
] as const;

type Split = 'train' | 'validation';

interface FileStamp {
  file: string;
  bytes: number;
  mtimeMs: number;
}

/** What shapes the store's rows: compared with a store's own to decide whether it is up to date. */
interface ClickInput {
  ingest: number;
  inputs: FileStamp[];
  validationInputs: FileStamp[];
  /** How validation rows are chosen: by file, by month (the bundled flights) or by a seeded share of the lines. */
  split: 'files' | 'months' | { seed: number; fraction: number };
  buckets: number;
  hashSeed: number;
  malformed: 'fail' | 'skip';
  shardRows: number;
}

/** What the ingest found, kept for the report of a re-run that reads nothing. */
interface ClickSummary {
  positives: Record<Split, number>;
  skipped: Record<MalformedReason, number>;
}

interface ClickSource {
  input: ClickInput;
  summary: ClickSummary;
}

export async function ingestClick(
  data: ClickDataConfig,
  o: { inputs?: string[]; force?: boolean; progress?: IngestProgressSink; splitSeed?: number } = {},
): Promise<IngestReport> {
  const started = performance.now();
  const inputs = o.inputs?.length ? o.inputs : data.inputs;
  const bundled = inputs.length === 0;
  if (bundled && data.validationInputs.length > 0) {
    throw new CriteoError('data.validationInputs needs data.inputs: the bundled flights bring their own validation month');
  }
  const train = bundled ? [] : checkFiles(inputs, 'data.inputs');
  const validation = bundled ? [] : checkFiles(data.validationInputs, 'data.validationInputs');
  checkDistinct([...train, ...validation]);
  const input: ClickInput = {
    ingest: INGEST_VERSION,
    inputs: bundled ? [flightsSource()] : train,
    validationInputs: validation,
    split: bundled
      ? 'months'
      : validation.length > 0
        ? 'files'
        : { seed: o.splitSeed ?? DEFAULT_SPLIT_SEED, fraction: data.validationFraction },
    buckets: data.buckets,
    hashSeed: data.hashSeed,
    malformed: data.malformed,
    shardRows: data.shardRows,
  };

  if (existsSync(data.path) && !recordStoreExists(data.path)) {
    throw new RecordError(`data.path ${data.path} exists and is not a record store; not replacing it (remove it or set data.path)`);
  }
  const existing = storedMeta(data.path);
  const change = existing.meta ? describeChange(existing.meta, input) : existing.reason;
  if (existing.meta && change === undefined) {
    return report(existing.meta, true, [`${data.path} is up to date with its inputs (nothing to do)`]);
  }
  if (change !== undefined && !o.force) {
    throw new RecordError(`not replacing the click store at ${data.path}: ${change}. Pass --force to rebuild it.`);
  }

  let trainFiles = train.map((f) => f.file);
  let validationFiles = validation.map((f) => f.file);
  if (bundled) {
    const dir = join(dirname(data.path), FLIGHTS_TEXT_DIR);
    if (!existsSync(join(dir, TRAIN_FILE)) || !existsSync(join(dir, VALIDATION_FILE))) {
      o.progress?.line(`converting the bundled flights to Criteo text in ${dir} (once)`);
      await convertFlights(dir, { progress: o.progress });
    }
    trainFiles = [join(dir, TRAIN_FILE)];
    validationFiles = [join(dir, VALIDATION_FILE)];
  }
  return parseAll(data, input, trainFiles, validationFiles, started, o.progress);
}

async function parseAll(
  data: ClickDataConfig,
  input: ClickInput,
  trainFiles: string[],
  validationFiles: string[],
  started: number,
  progress: IngestProgressSink | undefined,
): Promise<IngestReport> {
  const files = [
    ...trainFiles.map((file) => ({ file, split: 'train' as Split })),
    ...validationFiles.map((file) => ({ file, split: 'validation' as Split })),
  ];
  const totalBytes = files.reduce((sum, f) => sum + statSync(f.file).size, 0);
  const summary: ClickSummary = {
    positives: { train: 0, validation: 0 },
    skipped: Object.fromEntries(MALFORMED_REASONS.map((r) => [r, 0])) as Record<MalformedReason, number>,
  };
  const writer = RecordWriter.create(data.path, {
    kind: CLICK_RECORD_KIND,
    fields: FIELDS.map((f) => ({ ...f })),
    shardRows: data.shardRows,
    source: { input },
  });
  try {
    progress?.phase('parse', totalBytes, 'B');
    let bytesDone = 0;
    let rows = 0;
    const criteo = { buckets: data.buckets, hashSeed: data.hashSeed, malformed: data.malformed };
    for (const { file, split } of files) {
      const heldOut = typeof input.split === 'object' ? lineSplit(file, input.split) : undefined;
      const stats = await readCriteo(
        file,
        criteo,
        (row, line) => {
          const to = heldOut?.(line) ? 'validation' : split;
          writer.append(to, row);
          summary.positives[to] += row.label[0];
          rows++;
        },
        (n) => {
          bytesDone += n;
          progress?.update(bytesDone, { rows });
        },
      );
      for (const r of MALFORMED_REASONS) summary.skipped[r] += stats.skipped[r];
    }
    const meta = await commit(writer, summary, input, files.map((f) => f.file));
    const seconds = (performance.now() - started) / 1000;
    const total = meta.splits.train.rows + meta.splits.validation.rows;
    return report(meta, false, [
      `${total.toLocaleString()} rows from ${files.length} file${files.length === 1 ? '' : 's'} ` +
        `(${(totalBytes / 1e6).toFixed(1)} MB) in ${seconds.toFixed(1)} s: ${Math.round(total / seconds).toLocaleString()} rows/s`,
      `store ${data.path}, ${data.shardRows.toLocaleString()} rows per shard`,
    ]);
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Refuses an empty split before the store replaces the old one. */
async function commit(writer: RecordWriter, summary: ClickSummary, input: ClickInput, files: readonly string[]): Promise<RecordMeta> {
  const { train, validation } = writer.rows;
  if (train === 0) {
    const skipped = MALFORMED_REASONS.filter((r) => summary.skipped[r] > 0).map((r) => `${summary.skipped[r]} ${r}`);
    throw new CriteoError(
      `no training rows: ${files.join(', ')} hold${files.length === 1 ? 's' : ''} no well-formed row` +
        (skipped.length ? ` (data.malformed=skip skipped ${skipped.join(', ')})` : ''),
    );
  }
  if (validation === 0) {
    const hint = typeof input.split === 'object' ? 'raise data.validationFraction or give data.validationInputs' : 'check data.validationInputs';
    throw new CriteoError(`no validation rows: ${hint}`);
  }
  return writer.commit({ summary });
}

/** Whether line `line` of `file` is held out: a seeded hash of the file's name and the line number. */
function lineSplit(file: string, split: { seed: number; fraction: number }): (line: number) => boolean {
  const name = Number.parseInt(hex8(basename(file)), 16);
  const threshold = split.fraction * 0x100000000;
  return (line) => deriveSeed(split.seed, name, line) < threshold;
}

function checkFiles(paths: readonly string[], key: string): FileStamp[] {
  return paths.map((path) => {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      throw new CriteoError(`input file ${path} does not exist (${key})`);
    }
    if (stat.isDirectory()) throw new CriteoError(`input ${path} is not a regular file but a folder (${key}: list the files themselves, e.g. ${join(path, '*')})`);
    if (!stat.isFile()) throw new CriteoError(`input ${path} is not a regular file (${key}: list the files themselves)`);
    if (stat.size === 0) throw new CriteoError(`input file ${path} is empty (${key})`);
    return { file: resolve(path), bytes: stat.size, mtimeMs: stat.mtimeMs };
  });
}

function checkDistinct(files: readonly FileStamp[]): void {
  const seen = new Map<string, string>();
  for (const { file } of files) {
    const real = realpathSync(file);
    const earlier = seen.get(real);
    if (earlier !== undefined) throw new CriteoError(`input file ${file} is listed twice (also as ${earlier})`);
    seen.set(real, file);
  }
}


/** How the store at hand differs from the one these inputs and settings would write, if it does. */
function describeChange(meta: RecordMeta, input: ClickInput): string | undefined {
  if (meta.kind !== CLICK_RECORD_KIND) return `it holds ${meta.kind} records, not ${CLICK_RECORD_KIND}`;
  const was = (meta.source as Partial<ClickSource>).input as Record<string, unknown> | undefined;
  if (!was) return 'it does not say what it was built from';
  const changes: string[] = [];
  for (const [key, now] of Object.entries(input)) {
    if (JSON.stringify(was[key]) === JSON.stringify(now)) continue;
    if (Array.isArray(now)) {
      const before = new Set(((was[key] ?? []) as FileStamp[]).map((f) => JSON.stringify(f)));
      const changed = (now as FileStamp[]).filter((f) => !before.has(JSON.stringify(f))).map((f) => f.file);
      changes.push(changed.length ? `${key} ${changed.join(', ')} new or changed` : `${key} fewer or reordered`);
    } else {
      changes.push(`${key} ${JSON.stringify(was[key]) ?? '(unset)'} -> ${JSON.stringify(now)}`);
    }
  }
  return changes.length ? `it was built from other inputs or settings (${changes.join('; ')})` : undefined;
}

function report(meta: RecordMeta, upToDate: boolean, notes: string[]): IngestReport {
  const summary = (meta.source as Partial<ClickSource>).summary;
  const splits: Split[] = ['train', 'validation'];
  const rows = splits.map((split) => {
    const { rows: n, shards } = meta.splits[split];
    const positives = summary?.positives[split];
    const rate = positives === undefined || n === 0 ? '-' : `${((100 * positives) / n).toFixed(2)}%`;
    return [split, n.toLocaleString(), shards.toLocaleString(), rate];
  });
  const skipped = summary ? MALFORMED_REASONS.filter((r) => summary.skipped[r] > 0) : [];
  const count = skipped.reduce((sum, r) => sum + summary!.skipped[r], 0);
  const skippedNote = count
    ? `skipped ${count.toLocaleString()} malformed row${count === 1 ? '' : 's'}: ${skipped.map((r) => `${summary!.skipped[r]} ${r}`).join(', ')}`
    : 'no malformed rows skipped';
  return { upToDate, header: ['split', 'rows', 'shards', 'positive rate'], rows, notes: [...notes, skippedNote] };
}
