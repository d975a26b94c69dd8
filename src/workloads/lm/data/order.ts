/**
 * The data order of one group: which windows it trains on, in which order, epoch after epoch.
 *
 * The unit of the order is a span: M consecutive windows of one shard, M*T+1 contiguous tokens, the row of M
 * consecutive batches. (The reader copies the region of each shard that a task's spans lie in, in one piece.)
 *
 * An epoch permutes the group's shards (seeded by seed, group, epoch) and cuts that list into ceil(n / shuffleShards)
 * shuffle blocks whose sizes differ by at most one. Each shard of a block is cut into whole spans from a random
 * phase (in whole windows); the block's spans are permuted together (seeded by seed, group, epoch, block) and dealt B
 * at a time into chunks. Chunk c holds B spans, its rows; batch k < M of the chunk is window k of each of them, and
 * batch i of an epoch is batch i mod M of chunk floor(i / M). So:
 *  - a batch mixes B places from up to `shuffleShards` unrelated shards, and for M batches row r continues row r of
 *    the batch before (what truncated back-propagation through time with a carried state wants);
 *  - a reader task is one block: it reads each of the block's shards once, and nearly all it copies is delivered;
 *  - every window of the group's shards comes at most once per epoch. Dropped are the windows of a shard before its
 *    phase and after its last whole span (fewer than M a shard) and the spans of a block past its last whole chunk
 *    (fewer than B a block), a different set each epoch; `droppedWindows` counts them and the automatic M
 *    (`spanWindows` 0) keeps them few (under 0.2% at the default T = 32, B = 32, 64Ki-token shards);
 *  - memory is one shard permutation (4 bytes per shard of the group) and one block of span ids: nothing is ever
 *    materialised over all windows, so a 6e11-token corpus needs no change.
 * The split's last shard, the one that may be short, always sits at the end of the last block, so that every epoch
 * has the same chunks in every block (chunk positions are O(1) arithmetic) and the same number of batches.
 *
 * A DataCursor { epoch, batch } names the next batch. Positioning at a cursor costs O(shards of the group) (one shard
 * permutation and one block) and gives exactly the batches an uninterrupted stream would have given from there.
 */
import { type CorpusMeta, type Split, readCorpusMeta } from '../corpus/store.js';
import { Random, deriveSeed } from '../../../util/random.js';
import { type ShardLayout, type ShardSet, partitionShards, shardLayout, tokensInShard } from './partition.js';
import { windowsInShard } from './windows.js';

/** The position of the next batch of a group's stream: plain JSON, saved in checkpoints. */
export interface DataCursor {
  epoch: number;
  batch: number;
}

/** Shards per shuffle block unless told otherwise: 16 shards of 64Ki tokens mix spans from 1Mi tokens. */
export const SHUFFLE_SHARDS = 16;

/**
 * The automatic M makes spans of at least this many tokens (and at most twice as many). It was chosen when the reader
 * copied span by span, which cost more per byte for shorter spans (35 GB/s at 1025 uint16 tokens, 2 GB/s at 33); the
 * reader now copies one region a shard whatever the spans, so M only sets how many consecutive batches continue the
 * same rows (what model.carryState wants) and how many windows a shard drops (fewer than M). It stays, so that data
 * orders, and the runs and checkpoints made with them, stay as they were.
 */
export const MIN_SPAN_TOKENS = 1024;

// Labels that keep the shard permutation and the block permutations independent streams of randomness.
const SHARD_ORDER = 1;
const BLOCK_ORDER = 2;

export class OrderError extends Error {
  override name = 'OrderError';
}

export interface OrderOptions {
  layout: ShardLayout;
  /** The group's shards (partitionShards). */
  shards: ShardSet;
  /** T: a window is T+1 tokens. */
  window: number;
  /** B: windows per batch, spans per chunk. */
  batch: number;
  seed: number;
  group: number;
  shuffleShards?: number;
  /** M: windows per span; 0 or absent: the M that drops the fewest windows (see MIN_SPAN_TOKENS). */
  spanWindows?: number;
}

