/**
 * The data order of one group: which windows it trains on, in which order, epoch after epoch.
 *
 * An epoch permutes the group's shards (seeded by seed, group, epoch) and cuts that list into shuffle blocks of
 * `shuffleShards` consecutive shards. The windows of one block are permuted together (seeded by seed, group, epoch,
 * block) and the blocks follow each other. So:
 *  - every window of the group's shards comes exactly once per epoch, and each epoch has a new order;
 *  - a batch mixes windows from up to `shuffleShards` unrelated places of the corpus;
 *  - memory is one shard permutation (4 bytes per shard of the group) plus one block of window ids: nothing is ever
 *    materialised over all windows, so a 6e11-token corpus needs no change;
 *  - a reader that serves many batches of a block reads each of the block's shards once for all of them.
 * Batches are runs of B consecutive windows. The last (windows per epoch mod B) windows of an epoch, fewer than one
 * batch and a different set each epoch, are skipped, so every batch has exactly B rows.
 *
 * A DataCursor { epoch, batch } names the next batch. Positioning at a cursor costs O(shards of the group) (one shard
 * permutation and one block) and gives exactly the batches an uninterrupted stream would have given from there.
 */
import { Random, deriveSeed } from '../util/random.js';
import { type ShardLayout, type ShardSet, tokensInShard } from './partition.js';
import { windowsInShard } from './windows.js';

/** The position of the next batch of a group's stream: plain JSON, saved in checkpoints. */
export interface DataCursor {
  epoch: number;
  batch: number;
}

/** Shards per shuffle block unless told otherwise: 16 shards of 64Ki tokens mix windows from 1Mi tokens. */
export const SHUFFLE_SHARDS = 16;

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
  /** B: windows per batch. */
  batch: number;
  seed: number;
  group: number;
  shuffleShards?: number;
}

/** The windows of some batches as a reader task wants them (see actors/reader-messages.ts). */
export interface WindowPlan {
  /** Shard ids; a window names its shard by index into this table. */
  shards: number[];
  /** Two entries per row, in row order: index into `shards`, first token offset of the window in that shard. */
  windows: Uint32Array;
  /** Rows filled so far. */
  rows: number;
}

/** Which batch of which epoch. */
export interface BatchId {
  epoch: number;
  index: number;
}

export class DataOrder {
  readonly layout: ShardLayout;
  readonly shards: ShardSet;
  readonly window: number;
  readonly batch: number;
  readonly seed: number;
  readonly group: number;
  readonly shuffleShards: number;
  /** Windows in a full shard. */
  readonly fullShardWindows: number;
  /** A window id inside a block is (block position of its shard) << windowBits | (window index in the shard). */
  readonly windowBits: number;
  readonly windowsPerEpoch: number;
  readonly batchesPerEpoch: number;

  constructor(o: OrderOptions) {
    this.layout = o.layout;
    this.shards = o.shards;
    this.window = o.window;
    this.batch = o.batch;
    this.seed = o.seed;
    this.group = o.group;
    this.shuffleShards = o.shuffleShards ?? SHUFFLE_SHARDS;
    for (const [name, v] of [['window', o.window], ['batch', o.batch], ['shuffleShards', this.shuffleShards]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OrderError(`${name} must be a positive integer, got ${v}`);
    }
    this.fullShardWindows = windowsInShard(o.layout.shardTokens, o.window);
    if (this.fullShardWindows === 0) {
      throw new OrderError(`a window of ${o.window}+1 tokens does not fit in a shard of ${o.layout.shardTokens} tokens`);
    }
    this.windowBits = Math.ceil(Math.log2(this.fullShardWindows));
    if (this.windowBits > 31 || this.shuffleShards * 2 ** this.windowBits > 2 ** 32) {
      throw new OrderError(`a shuffle block of ${this.shuffleShards} shards holds too many windows: use fewer shards`);
    }
    // Only the split's last shard can be short, so the group's windows are all full shards but at most one.
    const n = o.shards.count;
    const last = n > 0 ? o.shards.at(n - 1) : 0;
    this.windowsPerEpoch = n === 0 ? 0 : (n - 1) * this.fullShardWindows + this.windowsIn(last);
    this.batchesPerEpoch = Math.floor(this.windowsPerEpoch / o.batch);
    if (this.batchesPerEpoch === 0) {
      throw new OrderError(
        `group ${o.group} has ${this.windowsPerEpoch} windows of ${o.window}+1 tokens in its ${n} shard(s), ` +
          `fewer than one batch of ${o.batch}: use a smaller batch or window, fewer groups, or a larger corpus`,
      );
    }
  }

  /** Windows in one shard of the split. */
  windowsIn(shard: number): number {
    return windowsInShard(tokensInShard(this.layout, shard), this.window);
  }

  /** The epoch's shards in reading order (the group's shard set, permuted). */
  shardOrder(epoch: number): Uint32Array {
    const order = new Uint32Array(this.shards.count);
    for (let i = 0; i < order.length; i++) order[i] = this.shards.at(i);
    return new Random(deriveSeed(this.seed, this.group, epoch, SHARD_ORDER)).shuffle(order);
  }

  /** Blocks in an epoch. */
  blockCount(): number {
    return Math.ceil(this.shards.count / this.shuffleShards);
  }

  /** The shards of block `block` of an epoch's shard order (a view). */
  blockShards(order: Uint32Array, block: number): Uint32Array {
    return order.subarray(block * this.shuffleShards, (block + 1) * this.shuffleShards);
  }

  /** Windows in a block. */
  blockWindows(order: Uint32Array, block: number): number {
    let n = 0;
    for (const shard of this.blockShards(order, block)) n += this.windowsIn(shard);
    return n;
  }

  /**
   * The block's window ids in their permuted order, written into `ids` (which must hold shuffleShards * full shard
   * windows); returns how many. An id is `shards[id >>> windowBits]`, window `id & (2 ** windowBits - 1)`.
   */
  blockOrder(epoch: number, order: Uint32Array, block: number, ids: Uint32Array): number {
    let n = 0;
    const shards = this.blockShards(order, block);
    for (let l = 0; l < shards.length; l++) {
      const base = l * 2 ** this.windowBits;
      const count = this.windowsIn(shards[l]);
      for (let k = 0; k < count; k++) ids[n++] = base + k;
    }
    new Random(deriveSeed(this.seed, this.group, epoch, BLOCK_ORDER, block)).shuffle(ids.subarray(0, n));
    return n;
  }

  /** Every window of an epoch in order, including the tail that batches skip (for tests and tools). */
  *epochWindows(epoch: number): Generator<{ shard: number; offset: number }> {
    const order = this.shardOrder(epoch);
    const ids = new Uint32Array(this.shuffleShards * this.fullShardWindows);
    for (let b = 0; b < this.blockCount(); b++) {
      const shards = this.blockShards(order, b);
      const n = this.blockOrder(epoch, order, b, ids);
      const mask = 2 ** this.windowBits - 1;
      for (let i = 0; i < n; i++) {
        yield { shard: shards[ids[i] >>> this.windowBits], offset: (ids[i] & mask) * this.window };
      }
    }
  }

  /** A planner positioned at `cursor` (default: the very start). */
  planner(cursor: DataCursor = { epoch: 0, batch: 0 }): BatchPlanner {
    return new BatchPlanner(this, cursor);
  }
}

/** Walks a group's endless sequence of batches, writing each batch's windows into a WindowPlan. */
export class BatchPlanner {
  private epoch = 0;
  private batch = 0;
  private order: Uint32Array = new Uint32Array(0);
  private block = -1;
  private blockShards: Uint32Array = new Uint32Array(0);
  private readonly ids: Uint32Array;
  private idsLength = 0;
  private pos = 0;

