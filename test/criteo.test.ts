import t from 'tap';
import { appendFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RecordStore } from '../src/records/store.js';
import { Random } from '../src/util/random.js';
import { clickDataSchema, type ClickDataConfig } from '../src/workloads/click/config.js';
import {
  criteoBucket,
  type CriteoOptions,
  CriteoRowError,
  denseValue,
  readCriteo,
} from '../src/workloads/click/criteo.js';
import { ingestClick } from '../src/workloads/click/ingest.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

const OPTIONS: CriteoOptions = { buckets: 1 << 18, hashSeed: 0, malformed: 'fail' };

/** A Criteo line: label, 13 integer fields, 26 categorical fields (missing ones empty). */
const criteo = (label: string | number, ints: (number | string)[] = [], cats: string[] = []): string =>
  [String(label), ...Array.from({ length: 13 }, (_, i) => String(ints[i] ?? '')), ...Array.from({ length: 26 }, (_, i) => cats[i] ?? '')].join('\t');

/** Seeded Criteo-like lines: small and negative integers, 8-digit hex categoricals, some fields empty. */
function randomLines(n: number, seed: number): string[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () =>
    criteo(
      rng.int(4) === 0 ? 1 : 0,
      Array.from({ length: 13 }, () => (rng.int(5) === 0 ? '' : rng.int(2000) - 3)),
      Array.from({ length: 26 }, () => (rng.int(6) === 0 ? '' : rng.uint32().toString(16).padStart(8, '0'))),
    ),
  );
}

interface Parsed {
  line: number;
  label: number;
  dense: number[];
  categorical: number[];
}

async function parse(path: string, o: Partial<CriteoOptions> = {}) {
  const rows: Parsed[] = [];
  const stats = await readCriteo(path, { ...OPTIONS, ...o }, (row, line) =>
    rows.push({ line, label: row.label[0], dense: [...row.dense], categorical: [...row.categorical] }),
  );
  return { rows, stats };
}

/** What a row should parse to, computed the plain way from its text. */
function expected(text: string, line: number, o = OPTIONS): Parsed {
  const f = text.split('\t');
  return {
    line,
    label: Number(f[0]),
    dense: f.slice(1, 14).map((x) => Math.fround(x === '' ? 0 : denseValue(Number(x)))),
    categorical: f.slice(14).map((x, i) => criteoBucket(x, i, o)),
  };
}

function file(t: Test, name: string, text: string | Buffer): string {
  const path = join(t.testdir(), name);
  writeFileSync(path, text);
  return path;
}

t.test('each malformed row fails the parse with file, line and what is wrong', async (t) => {
  const good = criteo(1, [1, 2], ['a1b2c3d4']);
  const cases: [string, string, RegExp][] = [
    ['too few fields', criteo(0).split('\t').slice(0, 38).join('\t'), /bad\.txt line 2: 38 fields, expected 40$/],
    ['too many fields', `${criteo(0)}\t7`, /bad\.txt line 2: 41 fields, expected 40$/],
    ['label 2', criteo(2), /bad\.txt line 2: label "2" is not 0 or 1$/],
    ['empty label', criteo(''), /bad\.txt line 2: label "" is not 0 or 1$/],
    ['label 01', criteo('01'), /label "01" is not 0 or 1/],
    ['a decimal', criteo(0, [1, '1.5']), /bad\.txt line 2: integer feature 2 \(field 3\) is "1\.5", not an integer$/],
    ['a plus sign', criteo(0, ['+3']), /integer feature 1 \(field 2\) is "\+3", not an integer/],
    ['a lone minus', criteo(0, [0, 0, '-']), /integer feature 3 \(field 4\) is "-", not an integer/],
    ['a word', criteo(0, [], ['', 'xyz']), /bad\.txt line 2: categorical feature 2 \(field 16\) is "xyz", not hexadecimal$/],
    ['a space', criteo(0, [], ['a1 b2']), /categorical feature 1 \(field 15\) is "a1 b2", not hexadecimal/],
    ['a blank line before a row', '', /bad\.txt line 2: blank line$/],
  ];
  for (const [name, bad, error] of cases) {
    const path = file(t, 'bad.txt', `${good}\n${bad}\n${good}\n`);
    const err = await parse(path).then(() => undefined, (e: unknown) => e);
    t.type(err, CriteoRowError, name);
    t.match((err as Error).message, error, name);
    t.equal((err as CriteoRowError).line, 2, name);
  }
});

