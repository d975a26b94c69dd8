import t from 'tap';
import { type ShardLayout, partitionShards, tokensInShard } from '../src/workloads/lm/data/partition.js';

const layout = (shards: number, shardTokens: number, last: number): ShardLayout => ({
  shards, shardTokens, tokens: (shards - 1) * shardTokens + last,
});

t.test('groups get disjoint shard sets that cover the split, balanced by tokens', async (t) => {
  for (const [shards, groups] of [[10, 3], [9, 3], [7, 7], [100, 8], [1, 1]]) {
    const l = layout(shards, 1000, 137);
    const sets = partitionShards(l, { groups, sameData: false });
    t.equal(sets.length, groups);
    const all = sets.flatMap((s) => s.toArray()).sort((a, b) => a - b);
    t.same(all, Array.from({ length: shards }, (_, i) => i), `${shards} shards / ${groups} groups: each exactly once`);
    const tokens = sets.map((s) => s.tokens(l));
    t.equal(tokens.reduce((a, b) => a + b, 0), l.tokens, 'token counts add up');
    t.ok(Math.max(...tokens) - Math.min(...tokens) <= l.shardTokens, `balanced within one shard: ${tokens}`);
    for (const s of sets) for (const id of s.toArray()) if (!s.has(id)) t.fail(`has(${id})`);
  }
});

t.test('the partition is deterministic and the last shard may be short', async (t) => {
  const l = layout(5, 100, 30);
  t.same(partitionShards(l, { groups: 2, sameData: false }).map((s) => s.toArray()), [[0, 2, 4], [1, 3]]);
  t.equal(tokensInShard(l, 4), 30);
  t.equal(tokensInShard(l, 3), 100);
  t.notOk(partitionShards(l, { groups: 2, sameData: false })[0].has(1));
});

t.test('sameData gives every group every shard', async (t) => {
  const sets = partitionShards(layout(4, 10, 10), { groups: 6, sameData: true });
  t.equal(sets.length, 6);
  for (const s of sets) t.same(s.toArray(), [0, 1, 2, 3]);
});

t.test('fewer shards than groups is a clear error', async (t) => {
  t.throws(() => partitionShards(layout(3, 10, 10), { groups: 4, sameData: false }), {
    name: 'PartitionError',
    message: /3 shards but groups = 4.*distill\.sameData/,
  });
  t.throws(() => partitionShards({ shards: 0, shardTokens: 10, tokens: 0 }, { groups: 1, sameData: true }), /no shards/);
  t.throws(() => partitionShards(layout(3, 10, 10), { groups: 0, sameData: false }), /positive integer/);
});
