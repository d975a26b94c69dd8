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

const COUNT = 0;
const GENERATION = 1;
const ABORT = 2;
const CONTROL_INTS = 4;

/** Plain description of the buffers, posted to each replica worker (SharedArrayBuffers are shared, not copied). */
export interface GroupMemoryInit {
  replicas: number;
  parameters: number;
  control: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  mean: SharedArrayBuffer;
}

export class GroupAborted extends Error {
  override name = 'GroupAborted';
  constructor(readonly replica: number) {
    super(replica >= 0 ? `replica ${replica} of the group failed` : 'the group was stopped');
  }
}

export function createGroupMemory(replicas: number, parameters: number): GroupMemoryInit {
  return {
    replicas,
    parameters,
    control: new SharedArrayBuffer(CONTROL_INTS * 4),
    slots: new SharedArrayBuffer(replicas * parameters * 4),
    mean: new SharedArrayBuffer(parameters * 4),
  };
}

export class GroupMemory {
  readonly replicas: number;
  readonly parameters: number;
  private readonly control: Int32Array;
  private readonly slotViews: Float32Array[];
  /** The averaged gradient, valid after `allReduce` returns. */
  readonly mean: Float32Array;

  constructor(init: GroupMemoryInit) {
    this.replicas = init.replicas;
    this.parameters = init.parameters;
    this.control = new Int32Array(init.control);
    this.slotViews = Array.from({ length: init.replicas }, (_, r) => new Float32Array(init.slots, r * init.parameters * 4, init.parameters));
    this.mean = new Float32Array(init.mean);
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
      while (Atomics.load(this.control, GENERATION) === generation) {
        Atomics.wait(this.control, GENERATION, generation);
      }
    }
    this.throwIfAborted();
  }

  /** Averages chunk `replica` of the gradient across slots, in fixed slot order. */
  reduceChunk(replica: number): void {
    const k = this.replicas;
    const chunk = Math.ceil(this.parameters / k);
    const start = Math.min(this.parameters, replica * chunk);
    const end = Math.min(this.parameters, start + chunk);
    const slots = this.slotViews;
    const mean = this.mean;
    if (k === 1) {
      mean.set(slots[0].subarray(start, end), start);
      return;
    }
    const scale = 1 / k;
    for (let i = start; i < end; i++) {
      let sum = slots[0][i];
      for (let s = 1; s < k; s++) sum += slots[s][i];
      mean[i] = sum * scale;
    }
  }

  /** The whole exchange for replica r: arrive, reduce own chunk, arrive again. `mean` then holds the average. */
  allReduce(replica: number): Float32Array {
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
