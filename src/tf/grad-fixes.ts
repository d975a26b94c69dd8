/**
 * The fixes every actor installs before it trains, through initBackend (src/backend.ts).
 * Each makes training on wasm fast or possible, and each gives the stock path's numbers on every backend.
 *
 * 1. BatchMatMul: the stock gradient always calls matMul with transposeA/transposeB, which misses XNNPACK's fast
 *    path on wasm (0.7-2 against 14-27 GFLOP/s). Ours materialises the transpose (a cheap copy) and calls a plain
 *    matMul. Only the registered gradient of the BatchMatMul kernel changes; tf.fused.matMul carries its own
 *    gradient with transposed matMuls, so training code must not use it. With the native kernels
 *    (./native-kernels.ts) transposed operands cost nothing, and the gradient passes the transpose flags instead.
 * 2. Embedding lookup: tf.gather's gradient needs UnsortedSegmentSum, which wasm lacks (and cpu runs in
 *    O(segments * N * D)). `embeddingLookup` gathers forward and scatters backward (scatterND sums repeated ids).
 * 3. On wasm, four kernels that copy far more memory than needed (Identity, Cast, Slice, SplitV) are replaced by
 *    equivalent ones: see ./wasm-kernels.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { activeNativeKernels } from './native-kernels.js';
import { wasmKernelFixes } from './wasm-kernels.js';

const BATCH_MAT_MUL = 'BatchMatMul';

/** Swaps the last two axes: the materialised transpose of a (batched) matrix. */
function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(x, perm);
}

/** C = op(A) op(B); every product below is a plain matMul so wasm stays on its fast path. */
const batchMatMulGrad: tf.GradConfig = {
  kernelName: BATCH_MAT_MUL,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved;
    const g = Array.isArray(dy) ? dy[0] : dy;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (activeNativeKernels()) {
      // BLAS reads a transposed operand in place: nothing is materialised.
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b), b: () => tf.matMul(g, a, true, false) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g) };
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    }
    if (!transposeA && !transposeB) {
      // C = A B: dA = dy B^T, dB = A^T dy
      return { a: () => tf.matMul(g, transposeLast2(b)), b: () => tf.matMul(transposeLast2(a), g) };
    }
    if (!transposeA && transposeB) {
      // C = A B^T: dA = dy B, dB = dy^T A
      return { a: () => tf.matMul(g, b), b: () => tf.matMul(transposeLast2(g), a) };
    }
    if (transposeA && !transposeB) {
      // C = A^T B: dA = B dy^T, dB = A dy
      return { a: () => tf.matMul(b, transposeLast2(g)), b: () => tf.matMul(a, g) };
    }
    // C = A^T B^T: dA = (dy B)^T, dB = (A dy)^T
    return { a: () => transposeLast2(tf.matMul(g, b)), b: () => transposeLast2(tf.matMul(a, g)) };
  },
};

let stockBatchMatMulGrad: tf.GradConfig | undefined;
const stockWasmKernels = new Map<string, tf.KernelConfig>();
const installedWasmKernels = new Set<tf.KernelConfig>();

function installWasmKernels(): void {
  for (const [name, wrap] of Object.entries(wasmKernelFixes)) {
    const current = tf.getKernel(name, 'wasm');
    // Not registered: the wasm package is not loaded in this thread, so there is nothing to fix.
    if (current === undefined || installedWasmKernels.has(current)) continue;
    const fixed: tf.KernelConfig = { ...current, kernelFunc: wrap(current.kernelFunc) };
    stockWasmKernels.set(name, current);
    installedWasmKernels.add(fixed);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(fixed);
  }
}

/**
 * Registers the fixed gradients over the stock ones, and on wasm (when its package is loaded) the fixed kernels.
 * Idempotent; both registries are global to the thread. Call it after loading a backend package: src/backend.ts does.
 */
export function installGradFixes(): void {
  const current = tf.getGradient(BATCH_MAT_MUL);
  if (current !== batchMatMulGrad) {
    stockBatchMatMulGrad = current;
    tf.registerGradient(batchMatMulGrad);
  }
  installWasmKernels();
}

/** Puts the stock gradient and/or kernels back: for comparisons in tests and benchmarks only. */
export function uninstallGradFixes(which: 'all' | 'matMulGradient' | 'wasmKernels' = 'all'): void {
  if (which !== 'wasmKernels' && stockBatchMatMulGrad !== undefined && tf.getGradient(BATCH_MAT_MUL) === batchMatMulGrad) {
    tf.registerGradient(stockBatchMatMulGrad);
  }
  if (which === 'matMulGradient') return;
  for (const [name, stock] of stockWasmKernels) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(stock);
  }
  stockWasmKernels.clear();
  installedWasmKernels.clear();
}

/** Whether the fixed gradient, and the fixed wasm kernels where wasm is loaded, are the ones registered now. */
export function gradFixesInstalled(): boolean {
  const kernelsFixed = Object.keys(wasmKernelFixes).every((name) => {
    const k = tf.getKernel(name, 'wasm');
    return k === undefined || installedWasmKernels.has(k);
  });
  return kernelsFixed && tf.getGradient(BATCH_MAT_MUL) === batchMatMulGrad;
}

/**
 * Rows of `table` [V, D] at `ids` (int32, any shape): [...ids.shape, D]. Differentiable in `table`; its gradient is
 * a dense [V, D] tensor (the optimizers update every row anyway). Call inside tf.tidy.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  // customGrad types its arguments as (Tensor | GradSaveFunc)[]: they are (table, ids, save) here.
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, i, save] = args as [tf.Tensor2D, tf.Tensor, tf.GradSaveFunc];
    save([i]);
    return {
      value: tf.gather(t, i),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedIds] = saved;
        const [rows, width] = t.shape;
        const flatIds = tf.reshape(savedIds, [savedIds.size, 1]);
        const flatDy = tf.reshape(dy, [savedIds.size, width]);
        // The ids get no gradient; the tape never asks for it (it prunes int inputs), but customGrad wants one.
        return [tf.scatterND(flatIds, flatDy, [rows, width]), tf.zerosLike(savedIds)];
      },
    };
  });
  return lookup(table, ids);
}
