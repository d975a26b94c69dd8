/**
 * Training windows and the one kernel that copies them out of shard tokens.
 *
 * A window is T+1 consecutive tokens starting at a multiple of T inside one shard (inputs are its first T tokens,
 * labels its last T), so consecutive windows overlap by one token and no window crosses a shard boundary.
 * The reader actor copies them with `copyWindows`, the hot loop of reading.
 */
import type { TokenArray, TokenDtype } from '../corpus/store.js';

/** What a reader delivers: int32 (the Batch format) or the corpus' own token dtype (half the bytes for uint16). */
export type WindowFormat = 'int32' | 'tokens';
export type WindowDtype = 'int32' | TokenDtype;
export type WindowArray = Int32Array | TokenArray;

/** Windows of `window` + 1 tokens that fit in a shard of `tokens` tokens. */
export function windowsInShard(tokens: number, window: number): number {
  return tokens > window ? Math.floor((tokens - 1) / window) : 0;
}

export function windowDtype(format: WindowFormat, tokenDtype: TokenDtype): WindowDtype {
  return format === 'int32' ? 'int32' : tokenDtype;
}

export const bytesPerElement = (dtype: WindowDtype): number => (dtype === 'uint16' ? 2 : 4);

/** A typed view of `length` elements of `dtype` at the start of `buffer`. */
export function windowView(buffer: ArrayBuffer, dtype: WindowDtype, length: number): WindowArray {
  if (dtype === 'int32') return new Int32Array(buffer, 0, length);
  return dtype === 'uint16' ? new Uint16Array(buffer, 0, length) : new Uint32Array(buffer, 0, length);
}

/**
 * Where rows go: row r is row (r mod rowsPerOutput) of `outputs[floor(r / rowsPerOutput)]`, each output row-major
 * with `cols` = T+1 elements a row. Several outputs let every batch own its buffer (it can move on alone).
 */
export interface WindowTarget {
  outputs: WindowArray[];
  rowsPerOutput: number;
  cols: number;
}

/**
 * Below this many tokens a window is copied element by element: creating a subarray view for `set` costs more than
 * the copy itself (measured: `set` is 4x faster at 513 tokens, 10% slower at 33).
 */
const SET_MIN_TOKENS = 64;

/**
 * Copies windows of one shard into their rows: for each i in [from, to), row `rows[i]` of `target` gets the tokens
 * at `src[offsets[i] .. offsets[i] + cols)`, widened if the outputs are Int32Arrays.
 */
export function copyWindows(
  src: TokenArray,
  target: WindowTarget,
  rows: Uint32Array,
  offsets: Uint32Array,
  from: number,
  to: number,
): void {
  const { outputs, rowsPerOutput, cols } = target;
  const pairs = src instanceof Uint16Array && outputs[0] instanceof Int32Array && cols % 2 === 1 && src.byteOffset % 4 === 0;
  if (cols >= SET_MIN_TOKENS) {
    for (let i = from; i < to; i++) {
      const out = outputs[Math.floor(rows[i] / rowsPerOutput)];
      out.set(src.subarray(offsets[i], offsets[i] + cols), (rows[i] % rowsPerOutput) * cols);
    }
  } else if (pairs) {
    widenPairs(src as Uint16Array, outputs as Int32Array[], rowsPerOutput, cols, rows, offsets, from, to);
  } else {
    for (let i = from; i < to; i++) {
      const out = outputs[Math.floor(rows[i] / rowsPerOutput)];
      let s = offsets[i];
      let d = (rows[i] % rowsPerOutput) * cols;
      const end = d + cols;
      while (d < end) out[d++] = src[s++];
    }
  }
}

/**
 * uint16 -> int32 for short windows of even T (the usual case): one 32-bit load yields two tokens (little-endian, as
 * the store writes them), which makes this the fastest copy measured here (about 1.6x the element loop). Window
 * offsets are multiples of T, hence even, hence 4-byte aligned in a shard that starts 4-byte aligned; an odd offset
 * (which the data order never makes) takes the element loop.
 */
function widenPairs(
  src: Uint16Array,
  outputs: Int32Array[],
  rowsPerOutput: number,
  cols: number,
  rows: Uint32Array,
  offsets: Uint32Array,
  from: number,
  to: number,
): void {
  const words = new Uint32Array(src.buffer, src.byteOffset, src.length >>> 1);
  const t = cols - 1;
  for (let i = from; i < to; i++) {
    const out = outputs[Math.floor(rows[i] / rowsPerOutput)];
    const first = offsets[i];
    let d = (rows[i] % rowsPerOutput) * cols;
    const end = d + t;
    if ((first & 1) === 1) {
      for (let s = first; d <= end; ) out[d++] = src[s++];
      continue;
    }
    let w = first >>> 1;
    while (d < end) {
      const x = words[w++];
      out[d++] = x & 0xffff;
      out[d++] = x >>> 16;
    }
    // The window's last token (at an even index) may sit in a half word past `words`: read it as uint16.
    out[d] = src[first + t];
  }
}
