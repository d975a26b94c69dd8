import t from 'tap';
import { Random } from '../src/util/random.js';
import { widenBatch, windowsInShard } from '../src/workloads/lm/data/windows.js';

t.test('widenBatch cuts window k of every row of a chunk into int32, T+1 tokens a row, wherever the rows start', async (t) => {
  const r = new Random(9);
  for (const T of [2, 15, 16, 32]) {
    for (const Src of [Uint16Array, Uint32Array]) {
      const m = 5;
      const L = m * T + 1;
      const rows = 4;
      // Two chunks of 4 rows whose spans lie anywhere in the tokens, in no order; chunk 1 is cut.
      const tokens = new Src(3 * rows * L).map(() => r.int(65536));
      const rowStarts = r.shuffle(Uint32Array.from({ length: 3 * rows }, (_, i) => i * L)).subarray(0, 2 * rows);
      const out = new Int32Array(rows * (T + 1));
      for (let k = 0; k < m; k++) {
        widenBatch(tokens, rowStarts, rows, rows, T, k, out);
        const want: number[] = [];
        for (let row = 0; row < rows; row++) {
          const s = rowStarts[rows + row] + k * T;
          want.push(...tokens.subarray(s, s + T + 1));
        }
        t.equal(Array.from(out).join(), want.join(), `T=${T} ${Src.name} k=${k}`);
      }
    }
  }
  t.equal(windowsInShard(1000, 16), 62);
});
