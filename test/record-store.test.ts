import t from 'tap';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import {
  type FieldSpec,
  RecordError,
  RecordStore,
  recordStoreExists,
  RecordWriter,
} from '../src/records/store.js';
import { Random } from '../src/util/random.js';

const FIELDS: FieldSpec[] = [
  { name: 'bytes', dtype: 'uint8', width: 3 },
  { name: 'ids', dtype: 'int32', width: 2 },
  { name: 'values', dtype: 'float32', width: 5 },
  { name: 'flag', dtype: 'uint8', width: 1 },
];

type Row = Record<string, number[]>;

/** Seeded rows whose values fit every dtype exactly (floats are halves, ints span the int32 range). */
function rows(n: number, seed: number): Row[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => ({
    bytes: [rng.int(256), rng.int(256), rng.int(256)],
    ids: [rng.uint32() | 0, -rng.int(1000)],
    values: Array.from({ length: 5 }, () => (rng.int(2001) - 1000) / 2),
    flag: [rng.int(2)],
  }));
}

async function write(path: string, data: Record<'train' | 'validation', Row[]>, shardRows = 4, kind = 'test') {
  const writer = RecordWriter.create(path, { kind, fields: FIELDS, shardRows, source: { made: 'here' } });
  for (const split of ['train', 'validation'] as const) for (const row of data[split]) writer.append(split, row);
  return writer.commit();
}

/** Every row of a split, read back shard by shard, as plain numbers. */
function readBack(store: RecordStore, split: 'train' | 'validation'): Row[] {
  const out: Row[] = [];
  for (let s = 0; s < store.meta.splits[split].shards; s++) {
    const shard = store.readShard(split, s);
    const n = store.rowsInShard(split, s);
    for (let r = 0; r < n; r++) {
      const row: Row = {};
      for (const f of FIELDS) row[f.name] = [...shard[f.name].subarray(r * f.width, (r + 1) * f.width)];
      out.push(row);
    }
  }
  return out;
}

t.test('every dtype round-trips through the store, shard after shard, in append order', async (t) => {
  const path = join(t.testdir(), 'store');
  const data = { train: rows(10, 1), validation: rows(3, 2) };
  const meta = await write(path, data);
  t.same(meta.splits, { train: { rows: 10, shards: 3 }, validation: { rows: 3, shards: 1 } });
  t.ok(recordStoreExists(path));
  const store = RecordStore.open(path);
  t.teardown(() => store.close());
  t.same(store.meta, meta);
  t.same(store.meta.source, { made: 'here' });
  t.same(readBack(store, 'train'), data.train);
  t.same(readBack(store, 'validation'), data.validation);
  const shard = store.readShard('train', 0);
  t.type(shard.bytes, Uint8Array);
  t.type(shard.ids, Int32Array);
  t.type(shard.values, Float32Array);
  t.not(shard.ids.buffer, shard.values.buffer, 'each field in a buffer of its own');
});

t.test('shards hold shardRows rows each except the last of a split, which may be short', async (t) => {
  const dir = t.testdir();
  for (const [n, shards, last] of [[8, 2, 4], [9, 3, 1], [1, 1, 1], [0, 0, 0]] as const) {
    const path = join(dir, `n${n}`);
    await write(path, { train: rows(n, n), validation: [] });
    const store = RecordStore.open(path);
    t.equal(store.meta.splits.train.shards, shards, `${n} rows: ${shards} shards`);
    if (shards > 0) {
      t.equal(store.rowsInShard('train', 0), Math.min(4, n));
      t.equal(store.rowsInShard('train', shards - 1), last);
      t.equal(store.readShard('train', shards - 1).values.length, last * 5);
    }
    t.throws(() => store.rowsInShard('train', shards), /does not exist/);
    t.same(readBack(store, 'train'), rows(n, n));
    store.close();
  }
});

t.test('readShardInto copies a shard into larger arrays at a row offset', async (t) => {
  const path = join(t.testdir(), 'store');
  const data = rows(6, 3);
  await write(path, { train: data, validation: [] });
  const store = RecordStore.open(path);
  t.teardown(() => store.close());
  const target = { bytes: new Uint8Array(30), ids: new Int32Array(20), values: new Float32Array(50), flag: new Uint8Array(10) };
  t.equal(store.readShardInto('train', 1, target, 5), 2);
  t.same([...target.ids.subarray(10, 14)], [...data[4].ids, ...data[5].ids]);
  t.same([...target.ids.subarray(0, 10)], new Array(10).fill(0), 'rows before the offset untouched');
  t.throws(() => store.readShardInto('train', 0, target, 8), /room for 4 rows at row 8/);
  t.throws(() => store.readShardInto('train', 0, { ...target, ids: new Float32Array(20) }, 0), /needs a int32 array/);
});

t.test('a row with a missing or wrong-width field is refused and leaves the writer usable', async (t) => {
  const path = join(t.testdir(), 'store');
  const writer = RecordWriter.create(path, { kind: 'test', fields: FIELDS, shardRows: 4, source: {} });
  const [good] = rows(1, 4);
  t.throws(() => writer.append('train', { ...good, ids: [1] }), /field "ids" of a train row has 1 values, expected 2/);
  t.throws(() => writer.append('train', { bytes: good.bytes }), /field "ids" of a train row has no values/);
  writer.append('train', good);
  const meta = await writer.commit();
  t.equal(meta.splits.train.rows, 1);
  t.throws(() => writer.append('train', good), /append after commit/);
});

