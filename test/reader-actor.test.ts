import t from 'tap';
import { join } from 'node:path';
import { transferableSymbol, valueSymbol } from 'piscina';
import reader from '../actors/reader.js';
import type { ReadWindowsRequest, ReaderReply, WindowsReply } from '../actors/reader-messages.js';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { Corpus } from '../src/corpus/store.js';
import { createReaderPool } from '../src/data/reader-pool.js';

const T = 16;
let corpora = 0;
const corpusIn = async (t: { testdir(): string }, tokenDtype: 'uint16' | 'uint32' = 'uint16') => {
  const path = join(t.testdir(), `corpus-${corpora++}`);
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 }, tokenDtype });
  return path;
};

/** Rows from shards 4, 0, 4, 1 (shard 4 is the short last one, 100 tokens): the task lists shard 4 once. */
const request = (corpusPath: string, over: Partial<ReadWindowsRequest> = {}): ReadWindowsRequest => ({
  type: 'read',
  corpusPath,
  split: 'train',
  window: T,
  format: 'int32',
  shards: Uint32Array.from([4, 0, 1]),
  windows: Uint32Array.from([0, 64, 1, 0, 0, 0, 2, 1008 - T]),
  rows: 4,
  rowsPerOutput: 4,
  ...over,
});
const expectedRows = (path: string): number[][] => {
  const c = Corpus.open(path);
  const at = (s: number, o: number) => Array.from(c.shard('train', s).subarray(o, o + T + 1));
  const rows = [at(4, 64), at(0, 0), at(4, 0), at(1, 1008 - T)];
  c.close();
  return rows;
};
const rowsOf = (r: WindowsReply): number[][] =>
  Array.from({ length: r.rows }, (_, i) => {
    const buffer = r.data[Math.floor(i / r.rowsPerOutput)];
    const view = r.dtype === 'int32' ? new Int32Array(buffer) : r.dtype === 'uint16' ? new Uint16Array(buffer) : new Uint32Array(buffer);
    const row = i % r.rowsPerOutput;
    return Array.from(view.subarray(row * r.cols, (row + 1) * r.cols));
  });

t.test('the worker handler returns the rows as a moved reply (transfer list), not a clone', async (t) => {
  const path = await corpusIn(t);
  const out = [new ArrayBuffer(3 * (T + 1) * 4 + 64), new ArrayBuffer(4)];
  const result = reader(request(path, { out, rowsPerOutput: 3 })) as unknown as Record<symbol, unknown>;
  t.ok(transferableSymbol in result && valueSymbol in result, 'marked movable for piscina');
  const reply = result[valueSymbol] as WindowsReply;
  t.equal(reply.type, 'windows');
  t.equal(reply.data.length, 2, 'rows 0-2 in one buffer, row 3 in another');
  t.equal(reply.data[0], out[0], 'filled the buffer it was given instead of allocating one');
  t.not(reply.data[1], out[1], 'but not one that is too small');
  t.equal(reply.data[1].byteLength, (T + 1) * 4);
  const transfer = result[transferableSymbol] as ArrayBuffer[];
  t.ok(
    reply.data.every((b) => transfer.includes(b)) && transfer.includes(reply.windows.buffer as ArrayBuffer),
    'rows and window list are transferred',
  );
  t.same(rowsOf(reply), expectedRows(path));
});

t.test('the tokens format delivers the corpus dtype, uint16 or uint32', async (t) => {
  for (const dtype of ['uint16', 'uint32'] as const) {
    const path = await corpusIn(t, dtype);
    const reply = (reader(request(path, { format: 'tokens' })) as unknown as Record<symbol, WindowsReply>)[valueSymbol];
    t.equal(reply.dtype, dtype);
    t.same(rowsOf(reply), expectedRows(path), dtype);
  }
});

t.test('a corpus replaced at the same path (re-ingest) is read afresh', async (t) => {
  const path = join(t.testdir(), 'replaced');
  const tokensOf = async () => (reader(request(path, { format: 'tokens' })) as unknown as Record<symbol, WindowsReply>)[valueSymbol];
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 } });
  t.equal((await tokensOf()).dtype, 'uint16');
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4 * 1024 + 100, validation: 2048 }, tokenDtype: 'uint32' });
  const reply = await tokensOf();
  t.equal(reply.dtype, 'uint32', 'not the cached handle of the deleted store');
  t.same(rowsOf(reply), expectedRows(path));
});

t.test('errors come back as data with a clear message', async (t) => {
  const path = await corpusIn(t);
  const err = (r: unknown) => (r as ReaderReply).type === 'error' ? (r as { message: string }).message : 'no error';
  t.match(err(reader(request(join(path, 'nope')))), /no corpus at .*nope/);
  t.match(err(reader(request(path, { shards: Uint32Array.from([4, 0, 9]) }))), /shard train\/00000009 is missing/);
  t.match(err(reader(request(path, { windows: Uint32Array.from([0, 90, 1, 0, 0, 0, 2, 0]) }))), /token 90 of train shard 4 runs past its end \(100 tokens\)/);
  t.match(err(reader(request(path, { rows: 5 }))), /5 rows but 4 windows/);
  t.match(err(reader(request(path, { rowsPerOutput: 0 }))), /bad rowsPerOutput 0/);
  t.match(err(reader(request(path, { windows: Uint32Array.from([7, 0, 1, 0, 0, 0, 2, 0]) }))), /slot 7 of 3/);
  t.match(err(reader({ type: 'bogus' } as unknown as ReadWindowsRequest)), /unknown request type "bogus"/);
});

t.test('through the pool: buffers move both ways and the rows arrive intact', async (t) => {
  const path = await corpusIn(t);
  const pool = createReaderPool(1);
  t.teardown(() => pool.destroy());
  const out = [new ArrayBuffer(2 * (T + 1) * 4), new ArrayBuffer(2 * (T + 1) * 4)];
  const req = request(path, { out, rowsPerOutput: 2 });
  const reply = await pool.read(req);
  t.same(out.map((b) => b.byteLength), [0, 0], 'the spent buffers were transferred to the worker (detached here), not cloned');
  t.equal(req.windows.byteLength, 0, 'so was the window list');
  t.same(reply.data.map((b) => b.byteLength), [2 * (T + 1) * 4, 2 * (T + 1) * 4], 'the same buffers came back');
  t.equal(reply.windows.length, 8, 'and the window list, for reuse');
  t.same(rowsOf(reply), expectedRows(path));
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
