import t from 'tap';
import { Random } from '../src/util/random.js';
import { copySpans, widenBatch, windowsInShard } from '../src/data/windows.js';

t.test('copySpans puts each span in its row, whole, and touches nothing else', async (t) => {
  const r = new Random(5);
  for (const Src of [Uint16Array, Uint32Array]) {
    const src = new Src(1001).map(() => r.int(60000));
    const cols = 3 * 16 + 1;
    // 20 spans into 21 rows, listed in shuffled row order, copied in two calls.
    const n = 20;
    const offsets = Uint32Array.from({ length: n }, (_, k) => k * 48);
    const rows = r.shuffle(Uint32Array.from({ length: n }, (_, k) => k));
    const out = new Src(21 * cols + 2).fill(7);
    copySpans(src, out, cols, rows, offsets, 0, 11);
    copySpans(src, out, cols, rows, offsets, 11, n);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < cols; j++) if (out[rows[i] * cols + j] !== src[offsets[i] + j]) bad++;
    }
    t.equal(bad, 0, `${Src.name}: every span copied`);
    t.same(Array.from(out.subarray(20 * cols)), Array(cols + 2).fill(7), 'rows without a span stay untouched');
  }
});

t.test('widenBatch cuts window k of every row into int32, T+1 tokens a row', async (t) => {
  const r = new Random(9);
  for (const T of [2, 15, 16, 32]) {
    for (const Src of [Uint16Array, Uint32Array]) {
      const m = 5;
      const L = m * T + 1;
      const rows = 4;
      const chunk = new Src(rows * L).map(() => r.int(65536));
      const out = new Int32Array(rows * (T + 1));
      for (let k = 0; k < m; k++) {
        widenBatch(chunk, L, rows, T, k, out);
        const want: number[] = [];
        for (let row = 0; row < rows; row++) want.push(...chunk.subarray(row * L + k * T, row * L + k * T + T + 1));
        t.equal(Array.from(out).join(), want.join(), `T=${T} ${Src.name} k=${k}`);
      }
    }
  }
  t.equal(windowsInShard(1000, 16), 62);
});
