/**
 * Click ingest speed against the plainest reading of the same file.
 *
 *   npm run build && node dist/bench/click-ingest.js [--rows 500000] [--flights]
 *
 * A seeded synthetic Criteo file (small integers, 8-digit hex categoricals, some fields empty, about 240 bytes a
 * line) is read twice: by a plain line split (chunks read as UTF-8, split('\n'), each line split('\t'), nothing
 * parsed), then by the click ingest, which parses, hashes, holds out the validation share and writes the record
 * store. Both in rows/s; their ratio says how much of the split's speed the whole ingest keeps. With --flights, the
 * one-time conversion of the bundled flights to Criteo text is timed too.
 */
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Random } from '../src/util/random.js';
import { clickDataSchema } from '../src/workloads/click/config.js';
import { convertFlights } from '../src/workloads/click/flights.js';
import { ingestClick } from '../src/workloads/click/ingest.js';

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

function writeSynthetic(path: string, rows: number): void {
  const rng = new Random(20240601);
  const lines: string[] = [];
  const flush = () => {
    writeFileSync(path, `${lines.join('\n')}\n`, { flag: 'a' });
    lines.length = 0;
  };
  for (let i = 0; i < rows; i++) {
    const fields = [String(rng.int(4) === 0 ? 1 : 0)];
    for (let k = 0; k < 13; k++) fields.push(rng.int(5) === 0 ? '' : String(rng.int(1 << (1 + rng.int(14))) - 2));
    for (let k = 0; k < 26; k++) fields.push(rng.int(6) === 0 ? '' : rng.int(1 << (4 + k % 20)).toString(16).padStart(8, '0'));
    lines.push(fields.join('\t'));
    if (lines.length === 65536) flush();
  }
  flush();
}

/** Rows per second of a line split that parses nothing: the floor any reader of this text pays. */
async function plainSplit(path: string): Promise<{ rows: number; seconds: number }> {
  const started = performance.now();
  let rows = 0;
  let fields = 0;
  let carry = '';
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (carry + chunk).split('\n');
    carry = lines.pop()!;
    for (const line of lines) {
      fields += line.split('\t').length;
      rows++;
    }
  }
  if (carry) rows++;
  if (fields !== rows * 40) throw new Error(`the synthetic file has ${fields / rows} fields a row`);
  return { rows, seconds: (performance.now() - started) / 1000 };
}

export async function benchClickIngest(o: { rows?: number; flights?: boolean } = {}): Promise<Record<string, number>> {
  const rows = o.rows ?? 500_000;
  const root = mkdtempSync(join(tmpdir(), 'codistill-bench-click-'));
  try {
    const input = join(root, 'criteo.txt');
    writeSynthetic(input, rows);
    const mb = statSync(input).size / 1e6;
    const split = await plainSplit(input);

    const started = performance.now();
    const data = clickDataSchema.parse({ path: join(root, 'store'), inputs: [input] });
    await ingestClick(data, {});
    const seconds = (performance.now() - started) / 1000;

    const out: Record<string, number> = {
      rows,
      input_MB: round(mb, 1),
      'split.rows_per_s': Math.round(split.rows / split.seconds),
      'split.MB_per_s': round(mb / split.seconds, 1),
      'ingest.rows_per_s': Math.round(rows / seconds),
      'ingest.MB_per_s': round(mb / seconds, 1),
      ingest_vs_split: round(split.seconds / seconds, 3),
    };
    if (o.flights) {
      const t0 = performance.now();
      const converted = await convertFlights(join(root, 'flights'));
      out['flights.convert_s'] = round((performance.now() - t0) / 1000, 1);
      out['flights.rows'] = converted.train + converted.validation;
    }
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--rows');
  const rows = at >= 0 ? Number(args[at + 1]) : undefined;
  if (rows !== undefined && !(Number.isInteger(rows) && rows > 0)) throw new Error('--rows must be a positive integer');
  const results = await benchClickIngest({ rows, flights: args.includes('--flights') });
  for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(24)} ${v}`);
}
