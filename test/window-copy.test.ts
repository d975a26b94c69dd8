import t from 'tap';
import { Random } from '../src/util/random.js';
import { type WindowArray, copyWindows, windowsInShard } from '../src/data/windows.js';

/** The reference: row rows[i] = src[offsets[i] .. + cols), element by element. */
function naive(src: ArrayLike<number>, rowsOut: number, cols: number, rows: Uint32Array, offsets: Uint32Array): number[] {
  const out = new Array(rowsOut * cols).fill(-1);
  for (let i = 0; i < rows.length; i++) for (let j = 0; j < cols; j++) out[rows[i] * cols + j] = src[offsets[i] + j];
  return out;
}

t.test('every copy path gives the same rows as the element-by-element reference', async (t) => {
  const r = new Random(5);
  // T even and odd (the paired uint16 path needs an even T), short and long windows (the `set` path), and a shard
  // of odd length whose last window ends on its last token (no whole 32-bit word there).
  for (const T of [2, 16, 17, 32, 63, 64, 200]) {
    for (const length of [1000, 1001]) {
      for (const Src of [Uint16Array, Uint32Array]) {
        const src = new Src(length).map(() => r.int(60000));
        const n = windowsInShard(length, T);
        const offsets = Uint32Array.from({ length: n }, (_, k) => k * T);
        const rows = r.shuffle(Uint32Array.from({ length: n }, (_, k) => k));
        for (const Out of [Int32Array, Src]) {
          // Rows spread over outputs of 7 rows (the last one short), as a task spreads them over its batches.
          const outputs: WindowArray[] = [];
          for (let first = 0; first < n; first += 7) outputs.push(new Out(Math.min(7, n - first) * (T + 1)).fill(0));
          copyWindows(src, { outputs, rowsPerOutput: 7, cols: T + 1 }, rows, offsets, 0, n);
          const got = outputs.flatMap((o) => Array.from(o));
          const want = naive(src, n, T + 1, rows, offsets);
          t.equal(got.join(), want.join(), `T=${T} length=${length} ${Src.name} -> ${Out.name}`);
        }
      }
    }
  }
});

t.test('a sub-range of the list is copied and nothing else is touched; odd offsets still copy right', async (t) => {
  const src = Uint16Array.from({ length: 101 }, (_, i) => 1000 + i);
  const out = new Int32Array(3 * 5).fill(-1);
  copyWindows(src, { outputs: [out], rowsPerOutput: 3, cols: 5 }, Uint32Array.from([2, 0, 1]), Uint32Array.from([96, 3, 8]), 1, 3);
  t.same(Array.from(out), [1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, -1, -1, -1, -1, -1]);
});