t.test('bad field specs are refused', async (t) => {
  const dir = t.testdir();
  const create = (fields: FieldSpec[], shardRows = 4) => () =>
    RecordWriter.create(join(dir, 'x'), { kind: 'test', fields, shardRows, source: {} });
  t.throws(create([]), RecordError);
  t.throws(create([FIELDS[0], FIELDS[0]]), /repeated/);
  t.throws(create([{ name: 'a', dtype: 'int32', width: 0 }]), /width 0/);
  t.throws(create([{ name: 'a', dtype: 'float64' as 'float32', width: 1 }]), /unknown dtype float64/);
  t.throws(create(FIELDS, 0), /shardRows 0/);
});

t.test('commit replaces an older store; abort and failed writes leave it as it was and nothing else', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'store');
  await write(path, { train: rows(5, 5), validation: rows(2, 6) });
  await write(path, { train: rows(7, 7), validation: [] });
  const read = () => {
    const store = RecordStore.open(path);
    try {
      return { meta: store.meta, train: readBack(store, 'train') };
    } finally {
      store.close();
    }
  };
  t.same(read().train, rows(7, 7), 'the newer store replaced the older one');
  t.same(readdirSync(dir), ['store'], 'no temporary or old folder left');

  const aborted = RecordWriter.create(path, { kind: 'test', fields: FIELDS, shardRows: 2, source: {} });
  for (const row of rows(9, 8)) aborted.append('train', row);
  t.ok(readdirSync(dir).some((e) => e.startsWith('store.partial-')), 'the new store is written beside the old one');
  await aborted.abort();
  t.same(read().train, rows(7, 7), 'abort keeps the old store');
  t.same(readdirSync(dir), ['store']);

  const failing = RecordWriter.create(path, { kind: 'test', fields: FIELDS, shardRows: 2, source: {} });
  try {
    for (const [i, row] of rows(9, 9).entries()) failing.append('train', i === 6 ? { ...row, values: [] } : row);
  } catch (err) {
    t.match((err as Error).message, /field "values"/);
    await failing.abort();
  }
  t.same(read().train, rows(7, 7), 'a write that failed midway keeps the old store');
  t.same(readdirSync(dir), ['store']);
});

t.test('commit does not replace a folder that is not a record store', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'precious');
  mkdirSync(path);
  writeFileSync(join(path, 'notes.txt'), 'keep me');
  await t.rejects(write(path, { train: rows(2, 1), validation: [] }), /exists and is not a record store/);
  t.same(readdirSync(path), ['notes.txt']);
  t.same(readdirSync(dir), ['precious'], 'the partial store is removed');
});

t.test('opening refuses clearly: no store, not a store, another format, another version, other records', async (t) => {
  const dir = t.testdir();
  t.throws(() => RecordStore.open(join(dir, 'nothing')), /no record store at .*nothing/);
  mkdirSync(join(dir, 'folder'));
  t.throws(() => RecordStore.open(join(dir, 'folder')), /folder is not a record store/);
  t.notOk(recordStoreExists(join(dir, 'folder')));

  const lmdb = (name: string, meta: unknown) => {
    const env = open({ path: join(dir, name), noSubdir: false, maxDbs: 4 });
    env.openDB({ name: 'meta' }).putSync('meta', meta);
    return env.close();
  };
  await lmdb('corpus', { format: 'codistill-corpus', version: 1 });
  t.throws(() => RecordStore.open(join(dir, 'corpus')), /corpus is not a codistill record store/);
  await lmdb('future', { format: 'codistill-records', version: 2 });
  t.throws(() => RecordStore.open(join(dir, 'future')), /record format version 2; this codistill reads version 1: .*--force/);

  await write(join(dir, 'test'), { train: rows(1, 1), validation: [] }, 4, 'images');
  t.throws(() => RecordStore.open(join(dir, 'test'), { kind: 'criteo' }), /holds images records, not criteo/);
  RecordStore.open(join(dir, 'test'), { kind: 'images' }).close();
});

t.test('memory stays flat: a writer holds one shard per split however many rows go in', async (t) => {
  const path = join(t.testdir(), 'store');
  const fields: FieldSpec[] = [{ name: 'x', dtype: 'float32', width: 256 }];
  const writer = RecordWriter.create(path, { kind: 'test', fields, shardRows: 256, source: {} });
  const row = { x: new Float32Array(256) };
  const heap = () => process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 2560; i++) writer.append('train', row);
  const after10 = heap();
  for (let i = 0; i < 25600; i++) writer.append('train', row); // another 25 MB of rows
  t.ok(heap() - after10 < 8 << 20, `array buffers grew by ${((heap() - after10) / 1e6).toFixed(1)} MB`);
  const meta = await writer.commit();
  t.equal(meta.splits.train.shards, 110);
});
