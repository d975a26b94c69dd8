import t, { type Test } from 'tap';
import { open } from 'lmdb';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { startLocalS3 } from '../bench/snapshot-stores.js';
import {
  childAddress,
  DirSnapshotStore,
  encodeSnapshot,
  groupFolder,
  LmdbSnapshotStore,
  openSnapshotStore,
  putRecordOnce,
  readRecord,
  S3SnapshotStore,
  stepFileName,
  type Snapshot,
  type SnapshotInput,
  type SnapshotStore,
} from '../src/store/index.js';

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

// One s3rver for the whole file, in this file's test directory; each test's store gets a prefix of its own.
const s3Root = join(t.testdir(), 's3rver');
const s3 = await startLocalS3(s3Root);
const admin = S3SnapshotStore.open(s3.address('admin'));
const s3Client: S3Client = await admin.client();
t.teardown(async () => {
  await admin.close();
  await s3.close();
});

/** A prefix of its own for each test directory. */
const prefixOf = (root: string): string => createHash('sha1').update(root).digest('hex').slice(0, 12);
const recordName = (group: number, step: number): string => `${groupFolder(group)}/${stepFileName(step)}`;

async function getS3(key: string): Promise<Uint8Array> {
  const out = await s3Client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return out.Body!.transformToByteArray();
}
async function putS3(key: string, bytes: Uint8Array): Promise<void> {
  await s3Client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes }));
}
async function etagS3(key: string): Promise<string | undefined> {
  return s3Client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(
    (out) => out.ETag,
    (e: { name?: string }) => (e.name === 'NotFound' ? undefined : Promise.reject(e)),
  );
}

/** One backend as the shared suite sees it. */
interface Backend {
  name: string;
  uri(root: string): string;
  /** The stored record of (group, step), byte for byte. */
  record(root: string, group: number, step: number): Promise<Uint8Array>;
  /** Rewrites the stored record of (group, step) in place, as a damaged disk would. */
  overwrite(root: string, group: number, step: number, bytes: Uint8Array): Promise<void>;
}

const lmdbRecords = (root: string) => {
  const env = open({ path: join(root, 'snapshots'), compression: false, maxDbs: 4 });
  return { env, records: env.openDB<Buffer, number[]>({ name: 'records', encoding: 'binary' }) };
};
const dirFile = (root: string, group: number, step: number): string => join(root, 'snapshots', recordName(group, step));

