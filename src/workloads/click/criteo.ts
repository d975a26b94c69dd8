/**
 * The Criteo Display Advertising Challenge text format: one example a line, 40 tab-separated fields: the label (0 or
 * 1), 13 integer features, then 26 categorical features as hexadecimal strings (Criteo's are 8 hex digits). Any
 * feature may be empty.
 *
 * Parsed rows are what the click store holds:
 *  - dense: Float32Array(13), each integer x as log(1 + x) for x >= 0 and -log(1 - x) for x < 0 (Criteo has a few
 *    small negatives), empty -> 0;
 *  - categorical: Int32Array(26), field f's string hashed with f and the hash seed into [1, buckets), empty -> 0.
 *    Empty shares bucket 0 across fields: the model concatenates the fields' embeddings, so which field is missing is
 *    still known from the position, and a reserved bucket never collides with a real value. Hex digits are
 *    case-insensitive ("0A" and "0a" are one value);
 *  - label: Uint8Array(1).
 *
 * Files are parsed as bytes, a chunk at a time, so memory stays flat on files of any size. Lines end in \n or \r\n,
 * the last one may lack its newline, and blank lines are dropped at the end of a file only (anywhere else a blank
 * line is malformed). A NUL byte or invalid UTF-8 refuses the file; a malformed row either stops the parse with a
 * CriteoRowError naming file, line and what is wrong, or (policy 'skip') is counted by reason and passed over.
 */
import { isUtf8 } from 'node:buffer';
import { open } from 'node:fs/promises';
import { deriveSeed, mix32 } from '../../util/random.js';

export const DENSE_FIELDS = 13;
export const CATEGORICAL_FIELDS = 26;
export const CRITEO_FIELDS = 1 + DENSE_FIELDS + CATEGORICAL_FIELDS;

export type MalformedReason = 'field count' | 'label' | 'integer' | 'categorical' | 'blank line';
export const MALFORMED_REASONS: readonly MalformedReason[] = ['field count', 'label', 'integer', 'categorical', 'blank line'];

export class CriteoError extends Error {
  override name = 'CriteoError';
}

export class CriteoRowError extends CriteoError {
  override name = 'CriteoRowError';

  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: MalformedReason,
    detail: string,
  ) {
    super(`${file} line ${line}: ${detail}`);
  }
}

export interface CriteoOptions {
  buckets: number;
  hashSeed: number;
  malformed: 'fail' | 'skip';
}

/** One parsed row; the parser reuses it for the next row, so copy what you keep. */
export type CriteoRow = {
  label: Uint8Array;
  dense: Float32Array;
  categorical: Int32Array;
};

export interface CriteoFileStats {
  /** Rows delivered. */
  rows: number;
  lines: number;
  bytes: number;
  skipped: Record<MalformedReason, number>;
}

const READ_CHUNK = 1 << 20;
/** Criteo lines are a few hundred bytes: a longer one means the file is something else. */
const MAX_LINE = 1 << 20;
const TAB = 9;
const LF = 10;
const CR = 13;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** The integer feature transform. */
export const denseValue = (x: number): number => (x >= 0 ? Math.log1p(x) : -Math.log1p(-x));

/** 32-bit FNV-1a of a string's UTF-8 bytes, as 8 hex digits: how a non-Criteo source writes its categoricals. */
export function hex8(value: string): string {
  let h = FNV_OFFSET;
  for (const b of Buffer.from(value, 'utf8')) h = Math.imul(h ^ b, FNV_PRIME);
  return (h >>> 0).toString(16).padStart(8, '0');
}

let lastParser: CriteoParser | undefined;

/** The bucket of categorical field `field` (0-based) holding `value` (hex digits, or '' for empty). */
export function criteoBucket(value: string, field: number, o: Pick<CriteoOptions, 'buckets' | 'hashSeed'>): number {
  const bytes = Buffer.from(value, 'utf8');
  if (lastParser?.buckets !== o.buckets || lastParser.hashSeed !== o.hashSeed) lastParser = new CriteoParser({ ...o, malformed: 'fail' });
  const bucket = lastParser.bucket(bytes, 0, bytes.length, field);
  if (bucket < 0) throw new CriteoError(`categorical value ${JSON.stringify(value)} is not hexadecimal`);
  return bucket;
}

/**
 * Parses one Criteo file, calling `onRow` for each good row with its 1-based line number, and `onBytes` with the
 * size of each chunk read.
 */
