/**
 * A damaged LMDB environment is refused with a DamagedStoreError naming its data file, before lmdb-js maps it:
 * mapped, such a file kills the process in native code (a segmentation fault for damaged meta pages, a bus error for
 * a file cut short), which no JavaScript can catch. The environments here are written by the project's own stores
 * and then damaged byte by byte; opens that could crash run in child processes, so this test process survives them.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { open } from 'lmdb';
import { openSnapshotStore, type SnapshotInput } from '../src/store/index.js';
import { checkLmdbEnvironment, DamagedStoreError } from '../src/store/lmdb-check.js';
import { type FieldSpec, RecordStore, RecordWriter, storedMeta } from '../src/records/store.js';
import { CORPUS_FORMAT, CORPUS_FORMAT_VERSION, Corpus, CorpusWriter } from '../src/workloads/lm/corpus/store.js';
import { inspectStore } from '../src/workloads/lm/corpus/plan.js';
import { Random } from '../src/util/random.js';

const storeModule = pathToFileURL(fileURLToPath(new URL('../src/store/index.ts', import.meta.url))).href;
const lmdbModule = import.meta.resolve('lmdb');

// The layout this LMDB writes (little-endian): a 24-byte page header, then in pages 0 and 1 the meta. Offsets from
// the start of a meta page; lmdb-js keeps a third copy of the meta (the last flushed one) at page size / 2.
const MAGIC = 24;
const PSIZE = 48;
const MAIN_ROOT = 136;
const LAST_PG = 144;
const TXNID = 152;
const REMEDY = '(restore it from a copy, or delete the folder to start it again)';
const INGEST_REMEDY = '(restore it from a copy, or re-run `codistill ingest --force` to build it again)';

const snap = (step: number, floats: number, rng: Random): SnapshotInput => ({
  header: { runId: 'r', group: 0, step, model: 'lm' },
  tensors: [{ name: 'weights/w', shape: [floats], data: Float32Array.from({ length: floats }, () => rng.float()) }],
});

/** A snapshot store of two seeded snapshots (about 80 KB each, on overflow pages); returns its data file. */
async function snapshotStore(dir: string, seed = 1): Promise<string> {
  const rng = new Random(seed);
  const store = openSnapshotStore(`lmdb:${dir}`);
  await store.put(snap(1, 20_000, rng));
  await store.put(snap(2, 20_000, rng));
  await store.close();
  return join(dir, 'data.mdb');
}

interface Metas {
  size: number;
  pageSize: number;
  /** Where each meta starts: page 0, page 1, the flushed copy. */
  at: number[];
  last: bigint[];
  txnid: bigint[];
}

function metas(file: string): Metas {
  const b = readFileSync(file);
  const pageSize = b.readUInt32LE(PSIZE);
  const at = [0, pageSize, pageSize / 2];
  return {
    size: b.length,
    pageSize,
    at,
    last: at.map((o) => b.readBigUInt64LE(o + LAST_PG)),
    txnid: at.map((o) => b.readBigUInt64LE(o + TXNID)),
  };
}

function edit(file: string, change: (b: Buffer) => void): void {
  const b = readFileSync(file);
  change(b);
  writeFileSync(file, b);
}

const garbage = (n: number, seed: number): Buffer => {
  const rng = new Random(seed);
  return Buffer.from(Array.from({ length: n }, () => rng.int(256)));
};

/** Runs an ES module script in a child Node (with tsx, so it can import the project's TypeScript). */
function child(script: string): ReturnType<typeof spawnSync> & { stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  }) as ReturnType<typeof spawnSync> & { stdout: string; stderr: string };
}

const damaged = (file: string, message: RegExp) => ({ name: 'DamagedStoreError', file, message });

t.test('an intact snapshot store passes the check and opens with its snapshots', async (t) => {
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  t.doesNotThrow(() => checkLmdbEnvironment(dir));
  const store = openSnapshotStore(`lmdb:${dir}`);
  t.teardown(() => store.close());
  t.same((await store.list(0)).map((h) => h.step), [1, 2]);
  t.equal((await store.get(0, 2))?.tensors[0].data.length, 20_000);
});

