/**
 * Training batches and the validation set out of a record store.
 *
 * The data order of one group is fixed by (seed, group, epoch): the group's train shards (s % groups === group, or
 * all of them with sameData) are permuted each epoch and taken `shuffleShards` at a time as shuffle blocks; a block's
 * rows are permuted together, and the blocks' rows, one after the other, are the epoch's row sequence. Batch k of an
 * epoch is rows [kB, (k+1)B) of it, a last piece shorter than B is dropped, then the next epoch starts. Shard row
 * counts come from the metadata, so a stream opened at a cursor goes straight to the block it is in.
 *
 * Memory is one block (the rows of `shuffleShards` shards) and the batch being filled; a batch that straddles two
 * blocks takes its first rows before the second block replaces the first.
 */
import { Random, deriveSeed } from '../util/random.js';
import type { Batch, DataCursor, Field, StreamSpec, TrainBatch, TrainStream } from '../workloads/workload.js';
import { fieldArray, RecordError, type RecordMeta, RecordStore, rowsInShard } from './store.js';

export const SHUFFLE_SHARDS = 8;

// Labels that keep the shard permutation and the row permutations independent streams of randomness.
const SHARD_ORDER = 1;
const ROW_ORDER = 2;

const isCount = (n: unknown, min: number): n is number => Number.isSafeInteger(n) && (n as number) >= min;

/** Group `spec.group`'s training batches from the store at `path`, starting at `spec.cursor`. */
export function openRecordStream(path: string, spec: StreamSpec, o: { shuffleShards?: number } = {}): TrainStream {
  const store = RecordStore.open(path);
  try {
    return new RecordStream(store, spec, o.shuffleShards ?? SHUFFLE_SHARDS);
  } catch (err) {
    store.close();
    throw err;
  }
}

/** The group's train shards, ascending. */
function groupShards(meta: RecordMeta, spec: StreamSpec): number[] {
  const shards = meta.splits.train.shards;
  if (spec.sameData) return Array.from({ length: shards }, (_, s) => s);
  if (shards < spec.groups) {
    throw new RecordError(
      `the training split has ${shards} shard${shards === 1 ? '' : 's'} but groups = ${spec.groups} need at least ` +
        'one each: use fewer groups, distill.sameData, or a smaller shardRows',
    );
  }
  const mine: number[] = [];
  for (let s = spec.group; s < shards; s += spec.groups) mine.push(s);
  return mine;
}

interface Block {
  index: number;
  rows: number;
  /** Each field's values for the block's rows, shard after shard. */
  columns: Field[];
  /** The block's rows in the order they are served. */
  order: Uint32Array;
  /** Rows of `order` already served. */
  pos: number;
}

class RecordStream implements TrainStream {
  private readonly meta: RecordMeta;
  private readonly shards: number[];
  private readonly batchesPerEpoch: number;
  private epoch: number;
  private batch: number;
  private shardOrder: number[] = [];
  private block: Block | undefined;
  private closed = false;

  constructor(
    private readonly store: RecordStore,
    private readonly spec: StreamSpec,
    private readonly shuffleShards: number,
  ) {
    if (!isCount(spec.groups, 1) || !isCount(spec.group, 0) || spec.group >= spec.groups) {
      throw new RecordError(`stream group ${spec.group} of ${spec.groups}: not a group index`);
    }
    if (!isCount(spec.batch, 1)) throw new RecordError(`batch ${spec.batch} is not a positive integer`);
    if (!isCount(spec.seed, 0)) throw new RecordError(`seed ${spec.seed} is not a non-negative integer`);
    if (!isCount(shuffleShards, 1)) throw new RecordError(`shuffleShards ${shuffleShards} is not a positive integer`);
    this.meta = store.meta;
    this.shards = groupShards(this.meta, spec);
    const rows = this.shards.reduce((sum, s) => sum + rowsInShard(this.meta, 'train', s), 0);
    this.batchesPerEpoch = Math.floor(rows / spec.batch);
    if (this.batchesPerEpoch === 0) {
      throw new RecordError(`group ${spec.group}'s training shards hold ${rows} rows, fewer than one batch of ${spec.batch}`);
    }
    const cursor = spec.cursor ?? { epoch: 0, batch: 0 };
    if (!isCount(cursor.epoch, 0) || !isCount(cursor.batch, 0) || cursor.batch >= this.batchesPerEpoch) {
      throw new RecordError(
        `cursor ${JSON.stringify(cursor)} is not in the stream: an epoch has ${this.batchesPerEpoch} batches of ${spec.batch}`,
      );
    }
    this.epoch = cursor.epoch;
    this.batch = cursor.batch;
    this.startEpoch();
    this.seek(cursor.batch * spec.batch);
  }

