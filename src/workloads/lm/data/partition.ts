/**
 * Which training shards each group reads: disjoint subsets, one per group, or (distill.sameData) all of them.
 *
 * Shards are dealt round-robin: group g gets shards g, g+G, g+2G, ... Every shard holds the same number of tokens
 * except the last one of the split, so each group gets floor(S/G) or ceil(S/G) shards and the groups' token counts
 * differ by at most one shard: the best balance an assignment of whole shards can promise. Dealing also spreads every
 * stretch of the corpus (neighbouring shards hold neighbouring documents) over all groups, so their data are disjoint
 * yet alike in distribution. A group's set is an arithmetic progression: O(1) memory at any corpus size.
 */
import type { CorpusMeta, Split } from '../corpus/store.js';

/** How a split is cut: `shards` shards of `shardTokens` tokens each, except the last, which holds the rest. */
export interface ShardLayout {
  shards: number;
  shardTokens: number;
  tokens: number;
}

export function shardLayout(meta: CorpusMeta, split: Split): ShardLayout {
  const s = meta.splits[split];
  return { shards: s.shards, shardTokens: meta.shardTokens, tokens: s.tokens };
}

/** Tokens in one shard of the layout. */
export function tokensInShard(layout: ShardLayout, shard: number): number {
  if (shard < layout.shards - 1) return layout.shardTokens;
  return layout.tokens - (layout.shards - 1) * layout.shardTokens;
}

/** The shard ids first, first + stride, ..., count of them, in ascending order. */
export class ShardSet {
  constructor(
    readonly first: number,
    readonly stride: number,
    readonly count: number,
  ) {}

  /** The i-th shard id (0 <= i < count). */
  at(i: number): number {
    return this.first + i * this.stride;
  }

  has(shard: number): boolean {
    const d = shard - this.first;
    return d >= 0 && d % this.stride === 0 && d / this.stride < this.count;
  }

  /** Tokens in the set's shards. */
  tokens(layout: ShardLayout): number {
    if (this.count === 0) return 0;
    const last = this.at(this.count - 1);
    return (this.count - 1) * layout.shardTokens + tokensInShard(layout, last);
  }

  toArray(): number[] {
    return Array.from({ length: this.count }, (_, i) => this.at(i));
  }
}

export class PartitionError extends Error {
  override name = 'PartitionError';
}

export interface PartitionOptions {
  groups: number;
  /** Every group reads every shard (distill.sameData) instead of its own disjoint subset. */
  sameData: boolean;
}

/** The shard sets of all groups, indexed by group. */
export function partitionShards(layout: ShardLayout, { groups, sameData }: PartitionOptions): ShardSet[] {
  if (!Number.isInteger(groups) || groups < 1) {
    throw new PartitionError(`groups must be a positive integer, got ${groups}`);
  }
  const s = layout.shards;
  if (s < 1) throw new PartitionError('the training split has no shards: ingest a corpus with training text');
  if (sameData) return Array.from({ length: groups }, () => new ShardSet(0, 1, s));
  if (s < groups) {
    throw new PartitionError(
      `the training split has ${s} shard${s === 1 ? '' : 's'} but groups = ${groups} need at least one each: ` +
        'use fewer groups, re-ingest with a smaller corpus.shardTokens, or set distill.sameData = true',
    );
  }
  return Array.from({ length: groups }, (_, g) => new ShardSet(g, groups, Math.ceil((s - g) / groups)));
}
