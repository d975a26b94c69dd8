/**
 * Native kernels under the wasm backend: the kernels that dominate a training step run in C on the wasm heap.
 *
 * The addon (native/, built at install by scripts/build-native.mjs when a C compiler and OpenBLAS are there) gets
 * Float32Array views of tfjs's wasm memory and writes into an output that tfjs allocated, so no tensor is copied:
 *
 * - BatchMatMul is OpenBLAS's sgemm, transposed operands included (BLAS reads them in place; XNNPACK in the wasm
 *   backend falls to 0.5-1.8 GFLOP/s on them, so the wasm path materialises transposes instead) and any batch
 *   broadcasting;
 * - the fused cross-entropy of src/train/loss.ts takes its softmax, log-sum-exp and per-row dot products from one
 *   native pass over the logits (`softmaxRows`) instead of several wasm passes;
 * - Adam's update of a variable and its two moments is one pass (`NativeAdam`, src/tf/native-adam.ts) instead of
 *   eleven wasm kernels.
 *
 * Everything else stays on the wasm kernels. A run is deterministic for a given kernel set and BLAS thread count:
 * OpenBLAS splits a product over threads by output blocks, each summed in a fixed order.
 *
 * OpenBLAS keeps one thread count for the whole process; every actor of a run sets the same one (the blasThreads key).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { WasmBackend as WasmHeap } from './wasm-kernels.js';

/** The addon's functions (native/src/kernels.c). */
export interface NativeAddon {
  batchMatMul(a: Float32Array, b: Float32Array, out: Float32Array, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean, pairs: Int32Array): void;
  linear(x: Float32Array, w: Float32Array, b: Float32Array, out: Float32Array): void;
  columnSums(x: Float32Array, out: Float32Array): void;
  lstmForward(xw: Float32Array, u: Float32Array, h0: Float32Array, c0: Float32Array, gates: Float32Array, cs: Float32Array, tanhCs: Float32Array, out: Float32Array): void;
  lstmBackward(
    dy: Float32Array, gates: Float32Array, cs: Float32Array, tanhCs: Float32Array, out: Float32Array, h0: Float32Array, c0: Float32Array,
    u: Float32Array, dz: Float32Array, du: Float32Array, dh0: Float32Array, dc0: Float32Array,
  ): void;
  softmaxRows(logits: Float32Array, labels: Int32Array, probs: Float32Array, stats: Float32Array): void;
  crossEntropyGrad(probs: Float32Array, labels: Int32Array, teacher: Float32Array, weight: Float32Array, smoothing: number, scale: number, out: Float32Array): void;
  adam(
    w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, accBeta1: Float32Array, accBeta2: Float32Array,
    wOut: Float32Array, mOut: Float32Array, vOut: Float32Array, lr: number, beta1: number, beta2: number, epsilon: number,
  ): void;
  setThreads(threads: number): void;
  describe(): string;
}

/** Why the native kernels are or are not available in this install. */
export type NativeStatus = { available: true; addon: NativeAddon; path: string } | { available: false; reason: string };

/** The one-line hint printed where the native kernels were asked for (or would help) but are not built. */
export const NATIVE_HOW =
  'install a C compiler and OpenBLAS (Debian: apt-get install build-essential libopenblas-dev), then run node scripts/build-native.mjs in the codistill package';

function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'codistill') return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

let status: NativeStatus | undefined;

/** Loads the addon once per thread (CODISTILL_NATIVE=0 pretends it is not built). */
export function nativeStatus(): NativeStatus {
  if (status) return status;
  if (process.env.CODISTILL_NATIVE === '0') return (status = { available: false, reason: 'CODISTILL_NATIVE=0' });
  const root = packageRoot();
  const path = root && join(root, 'native', 'build', 'Release', 'codistill_native.node');
  if (!path || !existsSync(path)) return (status = { available: false, reason: 'not built at install' });
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    return (status = { available: true, addon, path });
  } catch (err) {
    return (status = { available: false, reason: `${path} does not load: ${(err as Error).message.split('\n')[0]}` });
  }
}

/** For each output matrix of a broadcast batch product, the indices of the A and B matrices it multiplies. */
export function broadcastPairs(outerA: number[], outerB: number[], outer: number[]): Int32Array {
  const count = tf.util.sizeFromShape(outer);
  const pairs = new Int32Array(2 * count);
  const index = new Array<number>(outer.length).fill(0);
  const flat = (dims: number[], idx: number[]): number => {
    // Right-aligned broadcasting: a dimension of 1 (or a missing one) always reads index 0.
    let f = 0;
    const skip = outer.length - dims.length;
    for (let d = 0; d < dims.length; d++) f = f * dims[d] + (dims[d] === 1 ? 0 : idx[d + skip]);
    return f;
  };
  for (let i = 0; i < count; i++) {
    pairs[2 * i] = flat(outerA, index);
    pairs[2 * i + 1] = flat(outerB, index);
    for (let d = outer.length - 1; d >= 0 && ++index[d] === outer[d]; d--) index[d] = 0;
  }
  return pairs;
}

