import t from 'tap';
import { join } from 'node:path';
import { RecordWriter } from '../src/records/store.js';
import { openRecordStream, readValidation } from '../src/records/stream.js';
import type { StreamSpec, TrainBatch } from '../src/workloads/workload.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/**
 * A store whose train row i has id i, a float copy of it and a uint8 tag, in shards of `shardRows` (the last one
 * short unless `rows` divides evenly); validation row j has id 1e6 + j.
 */
async function store(t: Test, rows: number, shardRows: number, validation = 10): Promise<string> {
  const path = join(t.testdir(), 'store');
  const writer = RecordWriter.create(path, {
    kind: 'test',
    fields: [
      { name: 'id', dtype: 'int32', width: 1 },
      { name: 'pair', dtype: 'float32', width: 2 },
      { name: 'tag', dtype: 'uint8', width: 1 },
    ],
    shardRows,
    source: {},
  });
  for (let i = 0; i < rows; i++) writer.append('train', { id: [i], pair: [i, -i], tag: [i % 251] });
  for (let j = 0; j < validation; j++) writer.append('validation', { id: [1e6 + j], pair: [j, j], tag: [0] });
  await writer.commit();
  return path;
}

const spec = (over: Partial<StreamSpec>): StreamSpec => ({ group: 0, groups: 1, sameData: false, batch: 4, seed: 1, ...over });

async function take(path: string, s: StreamSpec, n: number, shuffleShards?: number): Promise<TrainBatch[]> {
  const stream = openRecordStream(path, s, { shuffleShards });
  try {
    const out: TrainBatch[] = [];
    for (let i = 0; i < n; i++) out.push(await stream.next());
    return out;
  } finally {
    await stream.close();
  }
}

const ids = (batches: TrainBatch[]): number[] => batches.flatMap((b) => [...b.fields.id]);

t.test('disjoint groups read their own shards and cover every train row once an epoch', async (t) => {
  const path = await store(t, 100, 10); // 10 shards of 10
  const groups = 3;
  const seen: number[] = [];
  for (let group = 0; group < groups; group++) {
    const shards = Array.from({ length: 10 }, (_, s) => s).filter((s) => s % groups === group);
    const perEpoch = (shards.length * 10) / 2; // batch 2: no tail
    const batches = await take(path, spec({ group, groups, batch: 2 }), perEpoch);
    const got = ids(batches);
    t.same(new Set(got.map((id) => Math.floor(id / 10))), new Set(shards), `group ${group} reads shards ${shards}`);
    t.equal(new Set(got).size, got.length, `group ${group}: no row twice in an epoch`);
    seen.push(...got);
    t.same(batches.at(-1)!.cursor, { epoch: 1, batch: 0 }, 'the last batch of an epoch points at the next epoch');
  }
  t.same([...seen].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i), 'every row exactly once');
});

t.test('with sameData every group reads every shard, each in its own order', async (t) => {
  const path = await store(t, 60, 10);
  const a = ids(await take(path, spec({ group: 0, groups: 2, sameData: true, batch: 6 }), 10));
  const b = ids(await take(path, spec({ group: 1, groups: 2, sameData: true, batch: 6 }), 10));
  t.same([...a].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i));
  t.same([...b].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i));
  t.notSame(a, b);
});

t.test('the order is shuffled, fixed by the seed and different for another seed or epoch', async (t) => {
  const path = await store(t, 200, 10);
  const a = ids(await take(path, spec({ seed: 5 }), 100));
  t.same(ids(await take(path, spec({ seed: 5 }), 100)), a, 'same seed, same order');
  t.notSame(ids(await take(path, spec({ seed: 6 }), 100)), a, 'another seed, another order');
  const [epoch0, epoch1] = [a.slice(0, 200), a.slice(200)];
  t.notSame(epoch0, epoch1, 'epochs differ');
  t.notSame(epoch0, [...epoch0].sort((x, y) => x - y), 'rows are not in store order');
  for (const epoch of [epoch0, epoch1]) t.same([...epoch].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i));
});

t.test('a block mixes the rows of shuffleShards shards, and blocks follow one another', async (t) => {
  const path = await store(t, 80, 10); // 8 shards
  const epoch = ids(await take(path, spec({ batch: 10 }), 8, 2));
  for (let block = 0; block < 4; block++) {
    const shards = new Set(epoch.slice(block * 20, block * 20 + 20).map((id) => Math.floor(id / 10)));
    t.equal(shards.size, 2, `block ${block} holds the rows of 2 shards`);
  }
});

