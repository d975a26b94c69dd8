/**
 * The arithmetic of the group all-reduce, on the group's shared memory.
 *
 * The slots and the mean live in one shared WebAssembly.Memory, so a 128-bit SIMD kernel (wasm/reduce.wat) can sum
 * them four floats at a time: several times faster than a scalar JavaScript loop. Every element sees the same
 * operations in the same order as the scalar code (a[i] + b[i], then the scale), so the result is bitwise identical
 * whichever path runs; the scalar path handles the tail and serves where WebAssembly SIMD is missing.
 */
import { REDUCE_WASM_BASE64 } from './wasm/reduce-wasm.js';

interface Kernels {
  average2(dst: number, a: number, b: number, n: number, scale: number): void;
  accumulate(dst: number, src: number, n: number): void;
  scale(dst: number, n: number, scale: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

function reduceModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(REDUCE_WASM_BASE64, 'base64'));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** A shared memory of at least `bytes` bytes, or undefined where shared WebAssembly memory is unavailable. */
export function createSharedMemory(bytes: number): WebAssembly.Memory | undefined {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  if (pages > 65536 || !reduceModule()) return undefined;
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  } catch {
    return undefined;
  }
}

/** Averages chunks of K float arrays that all lie in `memory` (views of its buffer) into `mean`. */
export class ReduceKernel {
  private readonly kernels: Kernels | undefined;

  constructor(memory: WebAssembly.Memory | undefined) {
    const module = memory && reduceModule();
    this.kernels = module ? (new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels) : undefined;
  }

  /** mean[start:end] = (sum over s of slots[s][start:end]) / K, slot 0 first. */
  average(slots: readonly Float32Array[], mean: Float32Array, start: number, end: number): void {
    const k = slots.length;
    // A float32 scale: float32 x float32 computed in double and rounded is exactly the SIMD float32 product.
    const scale = Math.fround(1 / k);
    if (k === 1) {
      mean.set(slots[0].subarray(start, end), start);
      return;
    }
    // The SIMD kernels take whole groups of four floats; the scalar loops below finish the tail.
    const vec = this.kernels ? (end - start) & ~3 : 0;
    const at = (a: Float32Array, i: number) => a.byteOffset + i * 4;
    if (k === 2) {
      if (vec) this.kernels!.average2(at(mean, start), at(slots[0], start), at(slots[1], start), vec, scale);
      const a = slots[0];
      const b = slots[1];
      for (let i = start + vec; i < end; i++) mean[i] = (a[i] + b[i]) * scale;
      return;
    }
    mean.set(slots[0].subarray(start, end), start);
    for (let s = 1; s < k; s++) {
      const src = slots[s];
      if (vec) this.kernels!.accumulate(at(mean, start), at(src, start), vec);
      for (let i = start + vec; i < end; i++) mean[i] += src[i];
    }
    if (vec) this.kernels!.scale(at(mean, start), vec, scale);
    for (let i = start + vec; i < end; i++) mean[i] *= scale;
  }
}