type Info = tf.TensorInfo;

function batchMatMulKernel(addon: NativeAddon): tf.KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error('BatchMatMul: only float32 tensors are supported');
    const heap = args.backend as WasmHeap;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== kb) {
      throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
    }
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
    const [out] = withOutputs(heap, [[...outer, m, n]], (v, [o]) =>
      addon.batchMatMul(v(a), v(b), v(o), m, n, k, transposeA, transposeB, broadcastPairs(outerA, outerB, outer)),
    );
    return out;
  };
}

type HeapKernel = (inputs: Record<string, Info>, attrs: Record<string, unknown>, heap: WasmHeap) => Info | Info[];

/**
 * Allocates the outputs first, then hands the addon views of inputs and outputs alike: an allocation may grow the
 * heap, which detaches every view taken before it.
 */
function withOutputs(heap: WasmHeap, shapes: number[][], run: (view: (t: Info) => Float32Array, outs: Info[]) => void): Info[] {
  const outs = shapes.map((shape) => heap.makeOutput(shape, 'float32'));
  run((t) => heap.typedArrayFromHeap(t) as Float32Array, outs);
  return outs;
}

const NO_TEACHER = new Float32Array(0);

/** The fused kernels of this module, registered for 'wasm' under these names and called through runKernel. */
const fusedKernels = (addon: NativeAddon): Record<string, HeapKernel> => ({
  CodistillLinear: ({ x, w, b }, _, heap) => {
    const [out] = withOutputs(heap, [[x.shape[0], w.shape[1]]], (v, [o]) => addon.linear(v(x), v(w), v(b), v(o)));
    return out;
  },
  CodistillColumnSums: ({ x }, _, heap) => {
    const [out] = withOutputs(heap, [[x.shape[1]]], (v, [o]) => addon.columnSums(v(x), v(o)));
    return out;
  },
  CodistillLstmForward: ({ xw, u, h0, c0 }, _, heap) => {
    const [B, H] = h0.shape;
    const TB = xw.shape[0];
    return withOutputs(heap, [[TB, 4 * H], [TB, H], [TB, H], [TB + B, H]], (v, [gates, cs, tcs, out]) =>
      addon.lstmForward(v(xw), v(u), v(h0), v(c0), v(gates), v(cs), v(tcs), v(out)),
    );
  },
  CodistillLstmBackward: ({ dy, gates, cs, tanhCs, out, h0, c0, u }, _, heap) =>
    withOutputs(heap, [gates.shape, u.shape, h0.shape, c0.shape], (v, [dz, du, dh0, dc0]) =>
      addon.lstmBackward(v(dy), v(gates), v(cs), v(tanhCs), v(out), v(h0), v(c0), v(u), v(dz), v(du), v(dh0), v(dc0)),
    ),
  CodistillSoftmaxRows: ({ logits, labels }, _, heap) =>
    withOutputs(heap, [logits.shape, [logits.shape[0], 2]], (v, [probs, stats]) =>
      addon.softmaxRows(v(logits), heap.typedArrayFromHeap(labels) as Int32Array, v(probs), v(stats)),
    ),
  CodistillCrossEntropyGrad: ({ probs, labels, weight, teacher }, attrs, heap) => {
    const [out] = withOutputs(heap, [probs.shape], (v, [o]) =>
      addon.crossEntropyGrad(
        v(probs), heap.typedArrayFromHeap(labels) as Int32Array, teacher ? v(teacher) : NO_TEACHER, v(weight),
        attrs.smoothing as number, attrs.scale as number, v(o),
      ),
    );
    return out;
  },
  CodistillAdam: ({ w, m, v, g, accBeta1, accBeta2 }, attrs, heap) =>
    withOutputs(heap, [w.shape, w.shape, w.shape], (view, [wOut, mOut, vOut]) =>
      addon.adam(
        view(w), view(m), view(v), view(g), view(accBeta1), view(accBeta2), view(wOut), view(mOut), view(vOut),
        attrs.lr as number, attrs.beta1 as number, attrs.beta2 as number, attrs.epsilon as number,
      ),
    ),
});