const backends: Backend[] = [
  {
    name: 'LmdbSnapshotStore',
    uri: (root) => `lmdb:${join(root, 'snapshots')}`,
    async record(root, group, step) {
      const { env, records } = lmdbRecords(root);
      const bytes = Uint8Array.from(records.getBinary([group, step])!);
      await env.close();
      return bytes;
    },
    async overwrite(root, group, step, bytes) {
      const { env, records } = lmdbRecords(root);
      await records.put([group, step], Buffer.from(bytes));
      await env.close();
    },
  },
  {
    name: 'DirSnapshotStore',
    uri: (root) => `file:${join(root, 'snapshots')}`,
    record: async (root, group, step) => readFileSync(dirFile(root, group, step)),
    overwrite: async (root, group, step, bytes) => writeFileSync(dirFile(root, group, step), bytes),
  },
  {
    name: 'S3SnapshotStore',
    uri: (root) => s3.address(prefixOf(root)),
    record: (root, group, step) => getS3(`${prefixOf(root)}/${recordName(group, step)}`),
    overwrite: (root, group, step, bytes) => putS3(`${prefixOf(root)}/${recordName(group, step)}`, bytes),
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
const steps = async (store: SnapshotStore, group: number): Promise<number[]> =>
  (await store.list(group)).map((h) => h.step);

for (const backend of backends) {
  t.test(backend.name, async (t) => {
    /** A store in the test directory (so, for s3, under a prefix) of the test `t` alone. */
    const fresh = (t: Test): { store: SnapshotStore; root: string } => {
      const root = t.testdir();
      const store = openSnapshotStore(backend.uri(root));
      t.teardown(() => store.close());
      return { store, root };
    };

    t.test('an empty store has nothing and says so', async (t) => {
      const { store } = fresh(t);
      t.equal(await store.latest(0), undefined);
      t.equal(await store.get(0, 0), undefined);
      t.same(await store.list(), []);
      t.equal(await store.latestCommonStep(2), undefined);
      t.equal(await store.prune(0, 1), 0);
    });

    t.test('a snapshot put is the snapshot got, header and all', async (t) => {
      const { store } = fresh(t);
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
      const { store } = fresh(t);
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
      const { store } = fresh(t);
      await store.put(snap(0, 1));
      const a = await store.get(0, 1);
      a!.tensors[0].data[0] = -1;
      t.equal(firstValue(await store.get(0, 1)), 1, 'editing a copy leaves the store as it was');
      await store.put(snap(0, 1, 6, 0.5)); // the same key, new values
      t.equal(firstValue(a), -1, 'a later write leaves an earlier copy alone');
      t.equal(firstValue(await store.get(0, 1)), 1.5, 'a put at the same group and step replaces it');
    });

    t.test('a snapshot of 16 MiB and more (where LMDB reads are live views of the map) is still a copy', async (t) => {
      const { store } = fresh(t);
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
      const { store } = fresh(t);
      await store.putMany([snap(0, 100), snap(1, 100), snap(2, 100)]);
      await store.putMany([snap(0, 200), snap(1, 200), snap(2, 200)]);
      await store.putMany([snap(0, 300), snap(1, 300)]); // group 2 never got to 300
      t.equal(await store.latestCommonStep(3), 200);
      t.equal(await store.latestCommonStep(2), 300);
      t.equal(await store.latestCommonStep(4), undefined, 'group 3 has nothing');
      t.equal((await store.list()).length, 8);
    });

    t.test('prune keeps the newest per group and leaves other groups alone', async (t) => {
      const { store } = fresh(t);
      for (const step of [5, 10, 15, 20]) await store.putMany([snap(0, step), snap(1, step)]);
      t.equal(await store.prune(0, 2), 2);
      t.same(await steps(store, 0), [15, 20]);
      t.same(await steps(store, 1), [5, 10, 15, 20]);
      t.equal(await store.get(0, 5), undefined);
      t.equal(await store.prune(0, 2), 0, 'nothing more to prune');
      t.equal(await store.prune(1, 0), 4, 'keep 0 empties the group');
      t.same(await store.list(1), []);
      await t.rejects(store.prune(0, -1), { name: 'SnapshotError', kind: 'invalid' });
    });

    t.test('prune never deletes the protected step', async (t) => {
      const { store } = fresh(t);
      for (const step of [5, 10, 15, 20]) await store.put(snap(0, step));
      t.equal(await store.prune(0, 1, 10), 2, 'the newest one and the protected one stay');
      t.same(await steps(store, 0), [10, 20]);
      t.equal(firstValue(await store.get(0, 10)), 10, 'the protected snapshot still reads back whole');
      t.equal(await store.prune(0, 1, 20), 1, 'a protected step among the kept ones protects nothing more');
      t.same(await steps(store, 0), [20]);
      await store.put(snap(0, 25));
      t.equal(await store.prune(0, 0, 20), 1, 'keep 0 keeps just the protected step');
      t.same(await steps(store, 0), [20]);
      t.equal(await store.prune(0, 0, 99), 1, 'a protected step the group lacks changes nothing');
      t.same(await steps(store, 0), []);
      await t.rejects(store.prune(0, 1, -1), { name: 'SnapshotError', kind: 'invalid', message: /protect/ });
    });

    t.test('what one handle writes, another handle on the same store reads (how groups exchange)', async (t) => {
      const { store, root } = fresh(t);
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
      const { store } = fresh(t);
      const s = snap(0, 1);
      s.header.extra = { config: { notes: 'x'.repeat(200_000) } };
      await store.put(s);
      t.equal(((await store.latest(0))?.extra.config as { notes: string }).notes.length, 200_000);
    });

    t.test('a damaged record is refused with an error naming the store and the snapshot', async (t) => {
      const { store, root } = fresh(t);
      await store.put(snap(2, 30));
      const damage = async (f: (bytes: Uint8Array) => Uint8Array) =>
        backend.overwrite(root, 2, 30, f(await backend.record(root, 2, 30)));
      await damage((b) => {
        b[b.length - 3] ^= 0x40;
        return b;
      });
      t.equal((await store.latest(2))?.step, 30, 'headers are read without the body');
      await t.rejects(store.get(2, 30), {
        name: 'SnapshotError',
        kind: 'corrupt',
        message: new RegExp(`^${escape(backend.uri(root))}.*(group 2 step 30|step-000000000030).*checksum`),
      });
      await damage((b) => b.subarray(0, b.length - 100));
      await t.rejects(store.get(2, 30), { name: 'SnapshotError', kind: 'truncated' });
    });

    t.test('putRecordOnce keeps the first text; readRecord reads it back', async (t) => {
      const uri = backend.uri(t.testdir());
      t.equal(await readRecord(uri, 'config.json'), undefined, 'nothing there yet');
      t.equal(await putRecordOnce(uri, 'config.json', '{"run":"first"}'), '{"run":"first"}');
      t.equal(await putRecordOnce(uri, 'config.json', '{"run":"second"}'), '{"run":"first"}', 'the first text wins');
      t.equal(await readRecord(uri, 'config.json'), '{"run":"first"}');
      const store = openSnapshotStore(uri);
      t.teardown(() => store.close());
      await store.put(snap(0, 1));
      t.same(await steps(store, 0), [1], 'a record beside the snapshots is not one of them');
      t.equal(await readRecord(uri, 'config.json'), '{"run":"first"}');
      await t.rejects(putRecordOnce(uri, '../x', 'y'), { kind: 'invalid', message: /plain name/ });
    });
  });
}

t.test('every store holds the very same bytes for the same snapshot', async (t) => {
  const s = snap(1, 20);
  s.header.createdAt = '2024-05-06T07:08:09.000Z';
  const expected = encodeSnapshot(s);
  for (const backend of backends) {
    const root = t.testdir();
    const store = openSnapshotStore(backend.uri(root));
    await store.put(s);
    await store.close();
    t.same(Buffer.from(await backend.record(root, 1, 20)), Buffer.from(expected), backend.name);
  }
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

t.test('the object store', async (t) => {
  /** A store on a prefix of its own, and the key of a record of it. */
  const fresh = (name: string) => {
    const prefix = `${prefixOf(t.testdirName)}-${name}`;
    const open = () => {
      const store = S3SnapshotStore.open(s3.address(prefix));
      t.teardown(() => store.close());
      return store;
    };
    return { prefix, open, key: (group: number, step: number) => `${prefix}/${recordName(group, step)}` };
  };

  /**
   * Makes a store's client honour If-Match / If-None-Match on PutObject as S3 does (s3rver ignores them), so the
   * paths a stale writer takes run here. `before(key)` runs first: it lets another writer slip in.
   */
  async function honourConditions(store: S3SnapshotStore, before?: (key: string) => Promise<void>) {
    const failed: string[] = [];
    (await store.client()).middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as PutObjectCommandInput;
        if (context.commandName === 'PutObjectCommand' && (input.IfMatch || input.IfNoneMatch)) {
          await before?.(input.Key!);
          const etag = await etagS3(input.Key!);
          if (input.IfNoneMatch === '*' ? etag !== undefined : etag !== input.IfMatch) {
            failed.push(input.Key!);
            throw Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
              name: 'PreconditionFailed',
              $metadata: { httpStatusCode: 412 },
            });
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'honourConditions' },
    );
    return failed;
  }

  t.test('two handles writing one after the other on a server without conditional writes lose nothing', async (t) => {
    const { open } = fresh('sequential');
    const [a, b] = [open(), open()];
    await a.put(snap(0, 1));
    await b.put(snap(0, 2));
    await a.put(snap(0, 3));
    await b.putMany([snap(0, 4), snap(1, 4)]);
    t.same(await steps(a, 0), [1, 2, 3, 4]);
    t.same(await steps(b, 0), [1, 2, 3, 4]);
    t.equal(await a.prune(0, 2), 2);
    t.same(await steps(b, 0), [3, 4]);
    t.equal(await b.latestCommonStep(2), 4);
  });

  t.test('a writer whose manifest went stale merges on the failed condition instead of losing steps', async (t) => {
    const { prefix, open } = fresh('stale');
    const [a, b] = [open(), open()];
    await a.put(snap(0, 1));
    let slippedIn = false;
    const failed = await honourConditions(a, async (key) => {
      // After a has read the manifest (it names step 1) and before it writes it back, b publishes step 2.
      if (key.endsWith('manifest.json') && !slippedIn) {
        slippedIn = true;
        await b.put(snap(0, 2));
      }
    });
    await a.put(snap(0, 3));
    t.same(failed, [`${prefix}/group-0000/manifest.json`], "a's first manifest write lost its condition");
    t.same(await steps(a, 0), [1, 2, 3], "b's step survives a's stale write");
  });

  t.test('a record already stored is kept when it holds the same state, replaced when not', async (t) => {
    const { open } = fresh('exists');
    const store = open();
    const failed = await honourConditions(store);
    const s = snap(0, 5);
    s.header.createdAt = '2024-01-01T00:00:00.000Z';
    await store.put(s);
    s.header.createdAt = '2024-02-02T00:00:00.000Z';
    const again = await store.put(s); // a retried put: the same weights, encoded later
    t.equal(failed.length, 1, 'the second record write found the key taken');
    t.equal(again.createdAt, '2024-01-01T00:00:00.000Z', 'the stored record is kept and its header returned');
    t.equal((await store.get(0, 5))?.header.createdAt, '2024-01-01T00:00:00.000Z');
    await store.put(snap(0, 5, 6, 0.5));
    t.equal(firstValue(await store.get(0, 5)), 5.5, 'other weights at the same step replace it');
    t.same(await steps(store, 0), [5]);
  });

  t.test('a record the manifest names but the bucket lacks is corrupt; one it does not name is absent', async (t) => {
    const { open, key } = fresh('missing');
    const store = open();
    await store.put(snap(0, 1));
    await s3Client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key(0, 1) }));
    await t.rejects(store.get(0, 1), { kind: 'corrupt', message: new RegExp(`${escape(key(0, 1))}.*missing`) });
    await putS3(key(0, 2), encodeSnapshot(snap(0, 2))); // a record whose writer died before the manifest
    t.equal(await store.get(0, 2), undefined, 'a record the manifest does not name is not published');
    t.same(await steps(store, 0), [1]);
  });

  t.test('a damaged manifest is refused with an error naming its key', async (t) => {
    const { prefix, open } = fresh('bad-manifest');
    const store = open();
    await store.put(snap(0, 1));
    const key = `${prefix}/group-0000/manifest.json`;
    await putS3(key, Buffer.from('{"format":"codistill-snapshot-manifest"'));
    await t.rejects(store.latest(0), { kind: 'corrupt', message: new RegExp(`${escape(key)}: unreadable manifest`) });
    await putS3(key, Buffer.from('{"format":"codistill-snapshot-manifest","version":9,"group":0,"steps":[]}'));
    await t.rejects(store.list(), { kind: 'corrupt', message: /manifest version 9/ });
  });

  t.test('prune removes records no manifest names once they are an hour old', async (t) => {
    const { open, key } = fresh('orphans');
    const store = open();
    await store.put(snap(0, 1));
    await putS3(key(0, 2), encodeSnapshot(snap(0, 2)));
    await putS3(key(0, 3), encodeSnapshot(snap(0, 3)));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(s3Root, s3.bucket, `${key(0, 2)}._S3rver_object`), twoHoursAgo, twoHoursAgo);
    t.equal(await store.prune(0, 5), 0, 'orphans are not counted as pruned snapshots');
    t.equal(await etagS3(key(0, 2)), undefined, 'an hour-old orphan is removed');
    t.ok(await etagS3(key(0, 3)), 'a young one (a live writer may be about to name it) stays');
    t.ok(await etagS3(key(0, 1)), 'a published record stays');
  });

  t.test('a bucket that does not exist says so', async (t) => {
    const store = S3SnapshotStore.open(`s3://no-such-bucket/run?endpoint=${s3.endpoint}`);
    t.teardown(() => store.close());
    const message = /^s3:\/\/no-such-bucket\/run\?endpoint=.*bucket "no-such-bucket" does not exist/;
    await t.rejects(store.put(snap(0, 1)), { name: 'SnapshotError', kind: 'io', message });
    await t.rejects(store.list(), { name: 'SnapshotError', kind: 'io', message });
  });
});

