/**
 * Replacements for four tfjs-backend-wasm 4.22 kernels that copy far more memory than they need to. Installed by
 * installGradFixes (src/tf/grad-fixes.ts) once the wasm package is loaded; each keeps the stock kernel's results.
 *
 * - Identity and same-dtype Cast copy their input. The tape clones every tensor it saves for the backward pass
 *   and casts every gradient that flows back through such a clone: hundreds of copies a step. They now share the
 *   input's memory (refcounted), as the cpu backend does and as wasm's own Reshape already does; no wasm kernel
 *   writes into its inputs.
 * - Slice reads its whole input out of the wasm heap into a fresh JavaScript array (readSync) before copying the
 *   slice, and SplitV calls that Slice once per piece: splitting a [T*B, 4H] tensor into T steps copied the whole
 *   tensor T times into fresh memory, which is slow on these VMs. Both now copy from a view of the heap.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's BackendWasm that our kernels use (public methods of that class). */
export interface WasmBackend {
  incRef(dataId: tf.DataId): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type Wrap = (stock: tf.KernelFunc) => tf.KernelFunc;

function alias(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  (backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Copies x[begin : begin + size] into a new output, reading x through a view of the heap. */
function sliceFromHeap(x: tf.TensorInfo, begin: number[], size: number[], backend: WasmBackend): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  // Views are taken after makeOutput: an allocation may grow the heap, which detaches older views.
  const from = backend.typedArrayFromHeap(x);
  const to = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const offset = tf.slice_util.computeFlatOffset(begin, strides);
    to.set(from.subarray(offset, offset + to.length));
    return out;
  }
  // Copy runs along the last axis (tfjs cannot slice a scalar, so rank >= 1 here).
  const run = size[rank - 1];
  const runs = run === 0 ? 0 : tf.util.sizeFromShape(size) / run;
  const index = new Array<number>(rank - 1).fill(0);
  for (let r = 0; r < runs; r++) {
    let offset = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) offset += (begin[d] + index[d]) * strides[d];
    to.set(from.subarray(offset, offset + run), r * run);
    // Odometer over the outer axes, last axis fastest.
    for (let d = rank - 2; d >= 0 && ++index[d] === size[d]; d--) index[d] = 0;
  }
  return out;
}

export const wasmKernelFixes: Record<string, Wrap> = {
  Identity: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    return x.dtype === 'string' ? stock(args) : alias(x, args.backend);
  },
  Cast: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    return x.dtype === (args.attrs as { dtype?: string } | undefined)?.dtype ? alias(x, args.backend) : stock(args);
  },
  Slice: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return stock(args);
    const attrs = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
    return sliceFromHeap(x, begin, size, args.backend as WasmBackend);
  },
  SplitV: (stock) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return stock(args);
    const attrs = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      const piece = sliceFromHeap(x, [...begin], size, args.backend as WasmBackend);
      begin[axis] += s;
      return piece;
    });
  },
};