export async function readCriteo(
  file: string,
  o: CriteoOptions,
  onRow: (row: CriteoRow, line: number) => void,
  onBytes: (n: number) => void = () => {},
): Promise<CriteoFileStats> {
  const parser = new CriteoParser(o);
  const stats: CriteoFileStats = {
    rows: 0,
    lines: 0,
    bytes: 0,
    skipped: Object.fromEntries(MALFORMED_REASONS.map((r) => [r, 0])) as Record<MalformedReason, number>,
  };
  let blanks = 0; // blank lines not yet followed by a row: malformed unless the file ends first
  let firstBlank = 0;
  const malformed = (line: number, reason: MalformedReason, detail: string) => {
    if (o.malformed === 'fail') throw new CriteoRowError(file, line, reason, detail);
    stats.skipped[reason]++;
  };
  const line = (buf: Buffer, start: number, end: number) => {
    const n = ++stats.lines;
    if (end > start && buf[end - 1] === CR) end--;
    if (end === start) {
      if (blanks++ === 0) firstBlank = n;
      return;
    }
    for (; blanks > 0; blanks--) malformed(firstBlank++, 'blank line', 'blank line');
    const reason = parser.parse(buf, start, end);
    if (reason) malformed(n, reason, parser.detail);
    else {
      stats.rows++;
      onRow(parser.row, n);
    }
  };

  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new CriteoError(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const buf = Buffer.allocUnsafe(MAX_LINE + READ_CHUNK);
    let have = 0; // bytes of an unfinished line carried over from the previous chunk
    for (;;) {
      const { bytesRead } = await fh.read(buf, have, READ_CHUNK, null);
      stats.bytes += bytesRead;
      onBytes(bytesRead);
      const end = have + bytesRead;
      const done = bytesRead === 0;
      // Only whole lines are checked and parsed: a character or a line cut by the chunk end waits for the rest.
      const whole = done ? end : buf.lastIndexOf(LF, end - 1) + 1;
      checkText(file, buf.subarray(0, whole), stats.lines);
      let start = 0;
      for (let nl = buf.indexOf(LF, 0); nl >= 0 && nl < whole; nl = buf.indexOf(LF, start)) {
        line(buf, start, nl);
        start = nl + 1;
      }
      if (done) {
        if (start < end) line(buf, start, end);
        break;
      }
      if (end - whole > MAX_LINE) {
        throw new CriteoError(`${file} line ${stats.lines + 1} is longer than ${MAX_LINE >> 20} MiB: not Criteo text`);
      }
      buf.copy(buf, 0, whole, end);
      have = end - whole;
    }
  } finally {
    await fh.close();
  }
  return stats;
}

/** Refuses binary data and invalid UTF-8, naming the line (lines before `bytes` start at `linesBefore` + 1). */
function checkText(file: string, bytes: Buffer, linesBefore: number): void {
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new CriteoError(`${file} line ${linesBefore + countLines(bytes, nul) + 1} looks binary: it holds a NUL byte`);
  }
  if (isUtf8(bytes)) return;
  let line = linesBefore + 1;
  for (let start = 0; start < bytes.length; line++) {
    const nl = bytes.indexOf(LF, start);
    const end = nl < 0 ? bytes.length : nl + 1;
    if (!isUtf8(bytes.subarray(start, end))) break;
    start = end;
  }
  throw new CriteoError(`${file} line ${line} is not valid UTF-8 text`);
}

function countLines(bytes: Buffer, end: number): number {
  let n = 0;
  for (let i = bytes.indexOf(LF); i >= 0 && i < end; i = bytes.indexOf(LF, i + 1)) n++;
  return n;
}

const show = (buf: Buffer, start: number, end: number): string =>
  JSON.stringify(buf.toString('utf8', start, Math.min(end, start + 40)) + (end - start > 40 ? '...' : ''));

/** Parses lines into one reused row. */
class CriteoParser {
  readonly row: CriteoRow = {
    label: new Uint8Array(1),
    dense: new Float32Array(DENSE_FIELDS),
    categorical: new Int32Array(CATEGORICAL_FIELDS),
  };
  /** Why the last line was malformed. */
  detail = '';
  private readonly tabs = new Int32Array(CRITEO_FIELDS - 1);
  private readonly fieldSeeds: Uint32Array;
  readonly buckets: number;
  readonly hashSeed: number;

  constructor(o: CriteoOptions) {
    if (!Number.isInteger(o.buckets) || o.buckets < 2) throw new CriteoError(`buckets ${o.buckets} must be an integer of at least 2`);
    this.buckets = o.buckets;
    this.hashSeed = o.hashSeed;
    this.fieldSeeds = Uint32Array.from({ length: CATEGORICAL_FIELDS }, (_, f) => deriveSeed(o.hashSeed, f));
  }