t.test("with policy 'skip' malformed rows are counted by reason and the good ones delivered with their lines", async (t) => {
  const lines = [
    criteo(1, [5]),
    criteo(3),
    criteo(0, ['x']),
    '',
    criteo(0, [], ['zz']),
    'just one field',
    criteo(0, [-2], ['ABCDEF12']),
    '',
    '',
  ];
  const path = file(t, 'mixed.txt', lines.join('\n'));
  const { rows, stats } = await parse(path, { malformed: 'skip' });
  t.same(rows.map((r) => r.line), [1, 7]);
  t.same(rows, [expected(lines[0], 1), expected(lines[6], 7)]);
  t.same(stats.skipped, { 'field count': 1, label: 1, integer: 1, categorical: 1, 'blank line': 1 }, 'trailing blank lines are not counted');
  t.equal(stats.rows, 2);
  t.equal(stats.lines, 8, 'the text after the last newline is empty: no line');
});

t.test('integers become log(1 + x), negatives -log(1 - x), empty 0', async (t) => {
  const path = file(t, 'ints.txt', `${criteo(0, [0, 1, 9, 99, -1, -3, '', 1000000, '007'])}\n`);
  const { rows } = await parse(path);
  const want = [0, Math.log(2), Math.log(10), Math.log(100), -Math.log(2), -Math.log(4), 0, Math.log(1000001), Math.log(8), 0, 0, 0, 0];
  t.same(rows[0].dense, want.map(Math.fround));
  t.equal(rows[0].label, 0);
});

t.test('an all-empty row parses to zeros: bucket 0 is the shared "empty" value', async (t) => {
  const path = file(t, 'empty.txt', `${criteo(1)}\n`);
  const { rows } = await parse(path);
  t.same(rows[0], { line: 1, label: 1, dense: new Array(13).fill(0), categorical: new Array(26).fill(0) });
  t.equal(criteoBucket('', 5, OPTIONS), 0);
});

t.test('categorical hashing is fixed, in range, case-insensitive, and separates fields and seeds', async (t) => {
  // Pinned: a change here changes every store, and every model trained on one.
  t.same(['68fd1e64', '80e26c9b', '0'].map((v) => criteoBucket(v, 0, OPTIONS)), [178469, 141925, 188520], 'the same buckets on every machine');
  t.equal(criteoBucket('68FD1E64', 3, OPTIONS), criteoBucket('68fd1e64', 3, OPTIONS));
  const rng = new Random(3);
  const values = Array.from({ length: 200 }, () => rng.uint32().toString(16).padStart(8, '0'));
  let sameAcrossFields = 0;
  let sameAcrossSeeds = 0;
  let outOfRange = 0;
  for (const v of values) {
    const buckets = Array.from({ length: 26 }, (_, f) => criteoBucket(v, f, OPTIONS));
    outOfRange += buckets.filter((b) => !(b >= 1 && b < 1 << 18)).length;
    sameAcrossFields += 26 - new Set(buckets).size;
    if (criteoBucket(v, 0, { buckets: 1 << 18, hashSeed: 1 }) === buckets[0]) sameAcrossSeeds++;
  }
  t.equal(outOfRange, 0, 'every bucket in [1, buckets)');
  t.ok(sameAcrossFields <= 2, `${sameAcrossFields} collisions between fields of 200 values`);
  t.ok(sameAcrossSeeds <= 1, 'another hash seed, other buckets');
  const small = new Set(values.map((v) => criteoBucket(v, 0, { buckets: 3, hashSeed: 0 })));
  t.same([...small].sort(), [1, 2], 'two buckets besides "empty"');
});

t.test('CRLF line ends, a missing final newline and chunk boundaries change nothing', async (t) => {
  const lines = randomLines(12000, 7); // about 2.5 MB: the reader's 1 MiB chunks cut lines
  // Compared as JSON: a deep comparison of 12000 rows takes the test framework seconds.
  const want = JSON.stringify(lines.map((l, i) => expected(l, i + 1)));
  const lf = await parse(file(t, 'lf.txt', `${lines.join('\n')}\n`));
  t.equal(lf.stats.rows, 12000);
  t.ok(JSON.stringify(lf.rows) === want, 'every row as the plain split parses it');
  t.ok(lf.stats.bytes > 2 << 20);
  const crlf = await parse(file(t, 'crlf.txt', lines.join('\r\n')));
  t.ok(JSON.stringify(crlf.rows) === want, 'CRLF and no final newline');
  const blankTail = await parse(file(t, 'tail.txt', `${lines.slice(0, 3).join('\n')}\n\n\r\n\n`));
  t.same(blankTail.rows, lines.slice(0, 3).map((l, i) => expected(l, i + 1)), 'blank lines at the end are dropped');
});