t.test('an empty folder, a missing folder or a missing data.mdb is fine: a new store is made', async (t) => {
  const dir = t.testdir({ empty: {} });
  t.doesNotThrow(() => checkLmdbEnvironment(join(dir, 'empty')));
  t.doesNotThrow(() => checkLmdbEnvironment(join(dir, 'missing')));
  t.doesNotThrow(() => checkLmdbEnvironment(join(dir, 'missing'), { readOnly: true }));
  const store = openSnapshotStore(`lmdb:${join(dir, 'empty')}`);
  await store.put(snap(1, 10, new Random(1)));
  t.same((await store.list(0)).map((h) => h.step), [1]);
  await store.close();
  t.doesNotThrow(() => checkLmdbEnvironment(join(dir, 'empty')), 'the new store passes the check');
});

t.test('an empty data.mdb is started again by a writer and refused to a reader', async (t) => {
  // lmdb-js writes both meta pages as soon as it creates a file: an empty one is a writer killed at its very start.
  const dir = t.testdir({ snapshots: { 'data.mdb': '' }, records: { 'data.mdb': '' } });
  const store = openSnapshotStore(`lmdb:${join(dir, 'snapshots')}`);
  await store.put(snap(1, 10, new Random(1)));
  t.same((await store.list(0)).map((h) => h.step), [1]);
  await store.close();
  const file = join(dir, 'records', 'data.mdb');
  t.throws(() => RecordStore.open(join(dir, 'records')), damaged(file, /data\.mdb is empty \(0 bytes\)/));
});