  constructor(
    private readonly o: DataOrder,
    cursor: DataCursor,
  ) {
    this.ids = new Uint32Array(o.shuffleShards * o.fullShardWindows);
    const { epoch, batch } = checkCursor(cursor, o.batchesPerEpoch);
    this.enterEpoch(epoch);
    this.batch = batch;
    // Skip whole blocks by counting their windows, then permute only the block the cursor falls in.
    let skip = batch * o.batch;
    for (let b = 0; b < o.blockCount(); b++) {
      const n = o.blockWindows(this.order, b);
      if (skip < n) {
        this.loadBlock(b);
        this.pos = skip;
        return;
      }
      skip -= n;
    }
    throw new OrderError(`data cursor ${JSON.stringify(cursor)} is past the group's windows`);
  }

  /** The position of the next batch. */
  get cursor(): DataCursor {
    return { epoch: this.epoch, batch: this.batch };
  }

  /** Appends the next `count` batches to `plan` (which must have room for count * B more rows). */
  plan(count: number, plan: WindowPlan): BatchId[] {
    const o = this.o;
    const { windowBits, window } = o;
    const mask = 2 ** windowBits - 1;
    const windows = plan.windows;
    const ids: BatchId[] = [];
    // Slot of the current block's first shard in plan.shards; -1 until this plan uses the block.
    let base = -1;
    for (let c = 0; c < count; c++) {
      ids.push({ epoch: this.epoch, index: this.batch });
      for (let r = 0; r < o.batch; r++) {
        while (this.pos === this.idsLength) {
          this.loadBlock(this.block + 1);
          base = -1;
        }
        if (base < 0) {
          base = plan.shards.length;
          for (const s of this.blockShards) plan.shards.push(s);
        }
        const id = this.ids[this.pos++];
        windows[2 * plan.rows] = base + (id >>> windowBits);
        windows[2 * plan.rows + 1] = (id & mask) * window;
        plan.rows++;
      }
      if (++this.batch === o.batchesPerEpoch) {
        this.enterEpoch(this.epoch + 1);
        base = -1;
      }
    }
    return ids;
  }

  private enterEpoch(epoch: number): void {
    this.epoch = epoch;
    this.batch = 0;
    this.order = this.o.shardOrder(epoch);
    // No block loaded: the next window loads block 0.
    this.block = -1;
    this.idsLength = 0;
    this.pos = 0;
  }

  private loadBlock(block: number): void {
    this.block = block;
    this.blockShards = this.o.blockShards(this.order, block);
    this.idsLength = this.o.blockOrder(this.epoch, this.order, block, this.ids);
    this.pos = 0;
  }
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
        'it was saved with another corpus, group count, window or batch size',
    );
  }
  return batch === batchesPerEpoch ? { epoch: epoch + 1, batch: 0 } : { epoch, batch };
}