t.test('binary data and invalid UTF-8 are refused, naming the line', async (t) => {
  const good = criteo(0);
  await t.rejects(parse(file(t, 'nul.bin', `${good}\n${good}\n\0\0\n`)), /nul\.bin line 3 looks binary: it holds a NUL byte/);
  const latin1 = Buffer.concat([Buffer.from(`${good}\n`), Buffer.from(criteo(0, [], ['caf\xe9']), 'latin1')]);
  await t.rejects(parse(file(t, 'latin1.txt', latin1)), /latin1\.txt line 2 is not valid UTF-8 text/);
  const utf8 = await parse(file(t, 'utf8.txt', `${good}\n${criteo(0, [], ['café'])}\n`), { malformed: 'skip' });
  t.equal(utf8.stats.skipped.categorical, 1, 'valid UTF-8 that is not hex is a malformed row, not a bad file');
  await t.rejects(parse(join(t.testdir(), 'absent.txt')), /absent\.txt: cannot be read \(ENOENT\)/);
  const long = `${good}\n${'a'.repeat(3 << 19)}`;
  await t.rejects(parse(file(t, 'long.txt', long)), /long\.txt line 2 is longer than 1 MiB: not Criteo text/, 'memory stays bounded');
});

// ---- ingest ----

function config(dir: string, over: Partial<ClickDataConfig> = {}): ClickDataConfig {
  return clickDataSchema.parse({ path: join(dir, 'store'), shardRows: 64, ...over });
}

/** Seeded lines with known labels: every fourth row positive. */
function writeLines(path: string, n: number, seed: number): string[] {
  const lines = randomLines(n, seed);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return lines;
}

function readStore(path: string) {
  const store = RecordStore.open(path, { kind: 'criteo' });
  try {
    const labels: Record<string, number[]> = { train: [], validation: [] };
    for (const split of ['train', 'validation'] as const) {
      for (let s = 0; s < store.meta.splits[split].shards; s++) labels[split].push(...store.readShard(split, s).label);
    }
    return { meta: store.meta, labels };
  } finally {
    store.close();
  }
}

t.test('ingest writes train and validation files into a store and reports rows, shards and positive rates', async (t) => {
  const dir = t.testdir();
  const train = writeLines(join(dir, 'train.txt'), 500, 1);
  const validation = writeLines(join(dir, 'valid.txt'), 130, 2);
  const data = config(dir, { inputs: [join(dir, 'train.txt')], validationInputs: [join(dir, 'valid.txt')] });
  const phases: string[] = [];
  let last = { done: 0, rows: 0 };
  const progress = {
    phase: (name: string, total?: number, unit?: string) => phases.push(`${name} ${total} ${unit}`),
    update: (done: number, f?: Record<string, number>) => (last = { done, rows: f?.rows ?? 0 }),
    line: () => {},
  };
  const report = await ingestClick(data, { progress });
  const bytes = statSync(join(dir, 'train.txt')).size + statSync(join(dir, 'valid.txt')).size;
  t.same(phases, [`parse ${bytes} B`]);
  t.same(last, { done: bytes, rows: 630 });
  t.equal(report.upToDate, false);
  t.same(report.header, ['split', 'rows', 'shards', 'positive rate']);
  const rate = (lines: string[]) => `${((100 * lines.filter((l) => l[0] === '1').length) / lines.length).toFixed(2)}%`;
  t.same(report.rows, [
    ['train', '500', '8', rate(train)],
    ['validation', '130', '3', rate(validation)],
  ]);
  t.match(report.notes.join('\n'), /630 rows from 2 files .* rows\/s/);
  t.match(report.notes.join('\n'), /no malformed rows skipped/);

  const { meta, labels } = readStore(data.path);
  t.same(meta.fields, [
    { name: 'dense', dtype: 'float32', width: 13 },
    { name: 'categorical', dtype: 'int32', width: 26 },
    { name: 'label', dtype: 'uint8', width: 1 },
  ]);
  t.same(labels.train, train.map((l) => Number(l[0])), 'train rows in file order');
  t.same(labels.validation, validation.map((l) => Number(l[0])));
  const store = RecordStore.open(data.path);
  const shard = store.readShard('train', 1);
  store.close();
  const row = expected(train[64 + 3], 0, { ...OPTIONS });
  t.same([...shard.categorical.subarray(3 * 26, 4 * 26)], row.categorical, 'categoricals hashed as the parser does');
  t.same([...shard.dense.subarray(3 * 13, 4 * 13)], row.dense);
});

t.test('without validationInputs a seeded share of the lines is held out, the same on every run', async (t) => {
  const dir = t.testdir();
  writeLines(join(dir, 'a.txt'), 2000, 3);
  const data = config(dir, { inputs: [join(dir, 'a.txt')], validationFraction: 0.1 });
  await ingestClick(data, {});
  const first = readStore(data.path).meta.splits;
  t.ok(first.validation.rows > 150 && first.validation.rows < 250, `${first.validation.rows} of 2000 held out`);
  t.equal(first.train.rows + first.validation.rows, 2000);
  await ingestClick({ ...data, path: join(dir, 'again') }, {});
  t.same(readStore(join(dir, 'again')).meta.splits, first, 'same seed, same split');
  await ingestClick({ ...data, path: join(dir, 'other') }, { splitSeed: 9 });
  t.notSame(readStore(join(dir, 'other')).labels.validation, readStore(data.path).labels.validation, 'another split seed');
});