t.test('resuming at a cursor gives the batches an uninterrupted stream gives from there', async (t) => {
  const path = await store(t, 97, 8); // 13 shards, the last one short; batch 5 leaves a tail
  for (const [shuffleShards, groups] of [[3, 1], [1, 2], [8, 1]]) {
    const s = spec({ batch: 5, groups, seed: 11 });
    const whole = await take(path, s, 60, shuffleShards);
    for (const at of [1, 7, 19, 20, 33, 59]) {
      const cursor = whole[at - 1].cursor;
      const resumed = await take(path, { ...s, cursor }, 60 - at, shuffleShards);
      t.same(ids(resumed), ids(whole.slice(at)), `shuffleShards ${shuffleShards}, groups ${groups}: after batch ${at} (${JSON.stringify(cursor)})`);
      t.same(resumed.map((b) => b.cursor), whole.slice(at).map((b) => b.cursor));
    }
  }
});

t.test('a tail shorter than a batch is dropped, and cursors count batches within epochs', async (t) => {
  const path = await store(t, 23, 5); // 23 rows: 4 batches of 5, 3 rows dropped each epoch
  const batches = await take(path, spec({ batch: 5 }), 8);
  t.same(batches.map((b) => b.cursor), [
    { epoch: 0, batch: 1 }, { epoch: 0, batch: 2 }, { epoch: 0, batch: 3 }, { epoch: 1, batch: 0 },
    { epoch: 1, batch: 1 }, { epoch: 1, batch: 2 }, { epoch: 1, batch: 3 }, { epoch: 2, batch: 0 },
  ]);
  const first = ids(batches.slice(0, 4));
  t.equal(new Set(first).size, 20, '20 distinct rows in epoch 0');
  t.ok(batches.every((b) => b.rows === 5 && b.fields.id.length === 5 && !b.continues));
});

t.test('every field of every batch is a fresh typed array over a buffer of its own, rows in step', async (t) => {
  const path = await store(t, 40, 10);
  const batches = await take(path, spec({ batch: 8 }), 6);
  const buffers = new Set<ArrayBufferLike>();
  for (const b of batches) {
    t.type(b.fields.id, Int32Array);
    t.type(b.fields.pair, Float32Array);
    t.type(b.fields.tag, Uint8Array);
    for (const f of Object.values(b.fields)) {
      t.equal(f.byteOffset, 0);
      t.equal(f.byteLength, f.buffer.byteLength, 'the array is its whole buffer (transferable alone)');
      buffers.add(f.buffer);
    }
    for (let r = 0; r < b.rows; r++) {
      const id = b.fields.id[r];
      t.same([b.fields.pair[2 * r], b.fields.pair[2 * r + 1], b.fields.tag[r]], [id, -id, id % 251]);
    }
  }
  t.equal(buffers.size, 18);
});

t.test('streams refuse what they cannot serve, naming the numbers', async (t) => {
  const path = await store(t, 30, 10); // 3 shards
  t.throws(() => openRecordStream(path, spec({ groups: 4 })), /3 shards but groups = 4/);
  t.throws(() => openRecordStream(path, spec({ group: 2, groups: 2 })), /not a group index/);
  t.throws(() => openRecordStream(path, spec({ batch: 31 })), /30 rows, fewer than one batch of 31/);
  t.throws(() => openRecordStream(path, spec({ batch: 10, cursor: { epoch: 0, batch: 3 } })), /an epoch has 3 batches/);
  const stream = openRecordStream(path, spec({}));
  await stream.close();
  await t.rejects(stream.next(), /closed/);
});

t.test('readValidation gives the first rows of the validation split in order', async (t) => {
  const path = await store(t, 10, 4, 11); // validation shards of 4, 4, 3
  const v = readValidation(path, 6);
  t.equal(v.rows, 6);
  t.same([...v.fields.id], [0, 1, 2, 3, 4, 5].map((j) => 1e6 + j));
  t.same([...v.fields.pair], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
  t.not(v.fields.id.buffer, v.fields.pair.buffer);
  t.equal(readValidation(path, 100).rows, 11, 'at most the split');
  t.equal(readValidation(path, 8).fields.id.at(-1), 1e6 + 7, 'a whole number of shards');
  t.equal(readValidation(path, 0).rows, 0);
});