/** Where one reader task sits in the stream: chunks firstChunk .. firstChunk + chunks - 1 of an epoch, one block. */
export interface TaskPosition {
  epoch: number;
  block: number;
  /** Index of the task's first chunk in the epoch. */
  firstChunk: number;
  chunks: number;
  /** Batches of the first chunk before the cursor (a resume inside a chunk): they are not delivered again. */
  skip: number;
}

/** One reader task: its position and what to read. */
export interface BlockTask extends TaskPosition {
  /** The block's shard ids (a copy: small to send); a span names its shard by index into this table. */
  shards: Uint32Array;
  /** Two entries per span, chunk-major (chunk c, row r at 2 * (c * B + r)): index into `shards`, first token. */
  spans: Uint32Array;
}

/** Chunks per block for one M; blocks 0 .. count-2 hold `small` or `small` + 1 shards. */
interface Geometry {
  spanWindows: number;
  /** Spans of a full shard. */
  fullSpans: number;
  count: number;
  small: number;
  chunksSmall: number;
  chunksBig: number;
  chunksLast: number;
  chunks: number;
  /** The most chunks of any block. */
  maxChunks: number;
}

export class DataOrder {
  readonly layout: ShardLayout;
  readonly shards: ShardSet;
  readonly window: number;
  readonly batch: number;
  readonly seed: number;
  readonly group: number;
  readonly shuffleShards: number;
  /** M: windows per span (and batches per chunk). */
  readonly spanWindows: number;
  /** M*T+1: tokens per span, the row length of a chunk. */
  readonly spanTokens: number;
  /** Windows in a full shard. */
  readonly fullShardWindows: number;
  readonly chunksPerEpoch: number;
  readonly batchesPerEpoch: number;
  /** Windows delivered per epoch (B * batchesPerEpoch). */
  readonly windowsPerEpoch: number;
  /** Windows of the group's shards that an epoch leaves out (see the header). */
  readonly droppedWindows: number;
  private readonly geometry: Geometry;
  /** The split's short last shard is in the group: it stays at the end of the epoch's shard order. */
  private readonly shortLast: boolean;
  // Scratch of planBlock: span ids of one block, and the phase of each of its shards.
  private readonly ids: Uint32Array;
  private readonly phases: Uint32Array;

