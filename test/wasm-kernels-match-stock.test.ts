/** The replacement wasm kernels (src/tf/wasm-kernels.ts) return exactly what the stock kernels return. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { installGradFixes, uninstallGradFixes } from '../src/tf/grad-fixes.js';

await initBackend('wasm');

/** Runs f with the stock kernels and with the fixed ones; returns both results as plain nested arrays. */
function both(f: () => tf.Tensor | tf.Tensor[]): [unknown, unknown] {
  const run = () => tf.tidy(() => {
    const out = f();
    return (Array.isArray(out) ? out : [out]).map((o) => ({ shape: o.shape, dtype: o.dtype, values: Array.from(o.dataSync()) }));
  });
  uninstallGradFixes('wasmKernels');
  const stock = run();
  installGradFixes();
  return [run(), stock];
}

t.test('Slice: every rank, contiguous or not, every numeric dtype', async (t) => {
  const cases: [number[], number[], number[]][] = [
    [[10], [3], [4]],
    [[4, 6], [1, 0], [2, 6]], // whole rows: one contiguous copy
    [[4, 6], [1, 2], [3, 3]],
    [[3, 4, 5], [1, 1, 2], [2, 2, 3]],
    [[2, 3, 4, 5], [1, 0, 1, 2], [1, 3, 2, 2]],
    [[2, 3, 2, 2, 3], [0, 1, 0, 1, 1], [2, 2, 2, 1, 2]],
    [[4, 6], [0, 0], [0, 6]], // empty
  ];
  for (const [shape, begin, size] of cases) {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const [fixed, stock] = both(() => tf.slice(tf.range(0, tf.util.sizeFromShape(shape)).reshape(shape).cast(dtype), begin, size));
      t.same(fixed, stock, `${dtype} [${shape}] from [${begin}] size [${size}]`);
    }
  }
});

t.test('SplitV: equal and uneven pieces along any axis', async (t) => {
  const x = () => tf.range(0, 60).reshape([3, 4, 5]);
  for (const [splits, axis] of [[3, 0], [2, 1], [[1, 3, 1], 2], [[2, 2], 1]] as const) {
    const [fixed, stock] = both(() => tf.split(x(), splits as number | number[], axis));
    t.same(fixed, stock, `split ${JSON.stringify(splits)} on axis ${axis}`);
  }
});

t.test('Identity and Cast: same values; a cast that changes the type still converts', async (t) => {
  const [fixed, stock] = both(() => {
    const x = tf.tensor1d([1.5, -2.5, 3]);
    return [x.clone(), tf.cast(x, 'float32'), tf.cast(x, 'int32'), tf.cast(x, 'bool')];
  });
  t.same(fixed, stock);
});