t.test('zeroed meta pages: the open throws a DamagedStoreError naming data.mdb', async (t) => {
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const { pageSize } = metas(file);
  edit(file, (b) => b.fill(0, 0, 2 * pageSize));
  const err = t.throws(
    () => openSnapshotStore(`lmdb:${dir}`),
    damaged(file, /damaged LMDB meta pages \(meta page 0: no LMDB magic/),
  );
  t.ok(err instanceof DamagedStoreError);
  t.ok((err as Error).message.startsWith(`${file}: `), 'the message starts with the full path of data.mdb');
  t.ok((err as Error).message.endsWith(REMEDY), 'and ends with what to do');
});

t.test('garbage over both meta pages: the open throws a DamagedStoreError', async (t) => {
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const { pageSize } = metas(file);
  edit(file, (b) => garbage(2 * pageSize, 7).copy(b, 0));
  t.throws(() => openSnapshotStore(`lmdb:${dir}`), damaged(file, /damaged LMDB meta pages/));
});

t.test('a child process that opens a damaged store exits normally with the error printed, not by a signal', async (t) => {
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const { pageSize } = metas(file);
  edit(file, (b) => b.fill(0, 0, 2 * pageSize));
  const c = child(`
const { openSnapshotStore } = await import(${JSON.stringify(storeModule)});
openSnapshotStore(${JSON.stringify(`lmdb:${dir}`)});
console.log('opened');
`);
  t.equal(c.signal, null, 'not killed by a signal');
  t.equal(c.status, 1, 'exits with the uncaught error');
  t.match(c.stderr, 'DamagedStoreError');
  t.match(c.stderr, `${file}: damaged LMDB meta pages`);
  t.notMatch(c.stdout, 'opened');
});

t.test('without the check lmdb-js dies by a signal on such files (why the check is there)', async (t) => {
  const cases: [string, (b: Buffer, pageSize: number) => Buffer][] = [
    ['both meta pages zeroed', (b, ps) => b.fill(0, 0, 2 * ps)],
    ['meta page 0 zeroed', (b, ps) => b.fill(0, 0, ps)],
    ['cut to its two meta pages', (b, ps) => b.subarray(0, 2 * ps)],
  ];
  for (const [what, damage] of cases) {
    const dir = join(t.testdir(), what.replace(/ /g, '-'));
    const file = await snapshotStore(dir);
    const { pageSize } = metas(file);
    writeFileSync(file, damage(readFileSync(file), pageSize));
    t.throws(() => checkLmdbEnvironment(dir), damaged(file, /./), `${what}: the check refuses it`);
    const c = child(`
const { open } = await import(${JSON.stringify(lmdbModule)});
const env = open({ path: ${JSON.stringify(dir)}, compression: false, maxDbs: 4 });
const db = env.openDB({ name: 'records', encoding: 'binary' });
for (const { value } of db.getRange({})) value.length;
console.log('survived');
`);
    t.not(c.signal, null, `${what}: lmdb-js alone is killed (${c.signal ?? `exit ${c.status}: ${c.stdout}${c.stderr}`})`);
  }
});

t.test('only meta page 1 zeroed: the store still opens and works, in a child process', async (t) => {
  // LMDB picks page 1 by its transaction id alone; a zeroed one (id 0) is never picked and page 0 or lmdb-js'
  // flushed copy serves. A writer then rewrites page 1, and the store goes on working.
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const { pageSize } = metas(file);
  edit(file, (b) => b.fill(0, pageSize, 2 * pageSize));
  t.doesNotThrow(() => checkLmdbEnvironment(dir));
  const c = child(`
const { openSnapshotStore } = await import(${JSON.stringify(storeModule)});
const uri = ${JSON.stringify(`lmdb:${dir}`)};
let store = openSnapshotStore(uri);
const before = (await store.list(0)).map((h) => h.step);
const lengths = [];
for (const step of before) lengths.push((await store.get(0, step)).tensors[0].data.length);
await store.put({
  header: { runId: 'r', group: 0, step: 3, model: 'lm' },
  tensors: [{ name: 'weights/w', shape: [100], data: new Float32Array(100).fill(3) }],
});
await store.close();
store = openSnapshotStore(uri);
const after = (await store.list(0)).map((h) => h.step);
const third = (await store.get(0, 3)).tensors[0].data[0];
await store.close();
console.log(JSON.stringify({ before, lengths, after, third }));
`);
  t.equal(c.signal, null, 'not killed by a signal');
  t.equal(c.status, 0, c.stderr);
  type Report = { before: number[]; lengths: number[]; after: number[]; third: number };
  const r = JSON.parse(c.stdout.trim().split('\n').at(-1) ?? '{}') as Report;
  t.ok(r.before.length >= 1 && r.before.every((s) => s === 1 || s === 2), `reads the snapshots it kept (${r.before})`);
  t.same(r.lengths, r.before.map(() => 20_000), 'whole');
  t.same(r.after, [...r.before, 3], 'and takes a new one');
  t.equal(r.third, 3);
  t.doesNotThrow(() => checkLmdbEnvironment(dir), 'the store lmdb-js left passes the check');
});

t.test('only meta page 0 zeroed: refused, since this LMDB cannot open a file from page 1 alone', async (t) => {
  // LMDB reads the page size and first meta from page 0 and refuses the file without it; lmdb-js dies on that
  // refusal with SIGSEGV (see the test above), so the check refuses it first, however sound page 1 is.
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const { pageSize } = metas(file);
  edit(file, (b) => b.fill(0, 0, pageSize));
  t.throws(
    () => openSnapshotStore(`lmdb:${dir}`),
    damaged(file, /damaged LMDB meta pages \(meta page 0: .*whatever page 1 holds\)/),
  );
});

t.test('garbage over meta page 1 only: refused, since a reader would take it (and crash)', async (t) => {
  // LMDB does not check page 1's magic: it takes page 1 whenever its transaction id is the newest, so a garbage
  // page 1 is used as a meta, and a read-only lmdb-js dies on it with SIGSEGV (seen).
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const { pageSize } = metas(file);
  edit(file, (b) => garbage(pageSize, 11).copy(b, pageSize));
  t.throws(
    () => openSnapshotStore(`lmdb:${dir}`),
    damaged(file, /damaged LMDB meta pages \(meta page 1, transaction \d+: page size \d+, where page 0 has \d+\)/),
  );
});

t.test('a data.mdb cut to half its size or to its two meta pages is refused, naming both sizes', async (t) => {
  for (const [what, cut] of [
    ['half', (m: Metas) => Math.floor(m.size / 2)],
    ['two meta pages', (m: Metas) => 2 * m.pageSize],
  ] as const) {
    const dir = join(t.testdir(), what.replace(/ /g, '-'));
    const file = await snapshotStore(dir);
    const m = metas(file);
    const size = cut(m);
    truncateSync(file, size);
    const err = t.throws(() => openSnapshotStore(`lmdb:${dir}`), damaged(file, /is truncated/), what) as Error;
    const got = /^(.*) is truncated: LMDB records (\d+) pages \((\d+) bytes\) but the file has (\d+) bytes/.exec(err.message);
    t.ok(got, `${what}: ${err.message}`);
    if (!got) continue;
    t.equal(got[1], file, 'it names the file');
    t.ok(m.last.some((l) => l + 1n === BigInt(got[2])), 'the pages LMDB records');
    t.equal(Number(got[3]), Number(got[2]) * m.pageSize, 'in bytes');
    t.equal(Number(got[4]), size, 'the bytes the file has');
    t.ok(err.message.endsWith(REMEDY));
  }
});

t.test('a file shorter than its last page is sound when the pages past its end were freed unwritten', async (t) => {
  // A transaction that allocates pages past the end of the file and frees them again before it commits never writes
  // them: the file ends before the last page the meta records, and LMDB never reads those pages. The second of two
  // such transactions cannot reuse the pages the first freed (the previous snapshot keeps them), so it allocates
  // past the end.
  const dir = join(t.testdir(), 'env');
  const env = open({ path: dir, compression: false, maxDbs: 4, noSubdir: false });
  const db = env.openDB<Buffer, string>({ name: 'db', encoding: 'binary' });
  db.putSync('kept', Buffer.alloc(1000, 1));
  for (let round = 0; round < 2; round++) {
    env.transactionSync(() => {
      for (let i = 0; i < 2000; i++) db.putSync(`k${i}`, Buffer.alloc(1000, 2));
      for (let i = 0; i < 2000; i++) db.removeSync(`k${i}`);
    });
  }
  await env.close();
  const m = metas(join(dir, 'data.mdb'));
  const newest = m.txnid[0] > m.txnid[1] ? 0 : 1;
  const recorded = (m.last[newest] + 1n) * BigInt(m.pageSize);
  t.ok(recorded > BigInt(m.size), `the file (${m.size} bytes) ends before page ${m.last[newest]}`);
  t.doesNotThrow(() => checkLmdbEnvironment(dir, { noSubdir: false, readOnly: true }));
  const again = open({ path: dir, compression: false, maxDbs: 4, noSubdir: false, readOnly: true });
  t.same(again.openDB<Buffer, string>({ name: 'db', encoding: 'binary' }).getBinary('kept'), Buffer.alloc(1000, 1));
  await again.close();
});

t.test('a root page number past the last page, or on a page that is no tree page, is refused', async (t) => {
  const dir = join(t.testdir(), 'past');
  const file = await snapshotStore(dir);
  const m = metas(file);
  const past = m.last.reduce((a, b) => (a > b ? a : b)) + 1000n;
  edit(file, (b) => m.at.forEach((o) => b.writeBigUInt64LE(past, o + MAIN_ROOT)));
  t.throws(
    () => openSnapshotStore(`lmdb:${dir}`),
    damaged(
      file,
      new RegExp(`damaged LMDB database: the root of the main database of meta page \\d is page ${past}, outside pages 2 to \\d+`),
    ),
  );

  const dir2 = join(t.testdir(), 'overflow');
  const file2 = await snapshotStore(dir2);
  const m2 = metas(file2);
  const b2 = readFileSync(file2);
  // The first overflow page (flags 0x04): a snapshot's bytes, not a branch or leaf page.
  let overflow = -1;
  for (let p = 2; p * m2.pageSize < b2.length && overflow < 0; p++) {
    if (b2.readUInt16LE(p * m2.pageSize + 18) === 0x04) overflow = p;
  }
  t.ok(overflow > 0, `page ${overflow} is an overflow page`);
  m2.at.forEach((o) => b2.writeBigUInt64LE(BigInt(overflow), o + MAIN_ROOT));
  writeFileSync(file2, b2);
  t.throws(
    () => openSnapshotStore(`lmdb:${dir2}`),
    damaged(file2, new RegExp(`page ${overflow} \\(the root of the main database of meta page \\d\\) is not a branch or leaf page`)),
  );
});

t.test('a data.mdb that is not a regular file, or cannot be read, is refused naming it', async (t) => {
  const dir = t.testdir({ folder: { 'data.mdb': {} } });
  const file = join(dir, 'folder', 'data.mdb');
  t.throws(
    () => openSnapshotStore(`lmdb:${join(dir, 'folder')}`),
    damaged(file, /data\.mdb is not a regular file \(it is a directory\)/),
  );

  const fifoDir = join(dir, 'fifo');
  mkdirSync(fifoDir);
  const made = spawnSync('mkfifo', [join(fifoDir, 'data.mdb')]);
  if (made.status === 0) {
    const fifo = join(fifoDir, 'data.mdb');
    t.throws(() => checkLmdbEnvironment(fifoDir), damaged(fifo, /is not a regular file \(it is a FIFO\)/), 'a FIFO, without hanging');
  } else t.comment('no mkfifo here: FIFO case skipped');

  const locked = join(dir, 'locked');
  const lockedFile = await snapshotStore(locked);
  chmodSync(lockedFile, 0);
  if (process.getuid?.() === 0) t.comment('running as root, who reads any file: EACCES case skipped');
  else t.throws(() => checkLmdbEnvironment(locked), damaged(lockedFile, /data\.mdb cannot be read \(EACCES: permission denied\)/));
});

t.test('a store path with an extension is the data file itself, as lmdb-js makes it', async (t) => {
  const file = join(t.testdir(), 'snapshots.mdb');
  const store = openSnapshotStore(`lmdb:${file}`);
  await store.put(snap(1, 10, new Random(1)));
  await store.close();
  t.ok(statSync(file).isFile(), 'lmdb-js made one file');
  t.doesNotThrow(() => checkLmdbEnvironment(file));
  edit(file, (b) => b.fill(0, 0, 64));
  t.throws(
    () => openSnapshotStore(`lmdb:${file}`),
    damaged(file, /snapshots\.mdb: damaged LMDB meta pages .*delete it and its -lock file/),
  );
});

const FIELDS: FieldSpec[] = [{ name: 'x', dtype: 'int32', width: 2 }];

t.test('a damaged record store is refused on open, and an ingest sees a store to rebuild', async (t) => {
  const path = join(t.testdir(), 'records');
  const writer = RecordWriter.create(path, { kind: 'test', fields: FIELDS, shardRows: 4, source: {} });
  for (let i = 0; i < 10; i++) writer.append('train', { x: [i, -i] });
  await writer.commit();
  RecordStore.open(path).close();
  const file = join(path, 'data.mdb');
  truncateSync(file, 2 * metas(file).pageSize);
  const err = t.throws(() => RecordStore.open(path), damaged(file, /is truncated/)) as Error;
  t.ok(err.message.endsWith(INGEST_REMEDY), err.message);
  t.match(storedMeta(path), { reason: /is truncated/ }, 'what ingest reads: a reason to rebuild with --force');
});

t.test('a damaged corpus is refused on open, and an ingest sees a store to rebuild', async (t) => {
  const path = join(t.testdir(), 'corpus');
  const w = new CorpusWriter(path);
  w.putShard('train', 0, new Uint16Array(4096).map((_, i) => i % 100));
  await w.commit({
    format: CORPUS_FORMAT,
    version: CORPUS_FORMAT_VERSION,
    tokenizer: { kind: 'bpe', library: 'synthetic', vocabSize: 100, json: '{}', sha256: '', eod: 0 },
    tokenDtype: 'uint16',
    shardTokens: 4096,
    splits: { train: { shards: 1, tokens: 4096, documents: 1 }, validation: { shards: 0, tokens: 0, documents: 0 } },
    inputs: { fingerprint: 'f', files: [] },
    split: { seed: 0, validationFraction: 0 },
    createdAt: '',
  });
  Corpus.open(path).close();
  const file = join(path, 'data.mdb');
  edit(file, (b) => b.fill(0, 0, 2 * metas(file).pageSize));
  const err = t.throws(() => Corpus.open(path), damaged(file, /damaged LMDB meta pages/)) as Error;
  t.ok(err.message.endsWith(INGEST_REMEDY), err.message);
  t.match(inspectStore(path), { kind: 'unreadable', reason: /damaged LMDB meta pages/ });
});

t.test('the layout the check reads is the one lmdb-js writes', async (t) => {
  const dir = join(t.testdir(), 'snapshots');
  const file = await snapshotStore(dir);
  const b = readFileSync(file);
  const m = metas(file);
  t.equal(b.readUInt32LE(MAGIC), 0xbeefc0de, 'magic after the 24-byte page header');
  t.equal(b.readUInt32LE(MAGIC + 4) & 0xffff, 2, 'data format version 2');
  t.equal(b.readUInt16LE(18), 0x08, 'page 0 is marked as a meta page');
  t.equal(b.readBigUInt64LE(m.pageSize), 1n, 'page 1 names itself');
  t.ok([4096, 8192, 16384, 65536].includes(m.pageSize), `page size ${m.pageSize}`);
  t.ok(m.size % m.pageSize === 0, 'the file is whole pages');
  t.ok(m.txnid[0] > 0n && m.txnid[1] > 0n, 'both meta pages committed');
});