t.test('openSnapshotStore picks the backend from the address', async (t) => {
  const root = t.testdir();
  const stores = [
    openSnapshotStore(join(root, 'plain')),
    openSnapshotStore(`lmdb:${join(root, 'l')}`),
    openSnapshotStore(`file:${join(root, 'f')}`),
    openSnapshotStore(`dir:${join(root, 'd')}`),
    openSnapshotStore(`s3://bucket/run?endpoint=${s3.endpoint}`),
    openSnapshotStore('s3:bucket/run'),
  ];
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  t.type(stores[0], LmdbSnapshotStore);
  t.type(stores[1], LmdbSnapshotStore);
  t.type(stores[2], DirSnapshotStore);
  t.type(stores[3], DirSnapshotStore);
  t.type(stores[4], S3SnapshotStore);
  t.type(stores[5], S3SnapshotStore);
  t.equal(stores[2].where, `file:${join(root, 'f')}`);
  t.equal(stores[3].where, `dir:${join(root, 'd')}`, 'the alias names the store as the caller did');
  t.equal(stores[4].where, `s3://bucket/run?endpoint=${s3.endpoint}`);
  t.throws(() => openSnapshotStore('ftp://host/run'), {
    kind: 'invalid',
    message: /unknown scheme "ftp:" \(use lmdb:PATH, file:PATH or s3:\/\/BUCKET\/PREFIX\)/,
  });
  t.throws(() => openSnapshotStore('file:'), { kind: 'invalid', message: /names no path/ });
  t.throws(() => openSnapshotStore('s3://'), { kind: 'invalid', message: /names no bucket/ });
  t.throws(() => openSnapshotStore('s3://b/p?endpont=http://x'), {
    kind: 'invalid',
    message: /unknown parameter "endpont"/,
  });
});

