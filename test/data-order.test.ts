import t from 'tap';
import { type DataCursor, DataOrder, type OrderOptions } from '../src/workloads/lm/data/order.js';
import { type ShardLayout, partitionShards } from '../src/workloads/lm/data/partition.js';
import { windowsInShard } from '../src/workloads/lm/data/windows.js';

// 21 shards of 1024 tokens, the last one 500: 63 windows of 16+1 tokens in a full shard, 31 in the last. Spans of
// M = 7 windows: 9 a full shard, 4 in the last. Group 0 (11 shards, the short one among them) has blocks of 3, 4, 4.
const layout: ShardLayout = { shards: 21, shardTokens: 1024, tokens: 20 * 1024 + 500 };
const M = 7;
const orderFor = (over: Partial<OrderOptions> = {}): DataOrder => {
  const group = over.group ?? 0;
  const shards = partitionShards(layout, { groups: 2, sameData: false })[group];
  return new DataOrder({ layout, shards, window: 16, batch: 8, seed: 1234, group, shuffleShards: 4, spanWindows: M, ...over });
};
const key = (w: { shard: number; offset: number }) => `${w.shard}:${w.offset}`;

/** `count` batches from `cursor`, cut from the planner's tasks as the batch stream cuts them: one string a batch. */
function batchesFrom(order: DataOrder, cursor: DataCursor, count: number): string[] {
  const planner = order.planner(cursor);
  const out: string[] = [];
  while (out.length < count) {
    const task = planner.next();
    for (let c = 0; c < task.chunks; c++) {
      for (let k = c === 0 ? task.skip : 0; k < order.spanWindows; k++) {
        const ws = [];
        for (let r = 0; r < order.batch; r++) {
          const j = 2 * (c * order.batch + r);
          ws.push(`${task.shards[task.spans[j]]}:${task.spans[j + 1] + k * order.window}`);
        }
        out.push(`${task.epoch}/${(task.firstChunk + c) * order.spanWindows + k} ${ws.join(' ')}`);
      }
    }
  }
  return out.slice(0, count);
}

t.test('every window of the group shards comes at most once per epoch; the drop is counted and small per block', async (t) => {
  for (const group of [0, 1]) {
    const order = orderFor({ group });
    const all = new Set<string>();
    for (const shard of order.shards.toArray()) {
      for (let k = 0; k < order.windowsIn(shard); k++) all.add(`${shard}:${k * 16}`);
    }
    t.equal(order.windowsPerEpoch, order.batchesPerEpoch * 8);
    t.equal(order.windowsPerEpoch + order.droppedWindows, all.size, 'delivered + dropped = all windows');
    for (const epoch of [0, 1, 5]) {
      const seen = [...order.epochWindows(epoch)].map(key);
      t.equal(seen.length, order.windowsPerEpoch, `group ${group} epoch ${epoch}: count`);
      t.equal(new Set(seen).size, seen.length, 'no window twice');
      t.ok(seen.every((w) => all.has(w)), 'only windows of the group');
    }
    // Per shard fewer than M windows (its phase and tail), per block fewer than B spans.
    const bound = order.shards.toArray().reduce((n, s) => n + (order.windowsIn(s) % M), 0) + order.blockCount * 7 * M;
    t.ok(order.droppedWindows <= bound, `group ${group} drops ${order.droppedWindows} of ${all.size} windows`);
  }
  t.equal(windowsInShard(1024, 16), 63);
  t.equal(windowsInShard(17, 16), 1);
  t.equal(windowsInShard(16, 16), 0);
});

t.test('the dropped windows change from epoch to epoch', async (t) => {
  const order = orderFor();
  const seen = new Set<string>();
  for (let e = 0; e < 8; e++) for (const w of order.epochWindows(e)) seen.add(key(w));
  t.ok(seen.size > order.windowsPerEpoch, `8 epochs touch ${seen.size} windows, one epoch ${order.windowsPerEpoch}`);
});

t.test('windows start at multiples of T, stay inside their shard, and a row continues for M batches', async (t) => {
  const order = orderFor();
  const windows = [...order.epochWindows(0)];
  let bad = 0;
  windows.forEach((w, i) => {
    const len = w.shard === 20 ? 500 : 1024;
    if (w.offset % 16 !== 0 || w.offset + 17 > len) bad++;
    // Batch i+1 row r is the window after batch i row r, except across chunks.
    const next = windows[i + 8];
    if (Math.floor(i / 8) % M !== M - 1 && next && (next.shard !== w.shard || next.offset !== w.offset + 16)) bad++;
  });
  t.equal(bad, 0, `${windows.length} windows checked`);
});

