import t from 'tap';
import { type DataCursor, DataOrder, type OrderOptions, type WindowPlan } from '../src/data/order.js';
import { type ShardLayout, partitionShards } from '../src/data/partition.js';
import { windowsInShard } from '../src/data/windows.js';

// 21 shards of 1024 tokens, the last one 500: 63 windows of 16+1 tokens in a full shard, 31 in the last.
const layout: ShardLayout = { shards: 21, shardTokens: 1024, tokens: 20 * 1024 + 500 };
const orderFor = (over: Partial<OrderOptions> = {}): DataOrder => {
  const group = over.group ?? 0;
  const shards = partitionShards(layout, { groups: 2, sameData: false })[group];
  return new DataOrder({ layout, shards, window: 16, batch: 8, seed: 1234, group, shuffleShards: 4, ...over });
};
const key = (w: { shard: number; offset: number }) => `${w.shard}:${w.offset}`;

/** The windows of `count` batches from `cursor`, one string per batch. */
function batchesFrom(order: DataOrder, cursor: DataCursor, count: number): string[] {
  const planner = order.planner(cursor);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const plan: WindowPlan = { shards: [], windows: new Uint32Array(2 * order.batch), rows: 0 };
    const [{ epoch, index }] = planner.plan(1, plan);
    const ws = [];
    for (let r = 0; r < plan.rows; r++) ws.push(`${plan.shards[plan.windows[2 * r]]}:${plan.windows[2 * r + 1]}`);
    out.push(`${epoch}/${index} ${ws.join(' ')}`);
  }
  return out;
}

t.test('every window of the group shards comes exactly once per epoch', async (t) => {
  for (const group of [0, 1]) {
    const order = orderFor({ group });
    const expected = new Set<string>();
    for (const shard of order.shards.toArray()) {
      for (let k = 0; k < order.windowsIn(shard); k++) expected.add(`${shard}:${k * 16}`);
    }
    t.equal(order.windowsPerEpoch, expected.size);
    for (const epoch of [0, 1, 5]) {
      const seen = [...order.epochWindows(epoch)].map(key);
      t.equal(seen.length, expected.size, `group ${group} epoch ${epoch}: count`);
      t.same(new Set(seen), expected, `group ${group} epoch ${epoch}: each window once`);
    }
  }
  t.equal(windowsInShard(1024, 16), 63);
  t.equal(windowsInShard(17, 16), 1);
  t.equal(windowsInShard(16, 16), 0);
});

t.test('windows start at multiples of T and stay inside their shard', async (t) => {
  const order = orderFor();
  for (const w of order.epochWindows(0)) {
    const len = w.shard === 20 ? 500 : 1024;
    if (w.offset % 16 !== 0 || w.offset + 17 > len) t.fail(`window ${key(w)}`);
  }
  t.pass('all windows fit');
});

t.test('the order is deterministic for a seed and differs across epochs, seeds and groups', async (t) => {
  const windows = (order: DataOrder, epoch: number) => [...order.epochWindows(epoch)].map(key).join(' ');
  const a = windows(orderFor(), 0);
  t.equal(windows(orderFor(), 0), a, 'same seed, same order');
  t.not(windows(orderFor(), 1), a, 'next epoch reshuffles');
  t.not(windows(orderFor({ seed: 99 }), 0), a, 'another seed');
  t.not(orderFor().shardOrder(0).join(), orderFor().shardOrder(1).join(), 'shards are permuted per epoch');
  const same = partitionShards(layout, { groups: 2, sameData: true });
  const g0 = new DataOrder({ layout, shards: same[0], window: 16, batch: 8, seed: 1, group: 0 });
  const g1 = new DataOrder({ layout, shards: same[1], window: 16, batch: 8, seed: 1, group: 1 });
  t.not(windows(g0, 0), windows(g1, 0), 'sameData groups shuffle independently');
});

t.test('a batch mixes windows of several shards of its shuffle block', async (t) => {
  const [first] = batchesFrom(orderFor(), { epoch: 0, batch: 0 }, 1);
  const shards = new Set(first.split(' ').slice(1).map((w) => w.split(':')[0]));
  t.ok(shards.size > 1, `batch 0 draws from ${shards.size} shards`);
});

t.test('batches are the epoch order cut into runs of B, skipping the short tail', async (t) => {
  const order = orderFor();
  t.equal(order.batchesPerEpoch, Math.floor(order.windowsPerEpoch / 8));
  const epoch0 = [...order.epochWindows(0)].map(key);
  const batches = batchesFrom(order, { epoch: 0, batch: 0 }, order.batchesPerEpoch + 1);
  const flat = batches.slice(0, -1).flatMap((b) => b.split(' ').slice(1));
  t.same(flat, epoch0.slice(0, order.batchesPerEpoch * 8));
  t.match(batches.at(-1), /^1\/0 /, 'then epoch 1 starts at batch 0');
  t.same(batches.at(-1)!.split(' ').slice(1), [...order.epochWindows(1)].map(key).slice(0, 8));
});

t.test('resuming from a cursor yields exactly the batches of an uninterrupted run', async (t) => {
  const order = orderFor();
  const per = order.batchesPerEpoch;
  const run = batchesFrom(order, { epoch: 0, batch: 0 }, 3 * per);
  for (const at of [1, 7, per - 1, per, per + 3, 2 * per + 5]) {
    const cursor = { epoch: Math.floor(at / per), batch: at % per };
    t.same(batchesFrom(order, cursor, 10), run.slice(at, at + 10), `from ${JSON.stringify(cursor)}`);
  }
  t.same(batchesFrom(order, { epoch: 0, batch: per }, 2), run.slice(per, per + 2), 'the end of an epoch is the next start');
  t.throws(() => order.planner({ epoch: 0, batch: per + 1 }), { name: 'OrderError', message: /past the end of an epoch/ });
  t.throws(() => order.planner({ epoch: -1, batch: 0 }), /non-negative integers/);
});

t.test('a cursor is plain JSON and the planner reports it', async (t) => {
  const order = orderFor();
  const planner = order.planner({ epoch: 2, batch: 3 });
  planner.plan(2, { shards: [], windows: new Uint32Array(32), rows: 0 });
  t.same(JSON.parse(JSON.stringify(planner.cursor)), { epoch: 2, batch: 5 });
});

t.test('too little data for one batch, or a window longer than a shard, is a clear error', async (t) => {
  t.throws(() => orderFor({ batch: 10000 }), { name: 'OrderError', message: /fewer than one batch of 10000/ });
  t.throws(() => orderFor({ window: 1024 }), /does not fit in a shard of 1024 tokens/);
});

t.test('a 6e11-token corpus needs no change: positioning deep in an epoch is quick', async (t) => {
  const big: ShardLayout = { shards: Math.ceil(6e11 / 65536), shardTokens: 65536, tokens: 6e11 };
  const shards = partitionShards(big, { groups: 8, sameData: false })[3];
  const order = new DataOrder({ layout: big, shards, window: 32, batch: 32, seed: 1, group: 3 });
  t.ok(order.windowsPerEpoch > 2e9, `${order.windowsPerEpoch} windows per epoch`);
  const start = performance.now();
  const planner = order.planner({ epoch: 4, batch: order.batchesPerEpoch - 10 });
  const plan: WindowPlan = { shards: [], windows: new Uint32Array(2 * 32 * 12), rows: 0 };
  const ids = planner.plan(12, plan);
  t.same(ids.at(-1), { epoch: 5, index: 1 }, 'crosses into the next epoch');
  t.ok(performance.now() - start < 5000, `positioned and planned in ${(performance.now() - start).toFixed(0)} ms`);
});