t.test('re-running on the same inputs and settings is a no-op; other ones are refused without --force', async (t) => {
  const dir = t.testdir();
  const input = join(dir, 'a.txt');
  writeLines(input, 300, 4);
  writeLines(join(dir, 'v.txt'), 50, 5);
  const data = config(dir, { inputs: [input], validationInputs: [join(dir, 'v.txt')] });
  const first = await ingestClick(data, {});
  const stamp = statSync(join(data.path, 'data.mdb')).mtimeMs;
  const again = await ingestClick(data, {});
  t.equal(again.upToDate, true);
  t.same(again.rows, first.rows, 'the same table');
  t.match(again.notes[0], /is up to date with its inputs/);
  t.equal(statSync(join(data.path, 'data.mdb')).mtimeMs, stamp, 'the store was not rewritten');

  await t.rejects(ingestClick({ ...data, buckets: 1024 }, {}), /not replacing the click store .*buckets 262144 -> 1024.*Pass --force to rebuild it/);
  await t.rejects(ingestClick({ ...data, hashSeed: 3 }, {}), /hashSeed 0 -> 3/);
  appendFileSync(input, `${criteo(1)}\n`);
  await t.rejects(ingestClick(data, {}), /inputs .*a\.txt new or changed.*--force/);
  t.equal(readStore(data.path).meta.splits.train.rows, 300, 'the old store is untouched');
  const forced = await ingestClick(data, { force: true });
  t.equal(forced.upToDate, false);
  t.equal(readStore(data.path).meta.splits.train.rows, 301);
  t.equal((await ingestClick(data, {})).upToDate, true, 'and the rebuilt store is current');
  t.same(readdirSync(dir).sort(), ['a.txt', 'store', 'v.txt'], 'no partial or old store left');
});

t.test("malformed rows fail the ingest and keep the old store, or with 'skip' are counted in the notes", async (t) => {
  const dir = t.testdir();
  const input = join(dir, 'a.txt');
  const lines = randomLines(200, 6);
  writeFileSync(input, `${lines.join('\n')}\n`);
  const data = config(dir, { inputs: [input], validationFraction: 0.2 });
  await ingestClick(data, {});
  lines.splice(41, 0, criteo(7), criteo(0, ['x']), criteo(0, ['y']), '');
  writeFileSync(input, `${lines.join('\n')}\n`);
  await t.rejects(ingestClick(data, { force: true }), /a\.txt line 42: label "7" is not 0 or 1/);
  t.equal(readStore(data.path).meta.splits.train.rows + readStore(data.path).meta.splits.validation.rows, 200);
  t.same(readdirSync(dir).sort(), ['a.txt', 'store']);
  const report = await ingestClick({ ...data, malformed: 'skip' }, { force: true });
  t.match(report.notes.join('\n'), /skipped 4 malformed rows: 1 label, 2 integer, 1 blank line/);
});

t.test('missing, empty or folder inputs and empty splits are refused, naming the file', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'empty.txt'), '');
  writeLines(join(dir, 'a.txt'), 3, 1);
  writeFileSync(join(dir, 'bad.txt'), `${criteo(5)}\n`);
  const a = join(dir, 'a.txt');
  await t.rejects(ingestClick(config(dir, { inputs: [join(dir, 'nope.txt')] }), {}), /input file .*nope\.txt does not exist \(data\.inputs\)/);
  await t.rejects(ingestClick(config(dir, { inputs: [join(dir, 'empty.txt')] }), {}), /input file .*empty\.txt is empty/);
  await t.rejects(ingestClick(config(dir, { inputs: [dir] }), {}), /is not a regular file/);
  await t.rejects(ingestClick(config(dir, { inputs: [a], validationInputs: [join(dir, 'no.txt')] }), {}), /no\.txt does not exist \(data\.validationInputs\)/);
  await t.rejects(ingestClick(config(dir, { inputs: [a], validationInputs: [a] }), {}), /listed twice/);
  await t.rejects(ingestClick(config(dir, { inputs: [a], validationInputs: [join(dir, 'bad.txt')], malformed: 'skip' }), {}), /no validation rows/);
  await t.rejects(ingestClick(config(dir, { inputs: [join(dir, 'bad.txt')], malformed: 'skip' }), {}), /no training rows/);
  t.same(readdirSync(dir).sort(), ['a.txt', 'bad.txt', 'empty.txt'], 'no store, no partial store');
});
