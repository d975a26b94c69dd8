/**
 * All of a model's variables (or their gradients) as ONE Float32Array in variable order: the layout of the group's
 * shared-memory all-reduce and of a checkpoint's weights. Offsets follow `model.variables`, nothing else.
 *
 * Reads (dataSync) happen outside tf.tidy on purpose: a typed array returned from tidy is scanned element by element.
 */
import * as tf from '@tensorflow/tfjs';

/** Total number of floats in `vars`. */
export function flatLength(vars: readonly tf.Variable[]): number {
  return vars.reduce((n, v) => n + v.size, 0);
}

function checkLength(flat: Float32Array, vars: readonly tf.Variable[], what: string): void {
  const need = flatLength(vars);
  if (flat.length !== need) throw new Error(`${what} holds ${flat.length} floats; the model's variables need ${need}`);
}

/**
 * A tensor over `values` that owns its memory. wasm copies into its heap anyway; other backends (cpu, tfjs-node)
 * keep a reference to the array they are given, and `values` is usually a view of a buffer that changes next step.
 */
function ownedTensor(values: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(tf.getBackend() === 'wasm' ? values : values.slice(), shape, 'float32');
}

/** The wasm backend's view of a tensor's memory inside its heap (valid until the next allocation). */
interface WasmHeap {
  dataIdMap: { has(dataId: tf.DataId): boolean };
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

function wasmHeap(): WasmHeap | undefined {
  const backend = tf.engine().backend as unknown as Partial<WasmHeap>;
  return typeof backend.typedArrayFromHeap === 'function' && backend.dataIdMap ? (backend as WasmHeap) : undefined;
}

/**
 * Copies the tensors' values into `out`, back to back. On wasm straight from its heap: dataSync would first copy
 * into a fresh array, and fresh memory is slow on these VMs (measured: they fill new pages slowly), on the hot path of every step.
 */
function copyOut(tensors: readonly tf.Tensor[], out: Float32Array): Float32Array {
  const heap = wasmHeap();
  let offset = 0;
  for (const t of tensors) {
    if (t.dtype !== 'float32') throw new Error(`expected float32 values, got ${t.dtype}`);
    const values = heap?.dataIdMap.has(t.dataId) ? heap.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
    out.set(values, offset);
    offset += t.size;
  }
  return out;
}

/** Copies each variable's gradient into `out`, in variable order. Missing gradients are an error. */
export function gradsToFlat(grads: tf.NamedTensorMap, vars: readonly tf.Variable[], out: Float32Array): Float32Array {
  checkLength(out, vars, 'the gradient buffer');
  const ordered = vars.map((v) => {
    const g = grads[v.name];
    if (g === undefined) throw new Error(`no gradient for variable ${v.name}`);
    return g;
  });
  return copyOut(ordered, out);
}

/** Named gradient tensors built from `flat` (variable order); keys are the variables' names. Call inside tf.tidy. */
export function flatToGrads(flat: Float32Array, vars: readonly tf.Variable[]): tf.NamedTensorMap {
  checkLength(flat, vars, 'the flat gradient');
  const grads: tf.NamedTensorMap = {};
  let offset = 0;
  for (const v of vars) {
    grads[v.name] = ownedTensor(flat.subarray(offset, offset + v.size), v.shape);
    offset += v.size;
  }
  return grads;
}

/** The variables' current values in one array (a new one unless `out` is given). */
export function weightsToFlat(vars: readonly tf.Variable[], out = new Float32Array(flatLength(vars))): Float32Array {
  checkLength(out, vars, 'the weight buffer');
  return copyOut(vars, out);
}

/** Assigns `flat` (variable order) into the variables. */
export function flatToWeights(flat: Float32Array, vars: readonly tf.Variable[]): void {
  checkLength(flat, vars, 'the flat weights');
  let offset = 0;
  for (const v of vars) {
    const slice = flat.subarray(offset, offset + v.size);
    tf.tidy(() => v.assign(ownedTensor(slice, v.shape)));
    offset += v.size;
  }
}
