import t from 'tap';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { RecordStore } from '../src/records/store.js';
import { clickDataSchema } from '../src/workloads/click/config.js';
import { hex8 } from '../src/workloads/click/criteo.js';
import { convertFlights, flightsParquet } from '../src/workloads/click/flights.js';
import { ingestClick } from '../src/workloads/click/ingest.js';

const LIMIT = 3000;

interface Flight {
  date: Date;
  delay: bigint;
  distance: bigint;
  origin: string;
  destination: string;
}

/** The rows a limit converts, read independently: the first rows of each row group, in proportion to its size. */
async function sampledFlights(limit: number): Promise<Flight[]> {
  const file = await asyncBufferFromFile(flightsParquet());
  const metadata = await parquetMetadataAsync(file);
  const n = Number(metadata.num_rows);
  const out: Flight[] = [];
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const take = Math.floor((limit * end) / n) - Math.floor((limit * start) / n);
    out.push(...((await parquetReadObjects({ file, metadata, compressors, rowStart: start, rowEnd: start + take })) as unknown as Flight[]));
    start = end;
  }
  return out;
}

// One conversion for the whole file: each one decodes a column chunk of every row group (seconds).
const root = t.testdir();
const text = join(root, 'converted', 'flights-criteo-text');
let converted: { train: number; validation: number; positiveRate: number };
t.before(async () => {
  converted = await convertFlights(text, { limit: LIMIT });
});

const linesOf = (path: string): string[] => readFileSync(path, 'utf8').split('\n').slice(0, -1);

t.test('hex8 is the 32-bit FNV-1a of the UTF-8 bytes', async (t) => {
  t.equal(hex8(''), '811c9dc5');
  t.equal(hex8('a'), 'e40c292c');
  t.equal(hex8('foobar'), 'bf9cf968');
});

t.test('a slice of the flights becomes Criteo text: 40 fields, late flights positive, January-May train, June validation', async (t) => {
  const out = text;
  const result = converted;
  t.same(readdirSync(join(root, 'converted')), ['flights-criteo-text'], 'no partial folder left');
  t.same(readdirSync(out).sort(), ['train.txt', 'validation.txt']);
  t.equal(result.train + result.validation, LIMIT);
  t.ok(result.validation > 0 && result.train > result.validation, `${result.train} train, ${result.validation} validation`);

  const train = linesOf(join(out, 'train.txt'));
  const validation = linesOf(join(out, 'validation.txt'));
  t.equal(train.length, result.train);
  t.equal(validation.length, result.validation);
  const flights = await sampledFlights(LIMIT);
  const wantTrain = flights.filter((f) => f.date.getUTCMonth() + 1 <= 5);
  const wantValidation = flights.filter((f) => f.date.getUTCMonth() + 1 > 5);
  t.same(new Set(wantValidation.map((f) => f.date.getUTCMonth() + 1)), new Set([6]), 'the slice reaches June');

  let mismatches = 0;
  let positives = 0;
  for (const [lines, want] of [[train, wantTrain], [validation, wantValidation]] as const) {
    t.equal(lines.length, want.length);
    lines.forEach((line, i) => {
      const f = line.split('\t');
      const w = want[i];
      const hour = w.date.getUTCHours();
      const expected = [
        Number(w.delay) > 15 ? '1' : '0',
        String(w.date.getUTCMonth() + 1),
        String(w.date.getUTCDate()),
        String(hour),
        String(w.date.getUTCMinutes()),
        String(w.date.getUTCDay()),
        String(Math.floor((w.date.getTime() - Date.UTC(2001, 0, 1)) / 86_400_000) + 1),
        String(w.distance),
        ...new Array(6).fill(''),
        hex8(w.origin),
        hex8(w.destination),
        hex8(`${w.origin}-${w.destination}`),
        hex8(`${w.origin}@${hour}`),
        hex8(`${w.destination}@${hour}`),
        ...new Array(21).fill(''),
      ];
      if (f.length !== 40 || f.join('\t') !== expected.join('\t')) mismatches++;
      if (f[0] === '1') positives++;
    });
  }
  t.equal(mismatches, 0, 'every line has 40 fields: the label is delay > 15, then the date, distance and airports');
  t.equal(result.positiveRate, positives / LIMIT);
  t.ok(result.positiveRate > 0.1 && result.positiveRate < 0.3, `positive rate ${result.positiveRate}`);
});

t.test('with no inputs, ingest reads the converted flights beside the store and splits them by month', async (t) => {
  const dir = join(root, 'ingest');
  cpSync(text, join(dir, 'flights-criteo-text'), { recursive: true });
  const data = clickDataSchema.parse({ path: join(dir, 'flights-criteo'), shardRows: 256 });
  const lines: string[] = [];
  const report = await ingestClick(data, { progress: { phase: () => {}, update: () => {}, line: (l) => lines.push(l) } });
  t.same(lines, [], 'converted text in place: no conversion');
  t.same(report.rows.map((r) => r[1]), [converted.train.toLocaleString(), converted.validation.toLocaleString()]);
  const store = RecordStore.open(data.path, { kind: 'criteo' });
  t.same(store.meta.splits.train, { rows: converted.train, shards: Math.ceil(converted.train / 256) });
  t.match(JSON.stringify(store.meta.source), /vega-datasets\/data\/flights-3m\.parquet/);
  store.close();
  t.equal((await ingestClick(data, {})).upToDate, true, 'up to date on a re-run');
  await t.rejects(
    ingestClick({ ...data, validationInputs: [join(dir, 'x.txt')] }, {}),
    /validationInputs needs data\.inputs/,
  );
});
