import t from 'tap';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { RecordStore, RecordWriter } from '../src/records/store.js';
import { Random } from '../src/util/random.js';
import type { ImageDataConfig } from '../src/workloads/image/config.js';
import { imageDataSchema } from '../src/workloads/image/config.js';
import { encodeIdx, IdxError, MNIST_FILES } from '../src/workloads/image/idx.js';
import { ingestImages } from '../src/workloads/image/ingest.js';
import type { IngestProgressSink } from '../src/workloads/workload.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];
type Split = 'train' | 'validation';

const ROWS = 6;
const COLS = 5;

interface Images {
  pixels: number[];
  labels: number[];
}

/** Seeded 6x5 digits written as the four IDX files into `dir`: 50 for training and 20 for testing by default. */
function writeMnist(dir: string, seed: number, counts = { train: 50, test: 20 }): Record<Split, Images> {
  mkdirSync(dir, { recursive: true });
  const rng = new Random(seed);
  const write = (split: keyof typeof MNIST_FILES, count: number): Images => {
    const pixels = Array.from({ length: count * ROWS * COLS }, () => rng.int(256));
    const labels = Array.from({ length: count }, () => rng.int(10));
    writeFileSync(join(dir, MNIST_FILES[split].images), encodeIdx([count, ROWS, COLS], pixels));
    writeFileSync(join(dir, MNIST_FILES[split].labels), encodeIdx([count], labels));
    return { pixels, labels };
  };
  return { train: write('train', counts.train), validation: write('test', counts.test) };
}

function setup(t: Test, seed = 1): { dir: string; data: ImageDataConfig; images: Record<Split, Images> } {
  const dir = t.testdir();
  const images = writeMnist(join(dir, 'idx'), seed);
  const data = imageDataSchema.parse({ path: join(dir, 'store'), source: join(dir, 'idx'), shardRows: 16 });
  return { dir, data, images };
}

/** Each split of the store, its shards concatenated, checking each shard's size on the way. */
function readBack(t: Test, path: string): Record<Split, Images> {
  const store = RecordStore.open(path);
  try {
    const out = {} as Record<Split, Images>;
    for (const split of ['train', 'validation'] as const) {
      out[split] = { pixels: [], labels: [] };
      const { rows, shards } = store.meta.splits[split];
      for (let i = 0; i < shards; i++) {
        const shard = store.readShard(split, i);
        const expected = Math.min(store.meta.shardRows, rows - i * store.meta.shardRows);
        t.equal(shard.label.length, expected, `${split} shard ${i} holds ${expected} rows`);
        t.equal(shard.pixels.length, expected * ROWS * COLS);
        out[split].pixels.push(...shard.pixels);
        out[split].labels.push(...shard.label);
      }
    }
    return out;
  } finally {
    store.close();
  }
}

/** A progress sink that records its calls. */
function recorder(): IngestProgressSink & { phases: string[]; updates: number[] } {
  const phases: string[] = [];
  const updates: number[] = [];
  return {
    phases,
    updates,
    phase: (name, total, unit) => phases.push([name, total, unit].filter((x) => x !== undefined).join(' ')),
    update: (done) => updates.push(done),
    line: () => {},
  };
}

const histogram = (labels: number[]) => Array.from({ length: 10 }, (_, d) => labels.filter((l) => l === d).length);

