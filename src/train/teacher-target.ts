/**
 * The distillation target a teacher makes for a batch: the average of its snapshots' probabilities (or logits) at the
 * distilled positions, dense or as the top k entries of each position, written into a shared buffer that its group
 * uses again step after step.
 *
 * Why shared buffers, used again: a dense target of 1,024 positions over 8,192 classes is 32 MB, and these machines
 * fill fresh memory slowly (a new 32 MB array took longer to fill than the teacher's forward pass that made it). A
 * group keeps a few `SharedArrayBuffer`s (`TargetBuffers`), the teacher writes each target into one, the replicas
 * read their rows' share as views of it, and the buffer returns to the group's pool once the step is done. Nothing
 * is copied between threads, and no page is touched for the first time after the first steps.
 */
import * as tf from '@tensorflow/tfjs';
import type { TeacherTarget } from '../protocol.js';
import type { Batch, Model } from '../workloads/workload.js';

export interface TargetRequest {
  output: 'probs' | 'logits';
  /** > 0: keep each position's k largest entries, renormalised to sum to 1. */
  topK: number;
  /** The distilled positions (sorted), or every position. */
  positions?: Int32Array;
}

/** Bytes a target of `positions` positions over `classes` classes needs (dense, or k floats and k ints each). */
export const targetBytes = (positions: number, classes: number, topK: number): number =>
  topK > 0 ? positions * topK * 8 : positions * classes * 4;

/** Averaged probabilities (or logits) of the models on a batch, [P, C]. Call inside tidy. */
export function averaged(models: readonly Model[], batch: Batch, output: 'probs' | 'logits', at?: tf.Tensor1D): tf.Tensor2D {
  const parts = models.map((m) => (output === 'probs' ? tf.softmax(m.logits(batch, at)) : m.logits(batch, at)));
  return (parts.length === 1 ? parts[0] : tf.addN(parts).div(parts.length)) as tf.Tensor2D;
}

/**
 * Copies a tensor's values into `into` (of the same length). On the wasm backend it reads them where they lie on the
 * heap; elsewhere through dataSync.
 */
export function readInto(t: tf.Tensor, into: Float32Array | Int32Array): void {
  const backend = tf.engine().backend as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array | Int32Array };
  into.set(typeof backend.typedArrayFromHeap === 'function' ? backend.typedArrayFromHeap(t) : (t.dataSync() as Float32Array | Int32Array));
}

/**
 * The models' averaged prediction for `batch`, written into `into` (at least `targetBytes` long). The target's arrays
 * are views of `into`.
 */
export function teacherTarget(models: readonly Model[], batch: Batch, req: TargetRequest, into: SharedArrayBuffer): TeacherTarget {
  const positions = req.positions?.length ?? models[0].positions(batch.rows);
  const need = targetBytes(positions, models[0].classes, req.topK);
  if (into.byteLength < need) throw new Error(`a teacher target needs ${need} bytes, its buffer has ${into.byteLength}`);
  const at = () => (req.positions ? tf.tensor1d(req.positions, 'int32') : undefined);
  if (req.topK > 0) {
    const n = positions * req.topK;
    const probs = new Float32Array(into, 0, n);
    const indices = new Int32Array(into, n * 4, n);
    tf.tidy(() => {
      const top = tf.topk(averaged(models, batch, req.output, at()), req.topK);
      readInto(top.values.div(top.values.sum(1, true)), probs);
      readInto(top.indices, indices);
    });
    return { kind: 'topk', k: req.topK, indices, probs };
  }
  const values = new Float32Array(into, 0, positions * models[0].classes);
  tf.tidy(() => readInto(averaged(models, batch, req.output, at()), values));
  return { kind: 'dense', values };
}

/**
 * A group's pool of target buffers: `take` one big enough (a new one only when none is free), `give` it back when the
 * step that read it is done. A buffer never given back (a step abandoned by a stop) is simply collected.
 */
export class TargetBuffers {
  private readonly free: SharedArrayBuffer[] = [];

  /** The teacher works one step ahead: one buffer being written, one being read, one spare. */
  constructor(private readonly keep = 3) {}

  take(bytes: number): SharedArrayBuffer {
    const i = this.free.findIndex((b) => b.byteLength >= bytes);
    return i >= 0 ? this.free.splice(i, 1)[0] : new SharedArrayBuffer(bytes);
  }

  give(buffer: SharedArrayBuffer): void {
    if (this.free.length < this.keep) this.free.push(buffer);
  }
}
