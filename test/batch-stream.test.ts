import t from 'tap';
import { join } from 'node:path';
import { Subject, firstValueFrom, take, toArray } from 'rxjs';
import { syntheticToken, writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { CORPUS_FORMAT, CORPUS_FORMAT_VERSION, Corpus, CorpusWriter } from '../src/workloads/lm/corpus/store.js';
import { type BatchStreamOptions, type WindowBatch, createReaderPool, openBatchStream } from '../src/workloads/lm/data/batches.js';
import type { DataOrder } from '../src/workloads/lm/data/order.js';
import type { ToReader } from '../src/protocol.js';

// 21 training shards of 1024 tokens (the last one 500): with T = 16, 63 windows a full shard, spans of M = 7 windows.
// Group 0 has blocks of 3, 4 and 4 shards (the short one last): 3, 4 and 3 chunks of B = 8 spans, 70 batches an epoch.
const T = 16;
const B = 8;
const M = 7;
const dir = t.testdir();
const corpusPath = join(dir, 'corpus');
t.before(() => writeSyntheticCorpus(corpusPath, { shardTokens: 1024, tokens: { train: 20 * 1024 + 500, validation: 3000 } }));
const pool = createReaderPool(2);
t.teardown(() => pool.destroy());

const options = (over: Partial<BatchStreamOptions> = {}): BatchStreamOptions => ({
  corpusPath, group: 0, groups: 2, sameData: false, batch: B, window: T, seed: 7, pool, shuffleShards: 4, spanWindows: M, ...over,
});
const pull = async (stream: { next(): Promise<WindowBatch> }, n: number): Promise<WindowBatch[]> => {
  const out: WindowBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await stream.next());
  return out;
};
const summary = (b: WindowBatch) => ({ epoch: b.epoch, index: b.index, k: b.spanWindow, cursor: b.cursor, data: Array.from(b.data) });

t.test('batch rows are the corpus tokens of the windows the data order names', async (t) => {
  const stream = openBatchStream(options());
  t.teardown(() => stream.close());
  const order = stream.order;
  t.same([order.spanWindows, order.batchesPerEpoch], [M, 70]);
  const batches = await pull(stream, order.batchesPerEpoch + 3);
  const corpus = Corpus.open(corpusPath);
  t.teardown(() => corpus.close());
  const windows = [0, 1].map((e) => [...order.epochWindows(e)]);
  let mismatches = 0;
  for (const b of batches) {
    t.same([b.rows, b.cols, b.group, b.spanWindow], [B, T + 1, 0, b.index % M]);
    for (let r = 0; r < B; r++) {
      const { shard, offset } = windows[b.epoch][b.index * B + r];
      const want = Array.from(corpus.shard('train', shard).subarray(offset, offset + T + 1));
      if (want.join() !== Array.from(b.data.subarray(r * (T + 1), (r + 1) * (T + 1))).join()) mismatches++;
    }
  }
  t.equal(mismatches, 0, `${batches.length * B} rows checked against Corpus.shard`);
  t.same(batches.map((b) => [b.epoch, b.index]).slice(-4), [[0, order.batchesPerEpoch - 1], [1, 0], [1, 1], [1, 2]]);
  t.same(batches[order.batchesPerEpoch - 1].cursor, { epoch: 1, batch: 0 }, 'the cursor after an epoch is the next start');
  const [b0, b1] = batches;
  t.same(b1.data.subarray(0, 1)[0], b0.data[T], 'row 0 of batch 1 starts on the last token of row 0 of batch 0');
});

t.test('resuming from a batch cursor yields the same batches as an uninterrupted stream', async (t) => {
  const a = openBatchStream(options({ prefetch: 5 }));
  t.teardown(() => a.close());
  const run = (await pull(a, 160)).map(summary);
  for (const at of [0, 20, 39, 69, 100, 143]) {
    const b = openBatchStream(options({ cursor: run[at].cursor, prefetch: 3 }));
    t.same((await pull(b, 15)).map(summary), run.slice(at + 1, at + 16), `from ${JSON.stringify(run[at].cursor)}`);
    await b.close();
  }
});

