/**
 * The shared memory of one synchronous-SGD group: where its K replicas meet every step.
 *
 * Each replica writes its gradient (all variables flattened in the model's variable order) into its own slot, waits at
 * a barrier, averages one 1/K chunk of the vector across all slots (always summing slot 0, 1, ..., K-1 in that order,
 * so the result does not depend on which replica reduces which chunk or on timing), waits again, and then every
 * replica applies the same averaged gradient: all replicas of a group hold bitwise-identical weights.
 *
 * A replica that fails raises the abort flag and wakes everybody, so the others throw instead of waiting forever;
 * the supervisor (main thread) can raise it too when a worker dies.
 */

import { createSharedMemory, ReduceKernel } from './reduce-kernel.js';

const COUNT = 0;
const GENERATION = 1;
const ABORT = 2;
const CONTROL_INTS = 4;
/** Barrier polls before sleeping (a few microseconds). */
const SPIN = 20_000;

/** Plain description of the buffers, posted to each replica worker (shared memory is shared, not copied). */
export interface GroupMemoryInit {
  replicas: number;
  parameters: number;
  control: SharedArrayBuffer;
  /** Slots then the mean, in a shared WebAssembly.Memory (SIMD reduction) or, where that is missing, a plain SAB. */
  data: WebAssembly.Memory | SharedArrayBuffer;
  /** Floats from one slot to the next (parameters rounded up to a multiple of 4, for 16-byte alignment). */
  slotStride: number;
}

export class GroupAborted extends Error {
  override name = 'GroupAborted';
  constructor(readonly replica: number) {
    super(replica >= 0 ? `replica ${replica} of the group failed` : 'the group was stopped');
  }
}

export function createGroupMemory(replicas: number, parameters: number): GroupMemoryInit {
  const slotStride = Math.ceil(parameters / 4) * 4;
  const bytes = (replicas + 1) * slotStride * 4;
  return {
    replicas,
    parameters,
    control: new SharedArrayBuffer(CONTROL_INTS * 4),
    data: createSharedMemory(bytes) ?? new SharedArrayBuffer(bytes),
    slotStride,
  };
}

export class GroupMemory {
  readonly replicas: number;
  readonly parameters: number;
  private readonly control: Int32Array;
  private readonly slotViews: Float32Array[];
  /** The averaged gradient, valid after `allReduce` returns. */
  readonly mean: Float32Array;
  private readonly kernel: ReduceKernel;

  constructor(init: GroupMemoryInit) {
    this.replicas = init.replicas;
    this.parameters = init.parameters;
    this.control = new Int32Array(init.control);
    const buffer = init.data instanceof SharedArrayBuffer ? init.data : (init.data.buffer as SharedArrayBuffer);
    const view = (index: number) => new Float32Array(buffer, index * init.slotStride * 4, init.parameters);
    this.slotViews = Array.from({ length: init.replicas }, (_, r) => view(r));
    this.mean = view(init.replicas);
    this.kernel = new ReduceKernel(init.data instanceof SharedArrayBuffer ? undefined : init.data);
  }

  /** Replica r's slot: write its gradient here before `allReduce`. */
  slot(replica: number): Float32Array {
    return this.slotViews[replica];
  }

  /** Waits until all K replicas arrive (a sense-reversing barrier on Atomics); throws GroupAborted if one failed. */
  barrier(): void {
    if (this.replicas === 1) return this.throwIfAborted();
    const generation = Atomics.load(this.control, GENERATION);
    this.throwIfAborted();
    if (Atomics.add(this.control, COUNT, 1) === this.replicas - 1) {
      Atomics.store(this.control, COUNT, 0);
      Atomics.add(this.control, GENERATION, 1);
      Atomics.notify(this.control, GENERATION);
    } else {
      // Spin briefly first: the peers usually arrive within microseconds, and a futex wake-up costs far more.
      for (let i = 0; i < SPIN && Atomics.load(this.control, GENERATION) === generation; i++);
      while (Atomics.load(this.control, GENERATION) === generation) {
        Atomics.wait(this.control, GENERATION, generation);
      }
    }
    this.throwIfAborted();
  }

  /** Averages chunk `replica` of the gradient across slots, in fixed slot order. */
  reduceChunk(replica: number): void {
    // Chunks are whole multiples of 4 floats so that every replica's SIMD loads stay 16-byte aligned.
    const chunk = Math.ceil(this.parameters / this.replicas / 4) * 4;
    const start = Math.min(this.parameters, replica * chunk);
    const end = Math.min(this.parameters, start + chunk);
    this.kernel.average(this.slotViews, this.mean, start, end);
  }

  /**
   * The whole exchange for replica r: arrive, reduce own chunk, arrive again; returns the average (`mean`). A group of
   * one replica has nothing to exchange: its own slot is the average, returned as it is (no copy on every step).
   */
  allReduce(replica: number): Float32Array {
    if (this.replicas === 1) {
      this.throwIfAborted();
      return this.slotViews[0];
    }
    this.barrier();
    this.reduceChunk(replica);
    this.barrier();
    return this.mean;
  }

  /** Marks the group failed (replica index, or -1 for the supervisor) and wakes every waiting replica. */
  abort(replica: number): void {
    Atomics.compareExchange(this.control, ABORT, 0, replica + 2);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
  }

  abortedBy(): number | undefined {
    const v = Atomics.load(this.control, ABORT);
    return v === 0 ? undefined : v - 2;
  }

  private throwIfAborted(): void {
    const by = this.abortedBy();
    if (by !== undefined) throw new GroupAborted(by);
  }
}
