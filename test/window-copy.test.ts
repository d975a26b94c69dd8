import t from 'tap';
import { Random } from '../src/util/random.js';
import { copySpans, widenBatch, windowsInShard } from '../src/data/windows.js';

t.test('copySpans puts each span in its chunk row, whole, and touches nothing else', async (t) => {
  const r = new Random(5);
  for (const Src of [Uint16Array, Uint32Array]) {
    const src = new Src(1001).map(() => r.int(60000));
    const cols = 3 * 16 + 1;
    // 20 spans into chunks of 3 rows (the last chunk short), listed in shuffled row order, copied in two calls.
    const n = 20;
    const offsets = Uint32Array.from({ length: n }, (_, k) => k * 48);
    const rows = r.shuffle(Uint32Array.from({ length: n }, (_, k) => k));
    const chunks = Array.from({ length: 7 }, () => new Src(3 * cols + 2).fill(7));
    copySpans(src, chunks, 3, cols, rows, offsets, 0, 11);
    copySpans(src, chunks, 3, cols, rows, offsets, 11, n);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const chunk = chunks[Math.floor(rows[i] / 3)];
      const at = (rows[i] % 3) * cols;
      for (let j = 0; j < cols; j++) if (chunk[at + j] !== src[offsets[i] + j]) bad++;
    }
    t.equal(bad, 0, `${Src.name}: every span copied`);
    t.same(Array.from(chunks[6].subarray(2 * cols)), Array(cols + 2).fill(7), 'rows without a span stay untouched');
    t.same(Array.from(chunks[0].subarray(3 * cols)), [7, 7], 'nothing written past a chunk');
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