  constructor(o: OrderOptions) {
    this.layout = o.layout;
    this.shards = o.shards;
    this.window = o.window;
    this.batch = o.batch;
    this.seed = o.seed;
    this.group = o.group;
    this.shuffleShards = o.shuffleShards ?? SHUFFLE_SHARDS;
    const m = o.spanWindows ?? 0;
    for (const [name, v] of [['window', o.window], ['batch', o.batch], ['shuffleShards', this.shuffleShards]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OrderError(`${name} must be a positive integer, got ${v}`);
    }
    if (!Number.isInteger(m) || m < 0) throw new OrderError(`spanWindows must be 0 (automatic) or positive, got ${m}`);
    this.fullShardWindows = windowsInShard(o.layout.shardTokens, o.window);
    if (this.fullShardWindows === 0) {
      throw new OrderError(`a window of ${o.window}+1 tokens does not fit in a shard of ${o.layout.shardTokens} tokens`);
    }
    const n = o.shards.count;
    this.shortLast = n > 0 && tokensInShard(o.layout, o.shards.at(n - 1)) < o.layout.shardTokens;
    this.geometry = m > 0 ? this.geometryFor(m) : this.bestGeometry();
    const g = this.geometry;
    if (g.chunks === 0) {
      throw new OrderError(
        `group ${o.group} has no chunk of ${o.batch} spans of ${g.spanWindows} windows of ${o.window}+1 tokens in ` +
          `its ${n} shard(s): use a smaller batch, window or reader.spanWindows, fewer groups, or a larger corpus`,
      );
    }
    this.spanWindows = g.spanWindows;
    this.spanTokens = g.spanWindows * o.window + 1;
    this.chunksPerEpoch = g.chunks;
    this.batchesPerEpoch = g.chunks * g.spanWindows;
    this.windowsPerEpoch = this.batchesPerEpoch * o.batch;
    const last = n > 0 ? this.windowsIn(o.shards.at(n - 1)) : 0;
    this.droppedWindows = (n - 1) * this.fullShardWindows + last - this.windowsPerEpoch;
    const maxSpans = Math.ceil(n / g.count) * g.fullSpans;
    if (maxSpans >= 2 ** 32) throw new OrderError(`a shuffle block holds ${maxSpans} spans: use fewer shuffleShards`);
    this.ids = new Uint32Array(maxSpans);
    this.phases = new Uint32Array(Math.ceil(n / g.count));
  }

  /** Windows in one shard of the split. */
  windowsIn(shard: number): number {
    return windowsInShard(tokensInShard(this.layout, shard), this.window);
  }

  /** The epoch's shards in reading order: the group's shards permuted, the split's short last shard kept last. */
  shardOrder(epoch: number): Uint32Array {
    const order = new Uint32Array(this.shards.count);
    for (let i = 0; i < order.length; i++) order[i] = this.shards.at(i);
    const permuted = this.shortLast ? order.subarray(0, order.length - 1) : order;
    new Random(deriveSeed(this.seed, this.group, epoch, SHARD_ORDER)).shuffle(permuted);
    return order;
  }

  /** Blocks in an epoch. */
  get blockCount(): number {
    return this.geometry.count;
  }

  /** The most chunks a block (hence a reader task) holds. */
  get maxBlockChunks(): number {
    return this.geometry.maxChunks;
  }

  /** The most shards a block holds. */
  get maxBlockShards(): number {
    return Math.ceil(this.shards.count / this.geometry.count);
  }

  /**
   * Bytes of the buffer that holds any one reader task of this order (reader-messages.ts, ChunksReply): its row table
   * and the shard regions its spans lie in, at most one shard of tokens per shard of the block.
   */
  taskBytes(bytesPerToken: number): number {
    const rows = this.batch * this.maxBlockChunks;
    return rows * Uint32Array.BYTES_PER_ELEMENT + this.maxBlockShards * this.layout.shardTokens * bytesPerToken;
  }

  /** Position in the epoch's shard order of block `block`'s first shard (block = blockCount: the end). */
  blockStart(block: number): number {
    return Math.floor((block * this.shards.count) / this.geometry.count);
  }

  /** The shards of block `block` of an epoch's shard order (a copy). */
  blockShards(order: Uint32Array, block: number): Uint32Array {
    return order.slice(this.blockStart(block), this.blockStart(block + 1));
  }

  /** Index of block `block`'s first chunk in an epoch (block = blockCount: chunksPerEpoch). O(1). */
  chunkStart(block: number): number {
    const g = this.geometry;
    if (block >= g.count) return g.chunks;
    // Blocks 0 .. block-1 hold blockStart(block) shards, `small` or `small` + 1 each: count the bigger ones.
    const big = this.blockStart(block) - block * g.small;
    return (block - big) * g.chunksSmall + big * g.chunksBig;
  }

  /** The block that holds chunk `chunk` of an epoch (binary search over chunkStart). */
  blockOfChunk(chunk: number): number {
    let lo = 0;
    let hi = this.geometry.count - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.chunkStart(mid) <= chunk) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Writes the spans of chunks `from` .. end of block `block` into `spans` (2 entries a span, chunk-major; it must
   * hold them) and returns how many chunks that is.
   */
  planBlock(epoch: number, order: Uint32Array, block: number, from: number, spans: Uint32Array): number {
    const { spanWindows: m, fullSpans } = this.geometry;
    const first = this.blockStart(block);
    const size = this.blockStart(block + 1) - first;
    const rng = new Random(deriveSeed(this.seed, this.group, epoch, BLOCK_ORDER, block));
    let n = 0;
    for (let l = 0; l < size; l++) {
      const windows = this.windowsIn(order[first + l]);
      const count = Math.floor(windows / m);
      // A random phase: which of the shard's windows its whole spans leave out changes every epoch.
      this.phases[l] = rng.int(windows - count * m + 1);
      for (let s = 0; s < count; s++) this.ids[n++] = l * fullSpans + s;
    }
    rng.shuffle(this.ids.subarray(0, n));
    const chunks = this.chunkStart(block + 1) - this.chunkStart(block);
    const B = this.batch;
    for (let i = from * B, j = 0; i < chunks * B; i++, j += 2) {
      const id = this.ids[i];
      const l = Math.floor(id / fullSpans);
      spans[j] = l;
      spans[j + 1] = (this.phases[l] + (id - l * fullSpans) * m) * this.window;
    }
    return chunks - from;
  }

  /** Every delivered window of an epoch in batch order (batch i, row r is the (i*B + r)-th): for tests and tools. */
  *epochWindows(epoch: number): Generator<{ shard: number; offset: number }> {
    const order = this.shardOrder(epoch);
    const { batch: B, spanWindows: m, window: T } = this;
    for (let b = 0; b < this.blockCount; b++) {
      const shards = this.blockShards(order, b);
      const spans = new Uint32Array(2 * B * (this.chunkStart(b + 1) - this.chunkStart(b)));
      const chunks = this.planBlock(epoch, order, b, 0, spans);
      for (let c = 0; c < chunks; c++) {
        for (let k = 0; k < m; k++) {
          for (let r = 0; r < B; r++) {
            const j = 2 * (c * B + r);
            yield { shard: shards[spans[j]], offset: spans[j + 1] + k * T };
          }
        }
      }
    }
  }

  /** A planner positioned at `cursor` (default: the very start). */
  planner(cursor: DataCursor = { epoch: 0, batch: 0 }): SpanPlanner {
    return new SpanPlanner(this, cursor);
  }

  /** Block sizes and chunk counts for span length m: O(1), so that the automatic M can try many. */
  private geometryFor(m: number): Geometry {
    const n = this.shards.count;
    const B = this.batch;
    const count = Math.max(1, Math.ceil(n / this.shuffleShards));
    const small = Math.floor(n / count);
    const fullSpans = Math.floor(this.fullShardWindows / m);
    const chunksSmall = Math.floor((small * fullSpans) / B);
    const chunksBig = Math.floor(((small + 1) * fullSpans) / B);
    const lastSize = n - Math.floor(((count - 1) * n) / count);
    const lastSpans = n === 0 ? 0 : (lastSize - 1) * fullSpans + Math.floor(this.windowsIn(this.shards.at(n - 1)) / m);
    const chunksLast = Math.floor(lastSpans / B);
    const bigBefore = n - lastSize - (count - 1) * small;
    const smallBefore = count - 1 - bigBefore;
    const chunks = smallBefore * chunksSmall + bigBefore * chunksBig + chunksLast;
    const maxChunks = Math.max(chunksLast, bigBefore > 0 ? chunksBig : 0, smallBefore > 0 ? chunksSmall : 0);
    return { spanWindows: m, fullSpans, count, small, chunksSmall, chunksBig, chunksLast, chunks, maxChunks };
  }

  /**
   * The automatic M: spans of MIN_SPAN_TOKENS to twice that (see there), and among those the M that delivers the
   * most windows (the smallest on a tie). Only when none of them fills a chunk are shorter spans tried.
   */
  private bestGeometry(): Geometry {
    const w = this.fullShardWindows;
    const lo = Math.min(w, Math.ceil(MIN_SPAN_TOKENS / this.window));
    let best = this.geometryFor(lo);
    const consider = (m: number): void => {
      const g = this.geometryFor(m);
      if (g.chunks * m > best.chunks * best.spanWindows) best = g;
    };
    for (let m = lo + 1; m <= Math.min(w, 2 * lo); m++) consider(m);
    for (let m = lo - 1; best.chunks === 0 && m >= 1; m--) consider(m);
    return best;
  }
}

/** Walks a group's endless sequence of batches one reader task (the rest of a block) at a time. */
export class SpanPlanner {
  private epoch = 0;
  private chunk = 0;
  /** Batches of the next task's first chunk to leave out (a cursor inside a chunk). */
  private skipBatches = 0;
  /** The shard permutation of epoch `orderEpoch`, made when a task of that epoch is first planned (`next`). */
  private order: Uint32Array | undefined;
  private orderEpoch = -1;