function run(name: string, inputs: Record<string, tf.Tensor | undefined>, attrs: Record<string, unknown> = {}): tf.Tensor[] {
  const given = Object.fromEntries(Object.entries(inputs).filter(([, t]) => t !== undefined)) as tf.NamedTensorMap;
  const out = tf.engine().runKernel(name, given, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

/**
 * x·w + b with the bias added in the product's own pass, and its gradient: dx = dy·wᵀ, dw = xᵀ·dy (transposed
 * operands read in place) and db = the column sums of dy. Native kernels only: `affine` picks it.
 */
export function nativeLinear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, ws, bs, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    save([xs, ws]);
    return {
      value: run('CodistillLinear', { x: xs, w: ws, b: bs })[0],
      gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) => [
        tf.matMul(dy as tf.Tensor2D, ws as tf.Tensor2D, false, true),
        tf.matMul(xs as tf.Tensor2D, dy as tf.Tensor2D, true, false),
        run('CodistillColumnSums', { x: dy })[0],
      ],
    };
  });
  return op(x, w, b) as tf.Tensor2D;
}

/**
 * One LSTM layer's recurrence in two native calls (all T steps forward, all T steps back), with the same inputs
 * and output as lstmRecurrence's custom op: [h_1..h_T; c_T], [(T+1)*B, H].
 */
export function nativeLstm(projected: tf.Tensor2D, recurrentKernel: tf.Tensor2D, h0: tf.Tensor2D, c0: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xw, u, hStart, cStart, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const [gates, cs, tanhCs, out] = run('CodistillLstmForward', { xw, u, h0: hStart, c0: cStart });
    save([gates, cs, tanhCs, out, hStart, cStart, u]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, [gates, cs, tanhCs, out, h0, c0, u]: tf.Tensor[]) =>
        run('CodistillLstmBackward', { dy, gates, cs, tanhCs, out, h0, c0, u }),
    };
  });
  return op(projected, recurrentKernel, h0, c0) as tf.Tensor2D;
}

/** Softmax of each row of logits [P, C], and per row [log-sum-exp, logit of the label] ([P, 2]). */
export function nativeSoftmaxRows(logits: tf.Tensor2D, labels: tf.Tensor1D): [tf.Tensor2D, tf.Tensor2D] {
  const [probs, stats] = run('CodistillSoftmaxRows', { logits, labels: labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32') });
  return [probs as tf.Tensor2D, stats as tf.Tensor2D];
}

/**
 * (probs * weight - y' - teacher) * scale in one pass, y' the (smoothed) one-hot labels; weight is [1] or one per
 * row, teacher [P, C] (already scaled) or absent.
 */
export function nativeCrossEntropyGrad(
  probs: tf.Tensor2D, labels: tf.Tensor1D, weight: tf.Tensor, teacher: tf.Tensor2D | undefined, smoothing: number, scale: number,
): tf.Tensor2D {
  const l = labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32');
  return run('CodistillCrossEntropyGrad', { probs, labels: l, weight: tf.reshape(weight, [-1]), teacher }, { smoothing, scale })[0] as tf.Tensor2D;
}

/** Adam's new [weights, first moment, second moment] of one variable (tfjs's order of operations, one pass). */
export function nativeAdamUpdate(
  w: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, accBeta1: tf.Tensor, accBeta2: tf.Tensor,
  o: { lr: number; beta1: number; beta2: number; epsilon: number },
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const [wOut, mOut, vOut] = run('CodistillAdam', { w, m, v, g, accBeta1, accBeta2 }, o);
  return [wOut, mOut, vOut];
}

export interface NativeKernelsOptions {
  /** OpenBLAS threads (one setting per process). */
  threads: number;
}

const stock = new Map<string, tf.KernelConfig>();
let active: NativeAddon | undefined;

/**
 * The addon whose kernels are registered in this thread while the wasm backend is the active one (models and the
 * loss ask before they take a native op).
 */
export function activeNativeKernels(): NativeAddon | undefined {
  return active && tf.getBackend() === 'wasm' ? active : undefined;
}

/** Registers the native kernels for 'wasm' in this thread (the wasm backend must be loaded). Idempotent. */
export function installNativeKernels(addon: NativeAddon, o: NativeKernelsOptions): void {
  addon.setThreads(o.threads);
  if (active === addon) return;
  for (const [name, kernel] of Object.entries(fusedKernels(addon))) {
    if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: (a) => kernel(a.inputs as Record<string, Info>, a.attrs ?? {}, a.backend as WasmHeap) });
  }
  const kernels: Record<string, tf.KernelFunc> = { BatchMatMul: batchMatMulKernel(addon) };
  for (const [name, kernelFunc] of Object.entries(kernels)) {
    const current = tf.getKernel(name, 'wasm');
    if (current === undefined) throw new Error(`native kernels: the wasm backend has no ${name} kernel to take over (is it loaded?)`);
    if (!stock.has(name)) stock.set(name, current);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  }
  active = addon;
}

/** Puts the stock wasm kernels back (tests compare the two paths in one thread). */
export function uninstallNativeKernels(): void {
  for (const [name, config] of stock) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  stock.clear();
  active = undefined;
}