t.test('s3 addresses parse into bucket, prefix and client settings', async (t) => {
  const { parseS3Address } = await import('../src/store/index.js');
  t.same(parseS3Address('s3://bkt/a/b/?endpoint=http://127.0.0.1:4569&region=eu-west-1'), {
    bucket: 'bkt',
    prefix: 'a/b',
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:4569',
    forcePathStyle: true,
  });
  t.match(parseS3Address('s3:bkt'), { bucket: 'bkt', prefix: '', endpoint: undefined, forcePathStyle: false });
  t.match(parseS3Address('s3://bkt/p?endpoint=https://r2.example&pathStyle=0'), { forcePathStyle: false });
  t.throws(() => parseS3Address('s3://bkt?endpoint=ftp://x'), { kind: 'invalid', message: /not an http/ });
});

t.test('childAddress names a sub-store of the same kind', async (t) => {
  t.equal(childAddress('lmdb:/a/b', 'name'), 'lmdb:/a/b/name');
  t.equal(childAddress('file:/a', 'name'), 'file:/a/name');
  t.equal(childAddress('dir:/a/', 'name'), 'dir:/a/name');
  t.equal(childAddress('/a', 'name'), 'lmdb:/a/name');
  t.equal(childAddress('s3://bkt/pre?endpoint=x', 'name'), 's3://bkt/pre/name?endpoint=x');
  t.equal(childAddress('s3://bkt/pre/', 'name'), 's3://bkt/pre/name');
  t.equal(childAddress('s3://bkt', 'name'), 's3://bkt/name');
  t.equal(childAddress('s3:bkt/pre', 'name'), 's3:bkt/pre/name');
  t.throws(() => childAddress('lmdb:/a', 'x/y'), { kind: 'invalid', message: /plain name/ });
  t.throws(() => childAddress('ftp:/a', 'x'), { kind: 'invalid', message: /unknown scheme/ });
  // A sub-store is a store of its own: snapshots put there are not the parent's.
  const root = t.testdir();
  for (const parent of [`lmdb:${join(root, 'l')}`, `file:${join(root, 'f')}`, s3.address(prefixOf(root))]) {
    const [outer, inner] = [openSnapshotStore(parent), openSnapshotStore(childAddress(parent, 'teacher'))];
    t.teardown(() => Promise.all([outer.close(), inner.close()]));
    await inner.put(snap(0, 1));
    t.same(await outer.list(), [], parent);
    t.same(await steps(inner, 0), [1], parent);
  }
});