t.test('the order is deterministic for a seed and differs across epochs, seeds and groups', async (t) => {
  const windows = (order: DataOrder, epoch: number) => [...order.epochWindows(epoch)].map(key).join(' ');
  const a = windows(orderFor(), 0);
  t.equal(windows(orderFor(), 0), a, 'same seed, same order');
  t.not(windows(orderFor(), 1), a, 'next epoch reshuffles');
  t.not(windows(orderFor({ seed: 99 }), 0), a, 'another seed');
  t.not(orderFor().shardOrder(0).join(), orderFor().shardOrder(1).join(), 'shards are permuted per epoch');
  t.equal(orderFor().shardOrder(3).at(-1), 20, 'the short last shard stays last');
  const same = partitionShards(layout, { groups: 2, sameData: true });
  const g0 = new DataOrder({ layout, shards: same[0], window: 16, batch: 8, seed: 1, group: 0, spanWindows: M });
  const g1 = new DataOrder({ layout, shards: same[1], window: 16, batch: 8, seed: 1, group: 1, spanWindows: M });
  t.not(windows(g0, 0), windows(g1, 0), 'sameData groups shuffle independently');
});

t.test('a batch mixes spans of several shards of its shuffle block', async (t) => {
  const [first] = batchesFrom(orderFor(), { epoch: 0, batch: 0 }, 1);
  const shards = new Set(first.split(' ').slice(1).map((w) => w.split(':')[0]));
  t.ok(shards.size > 1, `batch 0 draws from ${shards.size} shards`);
});

t.test('reader tasks are whole blocks and their batches are the epoch order, then the next epoch', async (t) => {
  const order = orderFor();
  t.equal(order.batchesPerEpoch, order.chunksPerEpoch * M);
  const planner = order.planner();
  const tasks = Array.from({ length: order.blockCount }, () => planner.next());
  t.same(tasks.map((x) => [x.block, x.firstChunk, x.chunks, x.shards.length]), [[0, 0, 3, 3], [1, 3, 4, 4], [2, 7, 3, 4]]);
  t.same(planner.cursor, { epoch: 1, batch: 0 });
  const epoch0 = [...order.epochWindows(0)].map(key);
  const batches = batchesFrom(order, { epoch: 0, batch: 0 }, order.batchesPerEpoch + 1);
  t.same(batches.slice(0, -1).flatMap((b) => b.split(' ').slice(1)), epoch0);
  t.match(batches.at(-1), /^1\/0 /, 'then epoch 1 starts at batch 0');
  t.same(batches.at(-1)!.split(' ').slice(1), [...order.epochWindows(1)].map(key).slice(0, 8));
});

t.test('stepOver passes over tasks exactly as next plans them, across epochs and from inside a chunk', async (t) => {
  const order = orderFor();
  const cursor = { epoch: 0, batch: M + 2 };
  const planning = order.planner(cursor);
  const stepping = order.planner(cursor);
  for (let i = 0; i < 2 * order.blockCount + 1; i++) {
    const { epoch, block, firstChunk, chunks, skip } = planning.next();
    t.same(stepping.stepOver(), { epoch, block, firstChunk, chunks, skip }, `task ${i}`);
    t.same(stepping.cursor, planning.cursor);
  }
});

t.test('resuming from a cursor yields exactly the batches of an uninterrupted run', async (t) => {
  const order = orderFor();
  const per = order.batchesPerEpoch;
  const run = batchesFrom(order, { epoch: 0, batch: 0 }, 3 * per);
  for (const at of [1, 7, 23, per - 1, per, per + 3, 2 * per + 5]) {
    const cursor = { epoch: Math.floor(at / per), batch: at % per };
    t.same(batchesFrom(order, cursor, 10), run.slice(at, at + 10), `from ${JSON.stringify(cursor)}`);
  }
  t.same(batchesFrom(order, { epoch: 0, batch: per }, 2), run.slice(per, per + 2), 'the end of an epoch is the next start');
  t.throws(() => order.planner({ epoch: 0, batch: per + 1 }), { name: 'OrderError', message: /past the end of an epoch/ });
  t.throws(() => order.planner({ epoch: -1, batch: 0 }), /non-negative integers/);
});

t.test('a cursor is plain JSON and the planner reports it', async (t) => {
  const planner = orderFor().planner({ epoch: 2, batch: 3 });
  t.same(JSON.parse(JSON.stringify(planner.cursor)), { epoch: 2, batch: 3 });
  t.equal(planner.nextChunks, 3, 'the rest of block 0');
  const task = planner.next();
  t.same([task.firstChunk, task.skip, task.chunks], [0, 3, 3], 'resumes inside chunk 0, skipping its first 3 batches');
  t.same(planner.cursor, { epoch: 2, batch: 3 * M });
});

