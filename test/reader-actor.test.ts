import t from 'tap';
import { join } from 'node:path';
import { readSpans } from '../actors/reader.js';
import type { ChunksReply, FeedSpec, FromReader, ReadSpansRequest, ReadSpansResult, ToReader } from '../src/protocol.js';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { Corpus, readCorpusMeta } from '../src/workloads/lm/corpus/store.js';
import { DataOrder } from '../src/workloads/lm/data/order.js';
import { partitionShards, shardLayout } from '../src/workloads/lm/data/partition.js';
import { createReaderPool } from '../src/workloads/lm/data/reader-pool.js';

// Spans of 3 windows of 16+1 tokens: 49 tokens.
const L = 3 * 16 + 1;
let corpora = 0;
const corpusIn = async (t: { testdir(): string }, tokenDtype: 'uint16' | 'uint32' = 'uint16') => {
  const path = join(t.testdir(), `corpus-${corpora++}`);
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 }, tokenDtype });
  return path;
};

/**
 * Two chunks of two spans, from shards 4, 0 | 4, 1 (shard 4 is the short last one, 100 tokens): the task lists shard 4
 * once. The last span ends on shard 1's last token.
 */
const request = (corpusPath: string, over: Partial<ReadSpansRequest> = {}): ReadSpansRequest => ({
  corpusPath,
  split: 'train',
  spanTokens: L,
  rows: 2,
  chunks: 2,
  shards: Uint32Array.from([4, 0, 1]),
  spans: Uint32Array.from([0, 48, 1, 0, 0, 0, 2, 1024 - L]),
  ...over,
});
const expectedChunks = (path: string): number[][] => {
  const c = Corpus.open(path);
  const at = (s: number, o: number) => Array.from(c.shard('train', s).subarray(o, o + L));
  const chunks = [[...at(4, 48), ...at(0, 0)], [...at(4, 0), ...at(1, 1024 - L)]];
  c.close();
  return chunks;
};
/** The chunks of a read, each row looked up in its row table (ChunksReply's layout), as plain token lists. */
const chunksOf = (r: ReadSpansResult, chunks = 2, rows = 2, cols = L): number[][] => {
  const Tokens = r.dtype === 'uint16' ? Uint16Array : Uint32Array;
  const tokens = new Tokens(r.data, r.tokenOffset, r.tokens);
  const starts = new Uint32Array(r.data, 0, chunks * rows);
  return Array.from({ length: chunks }, (_, c) =>
    Array.from({ length: rows }, (_, row) => Array.from(tokens.subarray(starts[c * rows + row], starts[c * rows + row] + cols))).flat());
};

t.test('readSpans copies one region a shard and a row table saying where each span landed', async (t) => {
  const path = await corpusIn(t);
  const spent = new ArrayBuffer(4 * 4 + 2000 * 2);
  const reply = readSpans(request(path, { out: spent }));
  t.equal(reply.data, spent, 'filled the buffer it was given instead of allocating one');
  t.same(chunksOf(reply), expectedChunks(path));
  t.equal(reply.tokenOffset, 4 * 4, 'the tokens follow a Uint32 a row');
  // Shard 4's spans start at 48 and 0 (one region of 48 + L tokens), shard 0's at 0, shard 1's at 1024 - L.
  t.equal(reply.tokens, 48 + L + L + L, 'the regions of the spans, overlaps held once');
  t.same(Array.from(new Uint32Array(reply.data, 0, 4)), [48, 48 + L, 0, 48 + 2 * L], 'where each row starts');
  const small = readSpans(request(path, { out: new ArrayBuffer(4), reserveBytes: 5000 }));
  t.equal(small.data.byteLength, 5000, 'a buffer too small is replaced by one of reserveBytes');
  t.same(chunksOf(small), expectedChunks(path));
  t.equal(readSpans(request(path, { reserveBytes: 10 })).data.byteLength, 16 + (48 + 3 * L) * 2, 'or of what the read needs');
});

t.test('chunks come in the corpus dtype, uint16 or uint32', async (t) => {
  for (const dtype of ['uint16', 'uint32'] as const) {
    const path = await corpusIn(t, dtype);
    const reply = readSpans(request(path));
    t.equal(reply.dtype, dtype);
    t.same(chunksOf(reply), expectedChunks(path), dtype);
  }
});

t.test('a corpus replaced at the same path (re-ingest) is read afresh', async (t) => {
  const path = join(t.testdir(), 'replaced');
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 } });
  t.equal(readSpans(request(path)).dtype, 'uint16');
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 }, tokenDtype: 'uint32' });
  const reply = readSpans(request(path));
  t.equal(reply.dtype, 'uint32', 'not the cached handle of the deleted store');
  t.same(chunksOf(reply), expectedChunks(path));
});

t.test('bad reads throw errors that name the corpus, shard and span', async (t) => {
  const path = await corpusIn(t);
  const read = (over: Partial<ReadSpansRequest>, p = path) => () => readSpans(request(p, over));
  t.throws(read({}, join(path, 'nope')), /no corpus at .*nope/);
  t.throws(read({ shards: Uint32Array.from([4, 0, 9]) }), /shard train\/00000009 is missing/);
  t.throws(read({ spans: Uint32Array.from([0, 60, 1, 0, 0, 0, 2, 0]) }), /token 60 of train shard 4 runs past its end \(100 tokens\)/);
  t.throws(read({ chunks: 3 }), /3 chunks of 2 rows but 4 spans listed/);
  t.throws(read({ rows: 0 }), /bad rows 0/);
  t.throws(read({ spanTokens: 1 }), /bad spanTokens 1/);
  t.throws(read({ spans: Uint32Array.from([7, 0, 1, 0, 0, 0, 2, 0]) }), /slot 7 of 3/);
});

