import t from 'tap';
import { open } from 'lmdb';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DirSnapshotStore,
  LmdbSnapshotStore,
  openSnapshotStore,
  type Snapshot,
  type SnapshotInput,
  type SnapshotStore,
} from '../src/store/index.js';

const escape = (s: string): string => s.replace(/[/\\.]/g, '\\$&');

/** One backend as the shared suite sees it. */
interface Backend {
  name: string;
  uri(root: string): string;
  /** Rewrites the stored record of (group, step) in place, as a damaged disk would. */
  damage(root: string, group: number, step: number, f: (bytes: Uint8Array) => Uint8Array): Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'LmdbSnapshotStore',
    uri: (root) => `lmdb:${join(root, 'snapshots')}`,
    async damage(root, group, step, f) {
      const env = open({ path: join(root, 'snapshots'), compression: false, maxDbs: 4 });
      const records = env.openDB<Buffer, number[]>({ name: 'records', encoding: 'binary' });
      await records.put([group, step], Buffer.from(f(Uint8Array.from(records.getBinary([group, step])!))));
      await env.close();
    },
  },
  {
    name: 'DirSnapshotStore',
    uri: (root) => `dir:${join(root, 'snapshots')}`,
    async damage(root, group, step, f) {
      const [g, s] = [String(group).padStart(4, '0'), String(step).padStart(12, '0')];
      const file = join(root, 'snapshots', `group-${g}`, `step-${s}.snap`);
      writeFileSync(file, f(readFileSync(file)));
    },
  },
];

/** A small snapshot whose values are a function of (group, step, seed): easy to check, deterministic. */
function snap(group: number, step: number, size = 6, seed = 0): SnapshotInput {
  const w = Float32Array.from({ length: size }, (_, i) => group * 1000 + step + i / 8 + seed);
  return {
    header: { runId: 'run', group, step, model: 'lm', extra: { cursor: step * 10, config: { groups: 3 } } },
    tensors: [
      { name: 'weights/w', shape: [size], data: w },
      { name: 'optimizer/t', shape: [1], data: Int32Array.of(step) },
    ],
  };
}

const firstValue = (s: Snapshot | undefined): number | undefined => s?.tensors[0].data[0];

for (const backend of backends) {
  t.test(backend.name, async (t) => {
    const fresh = (): { store: SnapshotStore; root: string } => {
      const root = t.testdir();
      const store = openSnapshotStore(backend.uri(root));
      t.teardown(() => store.close());
      return { store, root };
    };

    t.test('an empty store has nothing and says so', async (t) => {
      const { store } = fresh();
      t.equal(await store.latest(0), undefined);
      t.equal(await store.get(0, 0), undefined);
      t.same(await store.list(), []);
      t.equal(await store.latestCommonStep(2), undefined);
      t.equal(await store.prune(0, 1), 0);
    });

    t.test('a snapshot put is the snapshot got, header and all', async (t) => {
      const { store } = fresh();
      const written = await store.put(snap(1, 50));
      const got = await store.get(1, 50);
      t.same(got?.header, written);
      t.same(got?.tensors.map((x) => Array.from(x.data)), snap(1, 50).tensors.map((x) => Array.from(x.data)));
      t.same(await store.latest(1), written);
      t.same(await store.list(), [written]);
      t.equal(await store.get(1, 51), undefined);
      t.equal(await store.get(0, 50), undefined);
    });

    t.test('list and latest order by (group, step) numerically', async (t) => {
      const { store } = fresh();
      const keys = [[10, 9], [2, 100], [0, 10], [2, 9], [0, 2], [10, 1e12], [0, 100]];
      for (const [g, s] of keys) await store.put(snap(g, s));
      const order = (hs: { group: number; step: number }[]) => hs.map((h) => [h.group, h.step]);
      t.same(order(await store.list()), [[0, 2], [0, 10], [0, 100], [2, 9], [2, 100], [10, 9], [10, 1e12]]);
      t.same(order(await store.list(2)), [[2, 9], [2, 100]]);
      t.equal((await store.latest(0))?.step, 100);
      t.equal((await store.latest(10))?.step, 1e12);
      t.equal(await store.latest(1), undefined);
    });

    t.test('get returns private copies that later writes and edits do not touch', async (t) => {
      const { store } = fresh();
      await store.put(snap(0, 1));
      const a = await store.get(0, 1);
      a!.tensors[0].data[0] = -1;
      t.equal(firstValue(await store.get(0, 1)), 1, 'editing a copy leaves the store as it was');
      await store.put(snap(0, 1, 6, 0.5)); // the same key, new values
      t.equal(firstValue(a), -1, 'a later write leaves an earlier copy alone');
      t.equal(firstValue(await store.get(0, 1)), 1.5, 'a put at the same group and step replaces it');
    });

    t.test('a snapshot of 16 MiB and more (where LMDB reads are live views of the map) is still a copy', async (t) => {
      const { store } = fresh();
      const n = (17 << 20) / 4;
      await store.put(snap(0, 7, n));
      const big = await store.get(0, 7);
      await store.put(snap(0, 7, n, 2));
      await store.put(snap(0, 8, n, 3));
      const w = big!.tensors[0].data;
      t.equal(w.length, n);
      t.equal(w[0], 7);
      t.equal(w[n - 1], 7 + (n - 1) / 8);
      t.equal(firstValue(await store.get(0, 7)), 9);
    });

    t.test('putMany writes every group; latestCommonStep finds the newest step they all have', async (t) => {
      const { store } = fresh();
      await store.putMany([snap(0, 100), snap(1, 100), snap(2, 100)]);
      await store.putMany([snap(0, 200), snap(1, 200), snap(2, 200)]);
      await store.putMany([snap(0, 300), snap(1, 300)]); // group 2 never got to 300
      t.equal(await store.latestCommonStep(3), 200);
      t.equal(await store.latestCommonStep(2), 300);
      t.equal(await store.latestCommonStep(4), undefined, 'group 3 has nothing');
      t.equal((await store.list()).length, 8);
    });

    t.test('prune keeps the newest per group and leaves other groups alone', async (t) => {
      const { store } = fresh();
      for (const step of [5, 10, 15, 20]) await store.putMany([snap(0, step), snap(1, step)]);
      t.equal(await store.prune(0, 2), 2);
      t.same((await store.list(0)).map((h) => h.step), [15, 20]);
      t.same((await store.list(1)).map((h) => h.step), [5, 10, 15, 20]);
      t.equal(await store.get(0, 5), undefined);
      t.equal(await store.prune(0, 2), 0, 'nothing more to prune');
      t.equal(await store.prune(1, 0), 4, 'keep 0 empties the group');
      t.same(await store.list(1), []);
      await t.rejects(store.prune(0, -1), { name: 'SnapshotError', kind: 'invalid' });
    });

    t.test('what one handle writes, another handle on the same store reads (how groups exchange)', async (t) => {
      const { store, root } = fresh();
      const reader = openSnapshotStore(backend.uri(root));
      t.teardown(() => reader.close());
      await store.put(snap(3, 40));
      t.equal((await reader.latest(3))?.step, 40);
      t.equal(firstValue(await reader.get(3, 40)), 3040);
    });

    t.test('snapshots outlive the handle that wrote them', async (t) => {
      const root = t.testdir();
      const first = openSnapshotStore(backend.uri(root));
      await first.put(snap(0, 9));
      await first.close();
      const second = openSnapshotStore(backend.uri(root));
      t.teardown(() => second.close());
      t.equal(firstValue(await second.get(0, 9)), 9);
    });

    t.test('a header larger than a first read (a big resolved config) still lists', async (t) => {
      const { store } = fresh();
      const s = snap(0, 1);
      s.header.extra = { config: { notes: 'x'.repeat(200_000) } };
      await store.put(s);
      t.equal(((await store.latest(0))?.extra.config as { notes: string }).notes.length, 200_000);
    });

    t.test('a damaged record is refused with an error naming the store and the snapshot', async (t) => {
      const { store, root } = fresh();
      await store.put(snap(2, 30));
      await backend.damage(root, 2, 30, (b) => {
        b[b.length - 3] ^= 0x40;
        return b;
      });
      t.equal((await store.latest(2))?.step, 30, 'headers are read without the body');
      await t.rejects(store.get(2, 30), {
        name: 'SnapshotError',
        kind: 'corrupt',
        message: new RegExp(`^${escape(backend.uri(root))}.*(group 2 step 30|step-000000000030).*checksum`),
      });
      await backend.damage(root, 2, 30, (b) => b.subarray(0, b.length - 100));
      await t.rejects(store.get(2, 30), { name: 'SnapshotError', kind: 'truncated' });
    });
  });
}