  constructor(
    private readonly o: DataOrder,
    cursor: DataCursor,
  ) {
    const { epoch, batch } = checkCursor(cursor, o.batchesPerEpoch);
    this.epoch = epoch;
    this.chunk = Math.floor(batch / o.spanWindows);
    this.skipBatches = batch % o.spanWindows;
  }

  /** The position of the next batch not yet planned. */
  get cursor(): DataCursor {
    return { epoch: this.epoch, batch: this.chunk * this.o.spanWindows + this.skipBatches };
  }

  /** Chunks of the next task. */
  get nextChunks(): number {
    return this.o.chunkStart(this.o.blockOfChunk(this.chunk) + 1) - this.chunk;
  }

  /** The next task: the chunks from the cursor to the end of its block. `spans` is used if it is large enough. */
  next(spans?: Uint32Array): BlockTask {
    const o = this.o;
    const at = this.stepOver();
    if (at.epoch !== this.orderEpoch || !this.order) {
      this.order = o.shardOrder(at.epoch);
      this.orderEpoch = at.epoch;
    }
    const epochOrder = this.order;
    // A new list has room for the largest block, so that it can serve every later task.
    const list = spans && spans.length >= 2 * at.chunks * o.batch ? spans : new Uint32Array(2 * o.maxBlockChunks * o.batch);
    o.planBlock(at.epoch, epochOrder, at.block, at.firstChunk - o.chunkStart(at.block), list);
    return { ...at, shards: o.blockShards(epochOrder, at.block), spans: list };
  }