/** A feed spec over a 21-shard corpus, and the data order it names (as the stream builds it). */
const feedCorpus = async (t: { testdir(): string }) => {
  const corpusPath = join(t.testdir(), 'feed');
  await writeSyntheticCorpus(corpusPath, { shardTokens: 1024, tokens: { train: 20 * 1024 + 500, validation: 2048 } });
  const spec: FeedSpec = {
    corpusPath, split: 'train', group: 1, groups: 2, sameData: false, window: 16, batch: 8, seed: 3,
    shuffleShards: 4, spanWindows: 7, cursor: { epoch: 0, batch: 30 },
  };
  const layout = shardLayout(readCorpusMeta(corpusPath), 'train');
  const order = new DataOrder({ ...spec, layout, shards: partitionShards(layout, spec)[spec.group] });
  return { spec, order };
};

/** Collects a feed's replies; `until(n)` resolves once n have come. */
const collector = () => {
  const got: FromReader[] = [];
  let want = Infinity;
  let wake = (): void => undefined;
  return {
    got,
    sink: (e: FromReader) => {
      got.push(e);
      if (got.length >= want) wake();
    },
    until: (n: number) =>
      new Promise<void>((resolve) => {
        want = n;
        wake = resolve;
        if (got.length >= n) resolve();
      }),
  };
};

t.test('through the pool: a feed reads the tasks of its data order, each only once granted, spread over the readers', async (t) => {
  const { spec, order } = await feedCorpus(t);
  const pool = createReaderPool(2);
  t.teardown(() => pool.destroy());
  const c = collector();
  const feed = pool.openFeed(spec, c.sink);
  const spent = new ArrayBuffer(order.taskBytes(2));
  new Uint8Array(spent)[spent.byteLength - 1] = 0xab; // past task 0's tokens: a reader leaves it as it is
  feed.grant(0, spent);
  t.equal(spent.byteLength, 0, 'the granted buffer moved to a reader (detached here), not cloned');
  for (let j = 1; j < 6; j++) feed.grant(j);
  await c.until(6);
  t.equal(pool.completed, 6, 'six tasks granted, six read');

  const planner = order.planner(spec.cursor);
  const replies = (c.got as ChunksReply[]).sort((a, b) => a.task - b.task);
  t.same(replies.map((r) => r.type), Array(6).fill('chunks'));
  const corpus = Corpus.open(spec.corpusPath);
  t.teardown(() => corpus.close());
  for (const [j, reply] of replies.entries()) {
    const plan = planner.next();
    t.same([reply.task, reply.epoch, reply.firstChunk, reply.chunks], [j, plan.epoch, plan.firstChunk, plan.chunks], `task ${j}`);
    const want = readSpans({ ...plan, corpusPath: spec.corpusPath, split: 'train', spanTokens: order.spanTokens, rows: order.batch });
    t.same([reply.tokenOffset, reply.tokens], [want.tokenOffset, want.tokens]);
    t.same(chunksOf(reply, plan.chunks, order.batch, order.spanTokens), chunksOf(want, plan.chunks, order.batch, order.spanTokens));
  }
  t.ok(replies[0].tokenOffset + 2 * replies[0].tokens < order.taskBytes(2), 'task 0 leaves the buffer\'s tail alone');
  t.equal(new Uint8Array(replies[0].data).at(-1), 0xab, 'so task 0 came back in the granted buffer');
  t.ok(replies.some((r) => r.epoch === 1), 'the feed runs on into the next epoch');

  // Another feed's grants go through the same readers after anything left of the first: when both of its tasks are
  // back, a reader that had been able to read a seventh task of the first would have done so.
  const other = collector();
  const second = pool.openFeed(spec, other.sink);
  second.grant(0);
  second.grant(1);
  await other.until(2);
  t.equal(c.got.length, 6, 'nothing read beyond the grants');
  feed.close();
  second.close();
});

t.test('through the pool: a feed on a missing corpus gets a clear error, not a hang', async (t) => {
  const { spec } = await feedCorpus(t);
  const pool = createReaderPool(2);
  t.teardown(() => pool.destroy());
  const c = collector();
  pool.openFeed({ ...spec, corpusPath: '/nonexistent/corpus' }, c.sink);
  await c.until(2);
  t.same(c.got.map((e) => e.type), ['error', 'error'], 'one from each reader');
  t.match((c.got[0] as { message: string }).message, /no corpus at \/nonexistent\/corpus/);
});

t.test('a reader that dies fails every open feed with a clear error; a destroyed pool leaves nothing behind', async (t) => {
  const { spec } = await feedCorpus(t);
  const pool = createReaderPool(2);
  const c = collector();
  pool.openFeed(spec, c.sink);
  pool.post(1, { type: 'bogus' } as unknown as ToReader);
  await c.until(1);
  t.match(c.got[0], { type: 'error', feed: 0, task: -1, message: /^reader 1: unknown message/ });
  t.equal(pool.restarts, 0);
  pool.openFeed(spec, () => undefined);
  t.equal(pool.restarts, 1, 'the next feed opened starts the failed reader again');
  await pool.destroy();
  await pool.destroy();
  t.throws(() => pool.openFeed(spec, () => undefined), /destroyed/);
  const handles = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker');
  t.same(handles, [], 'destroyed pools leave no worker or port handle behind: the process can exit');
  t.throws(() => createReaderPool(0), /threads must be >= 1/);
});
