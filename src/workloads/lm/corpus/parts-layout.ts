/**
 * One split of a corpus in parts, seen as one split of one corpus: shards numbered across the parts, every one of
 * them `shardTokens` long except the last, as in a store built in one piece. That is the layout the data order
 * and the readers are written for (the partition deals shard ids, the order keeps the one short shard last), so
 * they read a corpus in parts unchanged.
 *
 * Each part ends its split with a short shard (its tail). The full shards of all parts come first, part after
 * part; the tails follow, concatenated in part order and cut again into shards of `shardTokens`. Every tail ends
 * with an end-of-document token, so the joined tails are a token stream like any other: a window that crosses
 * from one part's tail into the next crosses a document boundary, as windows do everywhere. Every token of every
 * part is in exactly one shard of the layout.
 *
 * Memory is two numbers a part; locating a shard is a binary search over the parts.
 */

/** A run of one part's shard that a shard of the layout is made of: tokens from..to of shard `shard` of part `part`. */
export interface ShardPiece {
  part: number;
  shard: number;
  from: number;
  to: number;
}

export class PartsLayout {
  readonly shards: number;
  readonly tokens: number;
  /** Shards of the layout that are a part's full shard, as they are. */
  readonly fullShards: number;
  /** Tokens of all tails. */
  readonly tailTokens: number;
  // Per part, and one more entry for the end: first full shard in the layout, first token in the joined tails.
  private readonly fullStart: number[];
  private readonly tailStart: number[];
  private readonly fullOf: number[];

  /** `partTokens[p]`: tokens of the split in part p. */
  constructor(
    readonly shardTokens: number,
    partTokens: readonly number[],
  ) {
    this.fullStart = [0];
    this.tailStart = [0];
    this.fullOf = [];
    for (const tokens of partTokens) {
      const full = Math.floor(tokens / shardTokens);
      this.fullOf.push(full);
      this.fullStart.push(this.fullStart[this.fullStart.length - 1] + full);
      this.tailStart.push(this.tailStart[this.tailStart.length - 1] + tokens - full * shardTokens);
    }
    this.fullShards = this.fullStart[partTokens.length];
    this.tailTokens = this.tailStart[partTokens.length];
    this.shards = this.fullShards + Math.ceil(this.tailTokens / shardTokens);
    this.tokens = this.fullShards * shardTokens + this.tailTokens;
  }

  /** Shards part `part` holds in the split (its full ones and its tail, if any). */
  partShards(part: number): number {
    return this.fullOf[part] + (this.tailStart[part + 1] > this.tailStart[part] ? 1 : 0);
  }

  /** The pieces shard `index` of the layout is made of, in order. */
  locate(index: number): ShardPiece[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.shards) {
      throw new RangeError(`shard ${index} is not one of the ${this.shards} shards`);
    }
    if (index < this.fullShards) {
      const part = lastAtOrBelow(this.fullStart, index);
      return [{ part, shard: index - this.fullStart[part], from: 0, to: this.shardTokens }];
    }
    const from = (index - this.fullShards) * this.shardTokens;
    const to = Math.min(from + this.shardTokens, this.tailTokens);
    const pieces: ShardPiece[] = [];
    for (let part = lastAtOrBelow(this.tailStart, from); part < this.fullOf.length && this.tailStart[part] < to; part++) {
      const start = this.tailStart[part];
      const end = this.tailStart[part + 1];
      if (end <= from || end === start) continue;
      pieces.push({ part, shard: this.fullOf[part], from: Math.max(from, start) - start, to: Math.min(to, end) - start });
    }
    return pieces;
  }
}

/** The last part p with starts[p] <= x: the one holding x (a part holding none shares its start with the next). */
function lastAtOrBelow(starts: readonly number[], x: number): number {
  let lo = 0;
  let hi = starts.length - 2; // the last entry is the end, not a part
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (starts[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