  async next(): Promise<TrainBatch> {
    if (this.closed) throw new RecordError(`${this.store.path}: the stream is closed`);
    const B = this.spec.batch;
    const fields: Record<string, Field> = {};
    const out = this.meta.fields.map((f) => (fields[f.name] = fieldArray(f.dtype, B * f.width)));
    for (let filled = 0; filled < B; ) {
      if (!this.block || this.block.pos === this.block.rows) this.loadBlock(this.block ? this.block.index + 1 : 0);
      const block = this.block!;
      const take = Math.min(B - filled, block.rows - block.pos);
      this.meta.fields.forEach((f, i) => gather(out[i], block.columns[i], f.width, block.order, block.pos, take, filled));
      block.pos += take;
      filled += take;
    }
    let cursor: DataCursor;
    if (++this.batch === this.batchesPerEpoch) {
      this.epoch++;
      this.batch = 0;
      this.startEpoch();
      cursor = { epoch: this.epoch, batch: 0 };
    } else {
      cursor = { epoch: this.epoch, batch: this.batch };
    }
    return { rows: B, fields, cursor, continues: false };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.block = undefined;
    this.store.close();
  }

  private startEpoch(): void {
    this.shardOrder = new Random(deriveSeed(this.spec.seed, SHARD_ORDER, this.spec.group, this.epoch)).shuffle([...this.shards]);
    this.block = undefined;
  }

  private blockShards(index: number): number[] {
    return this.shardOrder.slice(index * this.shuffleShards, (index + 1) * this.shuffleShards);
  }

  /** Goes to row `row` of the epoch's sequence, reading only the block it lies in. */
  private seek(row: number): void {
    for (let index = 0, first = 0; ; index++) {
      const rows = this.blockShards(index).reduce((sum, s) => sum + rowsInShard(this.meta, 'train', s), 0);
      if (row < first + rows) {
        this.loadBlock(index);
        this.block!.pos = row - first;
        return;
      }
      first += rows;
    }
  }

  private loadBlock(index: number): void {
    const shards = this.blockShards(index);
    if (shards.length === 0) throw new RecordError(`${this.store.path}: read past the epoch's last block`);
    const rows = shards.reduce((sum, s) => sum + rowsInShard(this.meta, 'train', s), 0);
    this.block = undefined; // the old block may go before the new one is allocated
    const target: Record<string, Field> = {};
    const columns = this.meta.fields.map((f) => (target[f.name] = fieldArray(f.dtype, rows * f.width)));
    let at = 0;
    for (const s of shards) at += this.store.readShardInto('train', s, target, at);
    const order = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    new Random(deriveSeed(this.spec.seed, ROW_ORDER, this.spec.group, this.epoch, index)).shuffle(order);
    this.block = { index, rows, columns, order, pos: 0 };
  }
}

/** Copies rows order[from .. from + n) of `src` to rows `to ..` of `dst`, `width` values a row. */
function gather(dst: Field, src: Field, width: number, order: Uint32Array, from: number, n: number, to: number): void {
  if (width === 1) {
    for (let i = 0; i < n; i++) dst[to + i] = src[order[from + i]];
    return;
  }
  for (let i = 0; i < n; i++) {
    const s = order[from + i] * width;
    const d = (to + i) * width;
    if (width >= 64) dst.set(src.subarray(s, s + width), d);
    else for (let j = 0; j < width; j++) dst[d + j] = src[s + j];
  }
}

/** The first `maxRows` validation rows, in store order, each field in its own typed array. */
export function readValidation(path: string, maxRows: number): Batch {
  if (!isCount(maxRows, 0)) throw new RecordError(`maxRows ${maxRows} is not a non-negative integer`);
  const store = RecordStore.open(path);
  try {
    const { meta } = store;
    const rows = Math.min(maxRows, meta.splits.validation.rows);
    const fields: Record<string, Field> = {};
    for (const f of meta.fields) fields[f.name] = fieldArray(f.dtype, rows * f.width);
    for (let s = 0, at = 0; at < rows; s++) {
      const n = store.rowsInShard('validation', s);
      if (at + n <= rows) {
        at += store.readShardInto('validation', s, fields, at);
        continue;
      }
      const shard = store.readShard('validation', s);
      for (const f of meta.fields) fields[f.name].set(shard[f.name].subarray(0, (rows - at) * f.width), at * f.width);
      at = rows;
    }
    return { rows, fields };
  } finally {
    store.close();
  }
}
