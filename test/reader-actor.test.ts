import t from 'tap';
import { join } from 'node:path';
import { transferableSymbol, valueSymbol } from 'piscina';
import reader from '../actors/reader.js';
import type { ChunksReply, ReadSpansRequest, ReaderReply } from '../actors/reader-messages.js';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { Corpus } from '../src/corpus/store.js';
import { createReaderPool } from '../src/data/reader-pool.js';

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
  type: 'read',
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
const chunksOf = (r: ChunksReply): number[][] => {
  const tokens = r.dtype === 'uint16' ? new Uint16Array(r.data) : new Uint32Array(r.data);
  return Array.from({ length: r.chunks }, (_, c) => Array.from(tokens.subarray(c * r.rows * r.cols, (c + 1) * r.rows * r.cols)));
};
const moved = (r: unknown) => (r as Record<symbol, ChunksReply>)[valueSymbol];

t.test('the worker handler returns the chunks as a moved reply (transfer list), not a clone', async (t) => {
  const path = await corpusIn(t);
  const spent = new ArrayBuffer(4 * L * 2 + 64);
  const result = reader(request(path, { out: spent })) as unknown as Record<symbol, unknown>;
  t.ok(transferableSymbol in result && valueSymbol in result, 'marked movable for piscina');
  const reply = result[valueSymbol] as ChunksReply;
  t.same([reply.type, reply.chunks, reply.rows, reply.cols], ['chunks', 2, 2, L]);
  t.equal(reply.data, spent, 'filled the buffer it was given instead of allocating one');
  const transfer = result[transferableSymbol] as ArrayBuffer[];
  t.same(transfer, [reply.data, reply.spans.buffer], 'chunks and span list are transferred');
  t.same(chunksOf(reply), expectedChunks(path));
  const small = moved(reader(request(path, { out: new ArrayBuffer(4), reserveChunks: 5 })));
  t.equal(small.data.byteLength, 5 * 2 * L * 2, 'a buffer too small is replaced by one with room for reserveChunks');
  t.same(chunksOf(small), expectedChunks(path));
});

t.test('chunks come in the corpus dtype, uint16 or uint32', async (t) => {
  for (const dtype of ['uint16', 'uint32'] as const) {
    const path = await corpusIn(t, dtype);
    const reply = moved(reader(request(path)));
    t.equal(reply.dtype, dtype);
    t.same(chunksOf(reply), expectedChunks(path), dtype);
  }
});

t.test('a corpus replaced at the same path (re-ingest) is read afresh', async (t) => {
  const path = join(t.testdir(), 'replaced');
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 } });
  t.equal(moved(reader(request(path))).dtype, 'uint16');
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 }, tokenDtype: 'uint32' });
  const reply = moved(reader(request(path)));
  t.equal(reply.dtype, 'uint32', 'not the cached handle of the deleted store');
  t.same(chunksOf(reply), expectedChunks(path));
});

t.test('errors come back as data with a clear message', async (t) => {
  const path = await corpusIn(t);
  const err = (r: unknown) => (r as ReaderReply).type === 'error' ? (r as { message: string }).message : 'no error';
  t.match(err(reader(request(join(path, 'nope')))), /no corpus at .*nope/);
  t.match(err(reader(request(path, { shards: Uint32Array.from([4, 0, 9]) }))), /shard train\/00000009 is missing/);
  t.match(err(reader(request(path, { spans: Uint32Array.from([0, 60, 1, 0, 0, 0, 2, 0]) }))), /token 60 of train shard 4 runs past its end \(100 tokens\)/);
  t.match(err(reader(request(path, { chunks: 3 }))), /3 chunks of 2 rows but 4 spans listed/);
  t.match(err(reader(request(path, { rows: 0 }))), /bad rows 0/);
  t.match(err(reader(request(path, { spanTokens: 1 }))), /bad spanTokens 1/);
  t.match(err(reader(request(path, { spans: Uint32Array.from([7, 0, 1, 0, 0, 0, 2, 0]) }))), /slot 7 of 3/);
  t.match(err(reader({ type: 'bogus' } as unknown as ReadSpansRequest)), /unknown request type "bogus"/);
});

t.test('through the pool: buffers move both ways and the chunks arrive intact', async (t) => {
  const path = await corpusIn(t);
  const pool = createReaderPool(1);
  t.teardown(() => pool.destroy());
  const out = new ArrayBuffer(4 * L * 2);
  const req = request(path, { out });
  const reply = await pool.read(req);
  t.equal(out.byteLength, 0, 'the spent buffer was transferred to the worker (detached here), not cloned');
  t.equal(req.spans.byteLength, 0, 'so was the span list');
  t.equal(reply.data.byteLength, 4 * L * 2, 'the same buffer came back');
  t.equal(reply.spans.length, 8, 'and the span list, for reuse');
  t.same(chunksOf(reply), expectedChunks(path));
});

t.test('through the pool: a bad corpus path rejects with a clear error, not a hang', async (t) => {
  const pool = createReaderPool(2);
  t.teardown(() => pool.destroy());
  await t.rejects(pool.read(request('/nonexistent/corpus')), { name: 'ReaderError', message: /no corpus at \/nonexistent\/corpus/ });
  await pool.destroy();
  await t.rejects(pool.read(request('/nonexistent/corpus')), /destroyed/);
  const threads = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker');
  t.same(threads, [], 'destroyed pools leave no worker or port handle behind: the process can exit');
  t.throws(() => createReaderPool(0), /threads must be >= 1/);
});
