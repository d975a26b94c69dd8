/**
 * The click workload's predictor: Criteo-format rows in, the probability of a click of each out.
 *
 * Input: one line (a string), or an array of lines. A line is what `codistill ingest --format criteo` reads from a
 * file, with or without its label: 40 tab-separated fields (label 0 or 1, 13 integers, 26 hexadecimal
 * categoricals), or the 39 features alone. Any feature may be empty; one trailing "\n" or "\r\n" is dropped (as
 * the file parser drops line ends). Each row becomes what the ingest stores for it: the integers as
 * log(1 + x) (-log(1 - x) below 0), each categorical hashed with its field and data.hashSeed into [1,
 * data.buckets), empty ones in bucket 0 (the parser's own `denseValue` and `criteoBucket`). A label, when there,
 * is checked and otherwise ignored. A malformed row is an Error naming the row, the field and what is wrong, in
 * the words of the ingest's messages.
 *
 * Answer: `{ p: number[] }`, p(click) for each row, in input order.
 */
import { describeValue } from '../predict-input.js';
import type { Predictor } from '../workload.js';
import type { ClickDataConfig } from './config.js';
import { CATEGORICAL_FIELDS, CRITEO_FIELDS, criteoBucket, DENSE_FIELDS, denseValue } from './criteo.js';

const show = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);

/** The integer of a field, as the file parser reads it: empty is 0, else an optional '-' and decimal digits. */
function parseInteger(s: string): number | undefined {
  if (s === '') return 0;
  const negative = s.charCodeAt(0) === 0x2d;
  let i = negative ? 1 : 0;
  if (i === s.length) return undefined;
  let x = 0;
  for (; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return undefined;
    x = x * 10 + d;
  }
  return negative ? -x : x;
}

/** Parses one line into row `r` of the dense and categorical fields; `where` names it in errors. */
function parseLine(line: unknown, where: string, hashing: Pick<ClickDataConfig, 'buckets' | 'hashSeed'>, dense: Float32Array, categorical: Int32Array): void {
  if (typeof line !== 'string') throw new Error(`${where} is ${describeValue(line)}, not a line of Criteo text`);
  let s = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (s.endsWith('\r')) s = s.slice(0, -1);
  if (s.includes('\n')) throw new Error(`${where} holds a line break: pass one Criteo row per line, several as an array of lines`);
  if (s === '') throw new Error(`${where} is blank`);
  if (s.includes('\0')) throw new Error(`${where} holds a NUL character`);
  const fields = s.split('\t');
  if (fields.length !== CRITEO_FIELDS && fields.length !== CRITEO_FIELDS - 1) {
    throw new Error(
      `${where}: ${fields.length} fields, expected ${CRITEO_FIELDS} (label, ${DENSE_FIELDS} integers, ` +
        `${CATEGORICAL_FIELDS} categoricals, tab-separated) or ${CRITEO_FIELDS - 1} (the same without the label)`,
    );
  }
  const off = fields.length === CRITEO_FIELDS ? 1 : 0;
  if (off && fields[0] !== '0' && fields[0] !== '1') throw new Error(`${where}: label ${show(fields[0])} is not 0 or 1`);
  for (let k = 0; k < DENSE_FIELDS; k++) {
    const x = parseInteger(fields[off + k]);
    if (x === undefined) {
      throw new Error(`${where}: integer feature ${k + 1} (field ${off + k + 1}) is ${show(fields[off + k])}, not an integer`);
    }
    dense[k] = denseValue(x);
  }
  for (let f = 0; f < CATEGORICAL_FIELDS; f++) {
    const i = off + DENSE_FIELDS + f;
    try {
      categorical[f] = criteoBucket(fields[i], f, hashing);
    } catch {
      throw new Error(`${where}: categorical feature ${f + 1} (field ${i + 1}) is ${show(fields[i])}, not hexadecimal`);
    }
  }
}

export function clickPredictor(data: Pick<ClickDataConfig, 'buckets' | 'hashSeed'>): Predictor {
  const hashing = { buckets: data.buckets, hashSeed: data.hashSeed };
  return {
    encode(input) {
      const one = typeof input === 'string';
      if (!one && !Array.isArray(input)) {
        throw new Error(`click prediction reads Criteo rows: pass a line of text or an array of lines, not ${describeValue(input)}`);
      }
      const lines: unknown[] = one ? [input] : (input as unknown[]);
      if (lines.length === 0) throw new Error('no rows to predict: the array of lines is empty');
      const rows = lines.length;
      const dense = new Float32Array(rows * DENSE_FIELDS);
      const categorical = new Int32Array(rows * CATEGORICAL_FIELDS);
      lines.forEach((line, r) =>
        parseLine(
          line,
          one ? 'the row' : `rows[${r}]`,
          hashing,
          dense.subarray(r * DENSE_FIELDS, (r + 1) * DENSE_FIELDS),
          categorical.subarray(r * CATEGORICAL_FIELDS, (r + 1) * CATEGORICAL_FIELDS),
        ),
      );
      // The label field completes the batch as the store has it; a forward pass never reads it.
      return { batch: { rows, fields: { dense, categorical, label: new Uint8Array(rows) } } };
    },
    decode(probs, classes) {
      return { p: Array.from({ length: probs.length / classes }, (_, r) => probs[r * classes + 1]) };
    },
  };
}

