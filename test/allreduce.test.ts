import t from 'tap';
import { createGroupMemory, GroupMemory } from '../src/group/memory.js';
import { createSharedMemory, ReduceKernel } from '../src/group/reduce-kernel.js';

function filled(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 10 ** ((s % 7) - 3);
  }
  return a;
}

/** The reference: sum slot 0, 1, ..., K-1 in order, then scale by float32(1/K), rounding to float32 at each step. */
function reference(slots: Float32Array[], start: number, end: number): Float32Array {
  const out = new Float32Array(end - start);
  const f = new Float32Array(1);
  for (let i = start; i < end; i++) {
    f[0] = slots[0][i];
    for (let s = 1; s < slots.length; s++) f[0] = f[0] + slots[s][i];
    f[0] = f[0] * Math.fround(1 / slots.length);
    out[i - start] = f[0];
  }
  return out;
}

t.test('the SIMD reduction is bitwise equal to the scalar one, including tails', async (t) => {
  t.ok(createSharedMemory(1024), 'shared WebAssembly memory with SIMD is available here');
  for (const k of [2, 3, 4]) {
    for (const n of [1, 3, 4, 17, 1001]) {
      const init = createGroupMemory(k, n);
      const group = new GroupMemory(init);
      const slots = Array.from({ length: k }, (_, r) => {
        group.slot(r).set(filled(n, 11 * r + n));
        return group.slot(r);
      });
      for (let r = 0; r < k; r++) group.reduceChunk(r);
      const expected = reference(slots, 0, n);
      t.same(Buffer.from(group.mean.buffer, group.mean.byteOffset, n * 4), Buffer.from(expected.buffer), `K=${k}, ${n} floats`);
    }
  }
});

t.test('without shared WebAssembly memory the scalar path gives the same bits', async (t) => {
  const n = 37;
  const slots = [filled(n, 1), filled(n, 2), filled(n, 3)];
  const mean = new Float32Array(n);
  new ReduceKernel(undefined).average(slots, mean, 0, n);
  t.same(Buffer.from(mean.buffer), Buffer.from(reference(slots, 0, n).buffer));
});

t.test('a failed replica wakes the others at the barrier instead of leaving them waiting', async (t) => {
  const group = new GroupMemory(createGroupMemory(2, 8));
  group.abort(1);
  t.throws(() => group.barrier(), { name: 'GroupAborted', message: /replica 1 of the group failed/ });
  t.equal(group.abortedBy(), 1);
});