t.test('groups sharing one pool read their own disjoint shards; sameData reads all', async (t) => {
  const shardsOf = (o: DataOrder) => new Set(o.shards.toArray());
  const g0 = openBatchStream(options({ group: 0 }));
  const g1 = openBatchStream(options({ group: 1 }));
  t.teardown(() => Promise.all([g0.close(), g1.close()]));
  const [b0, b1] = await Promise.all([g0.next(), g1.next()]);
  t.equal(b1.group, 1);
  t.notSame(Array.from(b0.data), Array.from(b1.data));
  const s0 = shardsOf(g0.order);
  t.ok([...shardsOf(g1.order)].every((s) => !s0.has(s)), 'disjoint');
  t.equal(s0.size + shardsOf(g1.order).size, 21, 'covering');
  const same = openBatchStream(options({ group: 1, sameData: true }));
  t.teardown(() => same.close());
  t.equal(shardsOf(same.order).size, 21);
  t.ok((await same.next()).data.length > 0);
});

t.test('bounded prefetch: reading stops at `prefetch` chunks (whole blocks) while nobody pulls', async (t) => {
  const own = createReaderPool(2); // its count of tasks read is this stream's alone
  t.teardown(() => own.destroy());
  const stream = openBatchStream(options({ prefetch: 7, pool: own }));
  t.teardown(() => stream.close());
  await stream.whenIdle();
  t.same(stream.stats, { tasks: 2, outstanding: 7, reusedBuffers: 0 }, 'blocks 0 and 1 (3 + 4 chunks) read ahead');
  t.equal(own.completed, 2, 'and read');
  await stream.whenIdle();
  t.equal(stream.stats.tasks, 2, 'nothing more while nobody pulls');
  await pull(stream, 2 * M);
  await stream.whenIdle();
  t.same(stream.stats.outstanding, 5, 'two chunks taken; block 2 (3 chunks) does not fit yet');
  await pull(stream, M);
  await stream.whenIdle();
  t.same(stream.stats, { tasks: 3, outstanding: 7, reusedBuffers: 1 }, 'block 0 taken: block 2 read into its buffer');

  const small = openBatchStream(options({ prefetch: 1 }));
  t.teardown(() => small.close());
  await small.whenIdle();
  t.same(small.stats, { tasks: 1, outstanding: 3, reusedBuffers: 0 }, 'a block larger than prefetch is read alone');
  await pull(small, 3 * M - 1);
  await small.whenIdle();
  t.same(small.stats.tasks, 1, 'and the next only when it has been taken');
  await small.next();
  await small.whenIdle();
  t.same(small.stats, { tasks: 2, outstanding: 4, reusedBuffers: 1 });
  t.throws(() => openBatchStream(options({ prefetch: 0 })), /prefetch must be >= 1/);
});

t.test('every batch owns its buffer: moving one on to a replica leaves the others intact', async (t) => {
  const reference = openBatchStream(options());
  t.teardown(() => reference.close());
  const want = (await pull(reference, 4)).map((b) => Array.from(b.data));
  const stream = openBatchStream(options());
  t.teardown(() => stream.close());
  const first = await stream.next();
  t.equal(first.data.byteOffset, 0);
  t.equal(first.data.buffer.byteLength, first.data.byteLength, 'the buffer is exactly the batch');
  const moved = structuredClone(first.data, { transfer: [first.data.buffer as ArrayBuffer] });
  t.equal(first.data.length, 0, 'moved away (as group.step does with a single replica)');
  t.same(Array.from(moved), want[0]);
  t.same((await pull(stream, 3)).map((b) => Array.from(b.data)), want.slice(1), 'the rest of the chunk is untouched');
  stream.recycle(first);
  t.pass('recycling a moved batch is harmless');
});

t.test('a recycled batch lends its buffer to a later batch instead of a fresh allocation', async (t) => {
  const stream = openBatchStream(options());
  t.teardown(() => stream.close());
  const reference = openBatchStream(options());
  t.teardown(() => reference.close());
  const want = (await pull(reference, 3)).map((b) => Array.from(b.data));
  const first = await stream.next();
  stream.recycle(first);
  stream.recycle(first);
  const second = await stream.next();
  t.equal(second.data.buffer, first.data.buffer, 'the next batch took the recycled buffer');
  t.same(Array.from(second.data), want[1], 'with its own rows');
  t.not((await stream.next()).data.buffer, first.data.buffer, 'recycled twice, used once');
});

