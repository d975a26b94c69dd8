/**
 * Reader throughput: how fast the reader pool turns corpus shards into training batches, against the ceiling (raw
 * `getBinaryFast` reads of the same shards) and against what training consumes.
 *
 *   npm run build && node dist/bench/reader.js            # or: benchReader({ trainingTokensPerSecond: 5e4 })
 *
 * One run measures, on a synthetic corpus of >= 200 MB of tokens (built once in the temp dir, then reused):
 *  - raw: getBinaryFast over every training shard on the main thread (GB/s of shard bytes): the ceiling;
 *  - stream: the product path (openBatchStream: int32 batches, each in its own moved buffer) with 1 and 2 threads,
 *    tasks of one shuffle block, spent batches recycled; then without recycling, and at the default prefetch;
 *  - pool: bare reader tasks filling one buffer per task, in the corpus dtype and in int32, with and without buffer
 *    reuse: what the dtype widening, the per-batch buffers and fresh allocation each cost;
 *  - the stream and the pool again with long windows (T = 512): how much of the cost is per window.
 * "Token bytes" are delivered tokens (T+1 a window) times the corpus' bytes per token, comparable with the ceiling.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WindowsReply } from '../actors/reader-messages.js';
import { Corpus, bytesPerToken, readCorpusMeta } from '../src/corpus/store.js';
import { openBatchStream } from '../src/data/batches.js';
import { DataOrder, type WindowPlan } from '../src/data/order.js';
import { type ShardLayout, partitionShards, shardLayout } from '../src/data/partition.js';
import { createReaderPool } from '../src/data/reader-pool.js';
import type { WindowFormat } from '../src/data/windows.js';
import { writeSyntheticCorpus } from './synthetic-corpus.js';

export interface ReaderBenchOptions {
  /** Corpus to read; built there if missing (default: codistill-bench-reader in the temp dir). */
  corpusPath?: string;
  /** Training tokens of the synthetic corpus (default 110e6: 220 MB at 2 bytes a token). */
  tokens?: number;
  shardTokens?: number;
  /** T and B of the batches (defaults: the config defaults, 32 and 32). */
  window?: number;
  batch?: number;
  /** What training consumes, for the headroom ratio (default 20000: a measured wasm LSTM figure). */
  trainingTokensPerSecond?: number;
  /** Seconds per measurement (default 1.5). */
  seconds?: number;
  /** T of the long-window rows (default 512; 0 leaves them out). */
  longWindow?: number;
  log?: (line: string) => void;
}

type Result = Record<string, number | string>;

/** Windows delivered in `ms` of steady state. */
interface Rate {
  windows: number;
  ms: number;
}

const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));

async function ensureCorpus(path: string, tokens: number, shardTokens: number): Promise<void> {
  if (existsSync(path)) {
    const meta = readCorpusMeta(path);
    if (meta.splits.train.tokens === tokens && meta.shardTokens === shardTokens) return;
  }
  await writeSyntheticCorpus(path, { shardTokens, tokens: { train: tokens, validation: shardTokens } });
}

/** Passes of getBinaryFast over every training shard after a warm-up pass (GB/s of shard bytes). */
function rawRead(path: string, seconds: number): number {
  const corpus = Corpus.open(path);
  try {
    const shards = corpus.shardCount('train');
    const pass = (): number => {
      let bytes = 0;
      let touch = 0;
      for (let s = 0; s < shards; s++) {
        const b = corpus.shardBytesFast('train', s);
        bytes += b.byteLength;
        touch += b[b.byteLength - 1]; // use the bytes, so that nothing is optimised away
      }
      return bytes + (touch & 0);
    };
    pass();
    let bytes = 0;
    const start = performance.now();
    do bytes += pass();
    while (performance.now() - start < seconds * 1000);
    return bytes / ((performance.now() - start) * 1e6);
  } finally {
    corpus.close();
  }
}

interface StreamRun {
  threads: number;
  window: number;
  batch: number;
  prefetch: number;
  batchesPerTask: number;
  recycle: boolean;
  seconds: number;
}

/** Pulls batches from the product path for `seconds` after a warm-up. */
async function streamRead(corpusPath: string, o: StreamRun): Promise<Rate> {
  const { threads, window, batch, prefetch, batchesPerTask } = o;
  const stream = openBatchStream({
    corpusPath, group: 0, groups: 1, sameData: false, seed: 1, window, batch, threads, prefetch, batchesPerTask,
  });
  try {
    let windows = 0;
    let check = 0;
    let start = 0;
    for (let i = 0; start === 0 || performance.now() - start < o.seconds * 1000; i++) {
      if (i === 2 * prefetch) start = performance.now(); // after the pool has started and the JIT has warmed up
      const b = await stream.next();
      if (start > 0) windows += b.rows;
      check += b.data[b.data.length - 1];
      if (o.recycle) stream.recycle(b);
    }
    return { windows: windows + (check & 0), ms: performance.now() - start };
  } finally {
    await stream.close();
  }
}

interface PoolRun {
  threads: number;
  order: DataOrder;
  format: WindowFormat;
  batchesPerTask: number;
  recycle: boolean;
  seconds: number;
}