  /** Fills `row` from the line buf[start, end) (no newline), or says why it cannot. */
  parse(buf: Buffer, start: number, end: number): MalformedReason | undefined {
    return this.parseWell(buf, start, end) ? undefined : this.diagnose(buf, start, end);
  }

  /** One pass over a well-formed line; false at the first thing out of place (diagnose then says what). */
  private parseWell(buf: Buffer, start: number, end: number): boolean {
    const { label, dense, categorical } = this.row;
    const first = buf[start];
    if (start + 1 >= end || buf[start + 1] !== TAB || (first !== 0x30 && first !== 0x31)) return false;
    label[0] = first - 0x30;
    let i = start + 2;
    for (let k = 0; k < DENSE_FIELDS; k++) {
      const negative = buf[i] === 0x2d && i < end;
      if (negative) i++;
      const digitsStart = i;
      let x = 0;
      for (; i < end; i++) {
        const d = buf[i] - 0x30;
        if (d < 0 || d > 9) break;
        x = x * 10 + d;
      }
      if (i >= end || buf[i] !== TAB || (negative && i === digitsStart)) return false;
      dense[k] = i === digitsStart ? 0 : denseValue(negative ? -x : x);
      i++;
    }
    const modulus = this.buckets - 1;
    for (let f = 0; f < CATEGORICAL_FIELDS; f++) {
      const a = i;
      let h = FNV_OFFSET ^ this.fieldSeeds[f];
      for (; i < end; i++) {
        const b = buf[i];
        if (b === TAB) break;
        const c = b | 0x20;
        if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      if (f < CATEGORICAL_FIELDS - 1 ? i >= end : i !== end) return false;
      categorical[f] = i === a ? 0 : 1 + (mix32(h) % modulus);
      i++;
    }
    return true;
  }

  /** Why a line is malformed, checked in the order the messages promise: field count, label, integers, categoricals. */
  private diagnose(buf: Buffer, start: number, end: number): MalformedReason | undefined {
    const tabs = this.tabs;
    let count = 0;
    for (let i = start; i < end; i++) {
      if (buf[i] === TAB) {
        if (count < tabs.length) tabs[count] = i;
        count++;
      }
    }
    if (count !== tabs.length) {
      this.detail = `${count + 1} fields, expected ${CRITEO_FIELDS}`;
      return 'field count';
    }
    const labelEnd = tabs[0];
    if (labelEnd - start !== 1 || (buf[start] !== 0x30 && buf[start] !== 0x31)) {
      this.detail = `label ${show(buf, start, labelEnd)} is not 0 or 1`;
      return 'label';
    }
    this.row.label[0] = buf[start] - 0x30;
    for (let k = 0; k < DENSE_FIELDS; k++) {
      const a = tabs[k] + 1;
      const b = tabs[k + 1];
      const x = parseInteger(buf, a, b);
      if (x === undefined) {
        this.detail = `integer feature ${k + 1} (field ${k + 2}) is ${show(buf, a, b)}, not an integer`;
        return 'integer';
      }
      this.row.dense[k] = denseValue(x);
    }
    for (let f = 0; f < CATEGORICAL_FIELDS; f++) {
      const t = DENSE_FIELDS + f;
      const a = tabs[t] + 1;
      const b = t + 1 < tabs.length ? tabs[t + 1] : end;
      const bucket = a === b ? 0 : this.bucket(buf, a, b, f);
      if (bucket < 0) {
        this.detail = `categorical feature ${f + 1} (field ${t + 2}) is ${show(buf, a, b)}, not hexadecimal`;
        return 'categorical';
      }
      this.row.categorical[f] = bucket;
    }
    return undefined;
  }

  /** FNV-1a from a per-field seed over the lower-cased hex digits, then mixed: a bucket in [1, buckets), or -1. */
  bucket(buf: Uint8Array, start: number, end: number, field: number): number {
    if (start === end) return 0;
    let h = FNV_OFFSET ^ this.fieldSeeds[field];
    for (let i = start; i < end; i++) {
      const c = buf[i] | 0x20; // lower-cases A-F and leaves digits as they are
      if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return -1;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    return 1 + (mix32(h) % (this.buckets - 1));
  }
}

/** The integer in buf[start, end): 0 when empty, undefined when not an optional '-' and decimal digits. */
function parseInteger(buf: Buffer, start: number, end: number): number | undefined {
  if (start === end) return 0;
  const negative = buf[start] === 0x2d;
  let i = negative ? start + 1 : start;
  if (i === end) return undefined;
  let x = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return undefined;
    x = x * 10 + d;
  }
  return negative ? -x : x;
}