t.test('ingest writes the training and the test images, in file order, as train and validation records', async (t) => {
  const { data, images } = setup(t);
  const progress = recorder();
  const report = await ingestImages(data, { progress });
  t.equal(report.upToDate, false);
  t.same(progress.phases, ['read', 'write 70 images']);
  t.same(progress.updates.at(-1), 70, 'the last update counts every image');

  t.same(readBack(t, data.path), images, 'pixels and labels round-trip exactly');
  const store = RecordStore.open(data.path);
  t.teardown(() => store.close());
  t.equal(store.meta.kind, 'mnist-idx');
  t.same(store.meta.fields, [
    { name: 'pixels', dtype: 'uint8', width: ROWS * COLS },
    { name: 'label', dtype: 'uint8', width: 1 },
  ]);
  t.same(store.meta.splits, { train: { rows: 50, shards: 4 }, validation: { rows: 20, shards: 2 } });
  t.ok(store.readShard('train', 0).pixels instanceof Uint8Array, 'pixels stay bytes');

  t.same(report.header, ['split', 'images', 'shards', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  t.same(report.rows, [
    ['train', '50', '4', ...histogram(images.train.labels).map(String)],
    ['validation', '20', '2', ...histogram(images.validation.labels).map(String)],
  ]);
});

t.test('re-running on the same files is a no-op reported as up to date, without reading them', async (t) => {
  const { data } = setup(t);
  const first = await ingestImages(data);
  const progress = recorder();
  const again = await ingestImages(data, { progress });
  t.equal(again.upToDate, true);
  t.same(again.rows, first.rows, 'the same table, from the store');
  t.match(again.notes.join('\n'), /is up to date with .*idx/);
  t.same(progress.phases, [], 'nothing was read or written');
});

t.test('another source or other settings are refused without force and rebuilt with it', async (t) => {
  const { dir, data, images } = setup(t);
  await ingestImages(data);
  const other = writeMnist(join(dir, 'other'), 2, { train: 30, test: 10 });
  const moved = { ...data, source: join(dir, 'other') };
  await t.rejects(ingestImages(moved), /not replacing the image store at .*store: it was built from .*idx, not .*other\. Pass --force/);
  await t.rejects(ingestImages({ ...data, shardRows: 8 }), /built with shardRows 16, not 8/);

  const touched = join(data.source, MNIST_FILES.train.labels);
  writeFileSync(touched, readFileSync(touched));
  await t.rejects(ingestImages(data), /train-labels-idx1-ubyte changed since/, 'a file whose modification time moved');
  t.same(readBack(t, data.path), images, 'the old store is untouched');

  const forced = await ingestImages(moved, { force: true });
  t.equal(forced.upToDate, false);
  t.same(readBack(t, data.path), other);
  t.equal((await ingestImages(moved)).upToDate, true, 'and the rebuilt store is current');
});

t.test('bad files fail before any store is written and leave an old store intact', async (t) => {
  const { dir, data, images } = setup(t);
  cpSync(data.source, join(dir, 'bad'), { recursive: true });
  const bad = { ...data, source: join(dir, 'bad') };
  writeFileSync(join(bad.source, MNIST_FILES.test.labels), encodeIdx([20], new Uint8Array(20).fill(11)));
  await t.rejects(ingestImages(bad), /t10k-labels-idx1-ubyte: label 11 at index 0 is not a digit/);
  t.notOk(existsSync(data.path), 'no store');
  await t.rejects(ingestImages({ ...data, source: join(dir, 'nowhere') }), IdxError);
  await t.rejects(ingestImages({ ...data, source: join(dir, 'nowhere') }), /data\.source .*nowhere does not exist: it names the folder of the four MNIST IDX files/);

  writeMnist(join(dir, 'empty'), 3, { train: 0, test: 5 });
  await t.rejects(ingestImages({ ...data, source: join(dir, 'empty') }), /train-images-idx3-ubyte: no images/);
  t.same(readdirSync(dir).sort(), ['bad', 'empty', 'idx'], 'no partial store either');

  await ingestImages(data);
  await t.rejects(ingestImages(bad, { force: true }), /label 11/);
  t.same(readBack(t, data.path), images, 'the old store is intact');
});

t.test('a failure while writing removes the partial store and keeps the old one', async (t) => {
  const { dir, data, images } = setup(t);
  await ingestImages(data);
  writeMnist(join(dir, 'other'), 2);
  const failing = { ...recorder(), update: () => { throw new Error('disk on fire'); } };
  await t.rejects(ingestImages({ ...data, source: join(dir, 'other') }, { force: true, progress: failing }), /disk on fire/);
  t.same(readBack(t, data.path), images);
  t.same(readdirSync(dir).sort(), ['idx', 'other', 'store'], 'nothing half-written next to it');
});

t.test('a store of other records or in another format version is refused without force and rebuilt with it', async (t) => {
  const { data, images } = setup(t);
  const writer = RecordWriter.create(data.path, {
    kind: 'criteo',
    fields: [{ name: 'label', dtype: 'uint8', width: 1 }],
    shardRows: 16,
    source: {},
  });
  writer.append('train', { label: [1] });
  const meta = await writer.commit();
  await t.rejects(ingestImages(data), /not replacing the image store .*it holds criteo records, not mnist-idx/);

  const env = open({ path: data.path, maxDbs: 4 });
  await env.openDB({ name: 'meta' }).put('meta', { ...meta, version: 99 });
  await env.close();
  await t.rejects(ingestImages(data), /not replacing the image store .*record format version 99.*--force/);
  t.equal((await ingestImages(data, { force: true })).upToDate, false);
  t.same(readBack(t, data.path), images);
});

t.test('a path that is not a record store is never replaced, even with force', async (t) => {
  const { dir, data } = setup(t);
  const precious = join(dir, 'precious');
  mkdirSync(precious);
  writeFileSync(join(precious, 'notes.txt'), 'keep me\n');
  await t.rejects(ingestImages({ ...data, path: precious }, { force: true }), /exists and is not a record store/);
  t.equal(readFileSync(join(precious, 'notes.txt'), 'utf8'), 'keep me\n');
});

t.test('the bundled MNIST files ingest into 60000 train and 10000 validation images', async (t) => {
  const data = imageDataSchema.parse({ path: join(t.testdir(), 'mnist') });
  t.equal(data.source, '', 'the default source is the bundled package');
  const progress = recorder();
  const report = await ingestImages(data, { progress });
  t.same(progress.phases, ['read', 'write 70000 images']);
  t.equal(progress.updates.length, Math.floor(70000 / 4096) + 1, 'an update every 4096 images, and one at the end');
  t.same(report.rows.map((r) => r.slice(0, 3)), [['train', '60,000', '15'], ['validation', '10,000', '3']]);
  const perDigit = report.rows.map((r) => r.slice(3).reduce((sum, c) => sum + Number(c.replaceAll(',', '')), 0));
  t.same(perDigit, [60000, 10000], 'every image counted under its digit');

  const store = RecordStore.open(data.path);
  t.teardown(() => store.close());
  const first = store.readShard('train', 0);
  t.equal(first.label[0], 5, 'the first training digit is the well-known 5');
  t.equal(first.pixels.length, 4096 * 28 * 28);
});