/** Keeps two tasks per thread in flight on a bare pool, each filling one buffer, for `seconds` after a warm-up. */
async function poolRead(corpusPath: string, o: PoolRun): Promise<Rate> {
  const { order, batchesPerTask } = o;
  const pool = createReaderPool(o.threads);
  try {
    const planner = order.planner();
    const spare: { out: ArrayBuffer[]; windows: Uint32Array }[] = [];
    const issue = (): Promise<WindowsReply> => {
      const reuse = o.recycle ? spare.pop() : undefined;
      const plan: WindowPlan = {
        shards: [], windows: reuse?.windows ?? new Uint32Array(2 * batchesPerTask * order.batch), rows: 0,
      };
      planner.plan(batchesPerTask, plan);
      return pool.read({
        type: 'read', corpusPath, split: 'train', window: order.window, format: o.format,
        shards: Uint32Array.from(plan.shards), windows: plan.windows, rows: plan.rows, rowsPerOutput: plan.rows,
        out: reuse?.out,
      });
    };
    const depth = 2 * o.threads;
    const inFlight = Array.from({ length: depth }, issue);
    let windows = 0;
    let start = 0;
    for (let task = 0; start === 0 || performance.now() - start < o.seconds * 1000; task++) {
      const reply = await inFlight.shift()!;
      if (task === depth) start = performance.now(); // the first round was warm-up
      else if (task > depth) windows += reply.rows;
      spare.push({ out: reply.data, windows: reply.windows });
      inFlight.push(issue());
    }
    const ms = performance.now() - start;
    await Promise.allSettled(inFlight);
    return { windows, ms };
  } finally {
    await pool.destroy();
  }
}

/** Batches in one shuffle block: a task of that size reads each of its shards once for all of their windows. */
function blockBatches(layout: ShardLayout, window: number, batch: number): { order: DataOrder; batches: number } {
  const shards = partitionShards(layout, { groups: 1, sameData: false })[0];
  const order = new DataOrder({ layout, shards, window, batch, seed: 1, group: 0 });
  return { order, batches: Math.max(1, Math.round((order.shuffleShards * order.fullShardWindows) / batch)) };
}

export async function benchReader(opts: ReaderBenchOptions = {}): Promise<Result> {
  const corpusPath = opts.corpusPath ?? join(tmpdir(), 'codistill-bench-reader');
  const tokens = opts.tokens ?? 110e6;
  const shardTokens = opts.shardTokens ?? 65536;
  const window = opts.window ?? 32;
  const batch = opts.batch ?? 32;
  const training = opts.trainingTokensPerSecond ?? 20000;
  const seconds = opts.seconds ?? 1.5;
  const longWindow = opts.longWindow ?? 512;
  const log = opts.log ?? (() => undefined);

  const setup = performance.now();
  await ensureCorpus(corpusPath, tokens, shardTokens);
  const meta = readCorpusMeta(corpusPath);
  const width = bytesPerToken(meta.tokenDtype);
  const layout = shardLayout(meta, 'train');
  const { order, batches: task } = blockBatches(layout, window, batch);
  const result: Result = {
    corpus: corpusPath,
    corpusMB: round((meta.splits.train.tokens * width) / 1e6),
    tokenDtype: meta.tokenDtype,
    shardTokens,
    window,
    batch,
    batchesPerTask: task,
    trainingTokensPerSecond: training,
    setupSeconds: round((performance.now() - setup) / 1000),
  };
  log(`corpus: ${result.corpusMB} MB of ${meta.tokenDtype} tokens at ${corpusPath}`);

  const raw = rawRead(corpusPath, seconds);
  result.rawGBps = round(raw);
  log(`raw getBinaryFast: ${result.rawGBps} GB/s`);

  const record = (name: string, rate: Rate, T: number): void => {
    const tokensPerSecond = (rate.windows * (T + 1)) / (rate.ms / 1000);
    const gbps = (tokensPerSecond * width) / 1e9;
    Object.assign(result, {
      [`${name}.windowsPerSecond`]: round(rate.windows / (rate.ms / 1000)),
      [`${name}.tokensPerSecond`]: round(tokensPerSecond),
      [`${name}.tokenGBps`]: round(gbps),
      [`${name}.ofRaw`]: round(gbps / raw),
      [`${name}.ofTraining`]: round(tokensPerSecond / training),
    });
    log(`${name}: ${round(gbps)} GB/s of token bytes = ${round(gbps / raw)} of raw; ` +
      `${round(tokensPerSecond)} tokens/s = ${round(tokensPerSecond / training)}x training`);
  };

  const stream = { window, batch, prefetch: 2 * task, batchesPerTask: task, recycle: true, seconds };
  for (const threads of [1, 2]) record(`stream.${threads}t`, await streamRead(corpusPath, { ...stream, threads }), window);
  record('stream.1t.noRecycle', await streamRead(corpusPath, { ...stream, threads: 1, recycle: false }), window);
  const defaults = { ...stream, threads: 1, prefetch: 4, batchesPerTask: 2 };
  record('stream.1t.defaultPrefetch', await streamRead(corpusPath, defaults), window);

  const pool = { order, batchesPerTask: task, recycle: true, seconds };
  for (const threads of [1, 2]) {
    for (const format of ['tokens', 'int32'] as const) {
      record(`pool.${format}.${threads}t`, await poolRead(corpusPath, { ...pool, threads, format }), window);
    }
  }
  record('pool.int32.1t.freshBuffers', await poolRead(corpusPath, { ...pool, threads: 1, format: 'int32', recycle: false }), window);

  if (longWindow > 0) {
    const long = blockBatches(layout, longWindow, batch);
    const longStream = { ...stream, threads: 1, window: longWindow, prefetch: 2 * long.batches, batchesPerTask: long.batches };
    record(`stream.1t.window${longWindow}`, await streamRead(corpusPath, longStream), longWindow);
    const longPool = { ...pool, threads: 1, order: long.order, batchesPerTask: long.batches, format: 'tokens' as const };
    record(`pool.tokens.1t.window${longWindow}`, await poolRead(corpusPath, longPool), longWindow);
  }
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await benchReader({ log: (line) => console.error(line) });
  console.log(JSON.stringify(result, null, 2));
}