  /**
   * Steps over the next task without planning its spans (O(log blocks), no shard permutation): where it sits and how
   * many chunks it holds, all that a stream needs to budget and check the tasks a reader plans.
   */
  stepOver(): TaskPosition {
    const o = this.o;
    const block = o.blockOfChunk(this.chunk);
    const chunks = o.chunkStart(block + 1) - this.chunk;
    const at: TaskPosition = { epoch: this.epoch, block, firstChunk: this.chunk, chunks, skip: this.skipBatches };
    this.chunk += chunks;
    this.skipBatches = 0;
    if (this.chunk === o.chunksPerEpoch) {
      this.epoch++;
      this.chunk = 0;
    }
    return at;
  }
}

/** One group's data order as a run names it: the corpus, the partition of its shards, and the order's options. */
export interface GroupOrderSpec {
  corpusPath: string;
  split: Split;
  group: number;
  groups: number;
  /** Every group reads all shards (distill.sameData) instead of its own. */
  sameData: boolean;
  window: number;
  batch: number;
  seed: number;
  shuffleShards?: number;
  spanWindows?: number;
}

/**
 * The data order of `spec`'s group, built the same way wherever it is needed (the stream, each reader), from the
 * corpus' metadata (read from `spec.corpusPath` unless the caller has it open already).
 */
export function groupOrder(spec: GroupOrderSpec, meta: CorpusMeta = readCorpusMeta(spec.corpusPath)): DataOrder {
  const layout = shardLayout(meta, spec.split);
  const shards = partitionShards(layout, { groups: spec.groups, sameData: spec.sameData })[spec.group];
  return new DataOrder({
    layout, shards, window: spec.window, batch: spec.batch, seed: spec.seed, group: spec.group,
    shuffleShards: spec.shuffleShards, spanWindows: spec.spanWindows,
  });
}

/** A cursor as a checkpoint stored it, validated; the end of an epoch is the start of the next. */
export function checkCursor(cursor: DataCursor, batchesPerEpoch: number): DataCursor {
  const { epoch, batch } = cursor;
  if (!Number.isSafeInteger(epoch) || epoch < 0 || !Number.isSafeInteger(batch) || batch < 0) {
    throw new OrderError(`bad data cursor ${JSON.stringify(cursor)}: epoch and batch are non-negative integers`);
  }
  if (batch > batchesPerEpoch) {
    throw new OrderError(
      `data cursor ${JSON.stringify(cursor)} is past the end of an epoch (${batchesPerEpoch} batches): ` +
        'it was saved with another corpus, group count, window, batch size or span length',
    );
  }
  return batch === batchesPerEpoch ? { epoch: epoch + 1, batch: 0 } : { epoch, batch };
}