t.test('chunk positions by arithmetic agree with counting the spans of every block', async (t) => {
  let bad = 0;
  let cases = 0;
  for (const shards of [1, 2, 5, 17, 33]) {
    for (const last of [1024, 500, 20]) {
      const l: ShardLayout = { shards, shardTokens: 1024, tokens: (shards - 1) * 1024 + last };
      for (const [groups, shuffleShards, batch, spanWindows] of [[1, 4, 3, 7], [2, 3, 5, 5], [1, 16, 8, 9], [3, 2, 2, 20]]) {
        if (shards < groups) continue;
        for (const shardSet of partitionShards(l, { groups, sameData: false })) {
          let order: DataOrder;
          try {
            order = new DataOrder({ layout: l, shards: shardSet, window: 16, batch, seed: 3, group: 0, shuffleShards, spanWindows });
          } catch {
            continue; // fewer spans than one chunk
          }
          cases++;
          const epochOrder = order.shardOrder(2);
          let chunks = 0;
          for (let b = 0; b < order.blockCount; b++) {
            const spans = order.blockShards(epochOrder, b).reduce((n, s) => n + Math.floor(order.windowsIn(s) / spanWindows), 0);
            if (order.chunkStart(b) !== chunks) bad++;
            chunks += Math.floor(spans / batch);
            if (order.blockShards(epochOrder, b).length > shuffleShards) bad++;
          }
          if (chunks !== order.chunksPerEpoch || order.chunkStart(order.blockCount) !== chunks) bad++;
          for (let c = 0; c < chunks; c++) {
            const b = order.blockOfChunk(c);
            if (order.chunkStart(b) > c || order.chunkStart(b + 1) <= c) bad++;
          }
        }
      }
    }
  }
  t.equal(bad, 0, `${cases} orders checked`);
});

t.test('the automatic span length: long spans that waste few windows', async (t) => {
  const big: ShardLayout = { shards: 1679, shardTokens: 65536, tokens: 110e6 };
  const order = new DataOrder({ layout: big, shards: partitionShards(big, { groups: 2, sameData: false })[0], window: 32, batch: 32, seed: 1, group: 0 });
  t.equal(order.spanWindows, 33, '33 windows of 32: spans of 1057 tokens, 62 a shard');
  t.equal(order.spanTokens, 33 * 32 + 1);
  t.ok(order.droppedWindows / (order.windowsPerEpoch + order.droppedWindows) < 0.002, `drops ${order.droppedWindows}`);
  // Tiny shards (63 windows) cannot hold spans of 1024 tokens: shorter ones are taken so that chunks fill.
  const small = orderFor({ spanWindows: 0 });
  t.ok(small.spanWindows < 63 && small.chunksPerEpoch > 0, `M = ${small.spanWindows}`);
  t.throws(() => orderFor({ spanWindows: 64 }), { name: 'OrderError', message: /no chunk of 8 spans of 64 windows/ });
  t.throws(() => orderFor({ spanWindows: -1 }), /spanWindows must be 0/);
});

t.test('too little data for one chunk, or a window longer than a shard, is a clear error', async (t) => {
  t.throws(() => orderFor({ batch: 10000 }), { name: 'OrderError', message: /no chunk of 10000 spans/ });
  t.throws(() => orderFor({ window: 1024 }), /does not fit in a shard of 1024 tokens/);
});

t.test('a 6e11-token corpus needs no change: positioning deep in an epoch is quick', async (t) => {
  const big: ShardLayout = { shards: Math.ceil(6e11 / 65536), shardTokens: 65536, tokens: 6e11 };
  const shards = partitionShards(big, { groups: 8, sameData: false })[3];
  const order = new DataOrder({ layout: big, shards, window: 32, batch: 32, seed: 1, group: 3 });
  t.ok(order.windowsPerEpoch > 2e9, `${order.windowsPerEpoch} windows per epoch`);
  const start = performance.now();
  const planner = order.planner({ epoch: 4, batch: order.batchesPerEpoch - 10 });
  const last = planner.next();
  t.same([last.epoch, last.firstChunk + last.chunks, last.skip], [4, order.chunksPerEpoch, order.spanWindows - 10]);
  t.same(planner.next().firstChunk, 0, 'then the next epoch');
  t.same(planner.cursor.epoch, 5);
  t.ok(performance.now() - start < 5000, `positioned and planned in ${(performance.now() - start).toFixed(0)} ms`);
});