t.test('both stores hold the very same bytes for the same snapshot', async (t) => {
  const root = t.testdir();
  const s = snap(1, 20);
  s.header.createdAt = '2024-05-06T07:08:09.000Z';
  const lmdb = openSnapshotStore(`lmdb:${join(root, 'l')}`);
  const dir = openSnapshotStore(`dir:${join(root, 'd')}`);
  await Promise.all([lmdb.put(s), dir.put(s)]);
  await Promise.all([lmdb.close(), dir.close()]);
  const env = open({ path: join(root, 'l'), compression: false, maxDbs: 4 });
  const fromLmdb = env.openDB<Buffer, number[]>({ name: 'records', encoding: 'binary' }).getBinary([1, 20]);
  t.same(fromLmdb, readFileSync(join(root, 'd', 'group-0001', 'step-000000000020.snap')));
  await env.close();
});

t.test('the directory store ignores temp files and prune clears those a dead writer left', async (t) => {
  const root = t.testdir();
  const store = DirSnapshotStore.open(root);
  await store.put(snap(0, 1));
  const stale = join(root, 'group-0000', '.step-000000000002.snap.123-abcd.tmp');
  const fresh = join(root, 'group-0000', '.step-000000000003.snap.456-ef01.tmp');
  writeFileSync(stale, 'half a snapshot');
  writeFileSync(fresh, 'being written');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  utimesSync(stale, twoHoursAgo, twoHoursAgo);
  t.same((await store.list(0)).map((h) => h.step), [1]);
  t.equal(await store.prune(0, 5), 0);
  t.notOk(existsSync(stale), 'a temp file hours old is removed');
  t.ok(existsSync(fresh), 'one a live writer may still be writing is kept');
});

t.test('openSnapshotStore picks the backend from the address', async (t) => {
  const root = t.testdir();
  const stores = [
    openSnapshotStore(join(root, 'plain')),
    openSnapshotStore(`lmdb:${join(root, 'l')}`),
    openSnapshotStore(`dir:${join(root, 'd')}`),
  ];
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  t.type(stores[0], LmdbSnapshotStore);
  t.type(stores[1], LmdbSnapshotStore);
  t.type(stores[2], DirSnapshotStore);
  t.equal(stores[2].where, `dir:${join(root, 'd')}`);
  t.throws(() => openSnapshotStore('s3://bucket/run'), { kind: 'invalid', message: /unknown scheme "s3:"/ });
  t.throws(() => openSnapshotStore('dir:'), { kind: 'invalid', message: /names no path/ });
});