t.test('batches$ and pull(demand$) deliver the same sequence as next()', async (t) => {
  const reference = openBatchStream(options());
  t.teardown(() => reference.close());
  const want = (await pull(reference, 5)).map(summary);
  const a = openBatchStream(options());
  t.teardown(() => a.close());
  t.same((await firstValueFrom(a.batches$.pipe(take(5), toArray()))).map(summary), want);
  const b = openBatchStream(options());
  t.teardown(() => b.close());
  const demand = new Subject<void>();
  const got: WindowBatch[] = [];
  const done = new Promise<void>((resolve) => {
    b.pull(demand).subscribe((batch) => {
      got.push(batch);
      if (got.length === 5) resolve();
      else demand.next();
    });
  });
  demand.next();
  await done;
  t.same(got.map(summary), want);
});

t.test('a bad corpus path is a clear error at open, a missing shard a clear error at next, never a hang', async (t) => {
  t.throws(() => openBatchStream(options({ corpusPath: join(dir, 'nope') })), { name: 'CorpusError', message: /no corpus at/ });
  t.throws(() => openBatchStream(options({ group: 2 })), /group 2 is not one of the 2 groups/);
  // A store whose metadata promises 4 training shards of which only 2 were written.
  const broken = join(dir, 'broken');
  const w = new CorpusWriter(broken);
  for (const s of [0, 1]) w.putShard('train', s, new Uint16Array(1024).map((_, i) => syntheticToken('train', s, i, 100)));
  await w.commit({
    format: CORPUS_FORMAT, version: CORPUS_FORMAT_VERSION,
    tokenizer: { kind: 'bpe', library: 'synthetic', vocabSize: 100, json: '{}', sha256: '', eod: 0 },
    tokenDtype: 'uint16', shardTokens: 1024,
    splits: { train: { shards: 4, tokens: 4096, documents: 4 }, validation: { shards: 0, tokens: 0, documents: 0 } },
    inputs: { fingerprint: 'broken', files: [] }, split: { seed: 0, validationFraction: 0 }, createdAt: '',
  });
  const stream = openBatchStream(options({ corpusPath: broken, groups: 1 }));
  t.teardown(() => stream.close());
  await t.rejects(stream.next(), { name: 'ReaderError', message: /shard train\/0000000[23] is missing/ });
  await t.rejects(stream.next(), /is missing/, 'the stream stays failed');
});

t.test('a stream with its own pool closes it; later pulls reject', async (t) => {
  const stream = openBatchStream(options({ pool: undefined, threads: 1 }));
  t.equal((await stream.next()).rows, B);
  await stream.close();
  await stream.close();
  await t.rejects(stream.next(), /closed/);
});

t.test('readers that die fail the pull that needs them with a ReaderError, never a hang', async (t) => {
  const own = createReaderPool(2);
  t.teardown(() => own.destroy());
  const stream = openBatchStream(options({ pool: own, prefetch: 1 }));
  t.teardown(() => stream.close());
  await stream.whenIdle();
  t.same(stream.stats.tasks, 1, 'block 0 read, nothing else granted');
  // Whether a grant reaches a reader before or after its death is known here, the pull that needs it must fail.
  for (const r of [0, 1]) own.post(r, { type: 'bogus' } as unknown as ToReader);
  const read = await pull(stream, 3 * M);
  t.equal(read.length, 3 * M, 'the batches already read are still delivered');
  await t.rejects(stream.next(), { name: 'ReaderError', message: /^reader [01]: unknown message/ });
  await t.rejects(stream.next(), /^reader [01]: unknown message/, 'and the stream stays failed');
  // Both readers' failures are known before the next stream opens (else the later one would fail that stream too).
  for (const r of [0, 1]) t.match(await own.readerEnded(r), { message: /^reader [01]: unknown message/ });
  const again = openBatchStream(options({ pool: own }));
  t.teardown(() => again.close());
  t.equal((await again.next()).rows, B, 'a stream opened afterwards reads on fresh readers');
});
