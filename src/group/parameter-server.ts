/**
 * The parameter server of an asynchronous-SGD group (`sgd.mode` async or delayed): the group's weights and optimizer
 * state in shared memory, which its K replicas read and update without a barrier between them.
 *
 * A group step hands each replica its slice of the batch, as in sync mode; but instead of averaging K gradients into
 * one update, every replica's gradient is an update of its own (K updates a step, each of batch / K examples):
 *
 *   read    copy the weights of some version v (v = updates applied so far) into the replica's model
 *   compute the gradient of the replica's slice on those weights
 *   apply   clip it, and apply it with the optimizer as update u > v: the staleness of update u is u - 1 - v
 *
 * async    v is whatever is newest when the replica reads, and u is the order in which gradients arrive: what a
 *          parameter server with K free-running workers does, with the staleness measured (not reproducible). As
 *          such a worker does, a replica reads the weights for its next gradient right after it applied its last
 *          one (actors/replica.ts), so that the group handing out each step's batch slices together does not line
 *          its replicas up on the same version: in steady state each update is about K - 1 updates stale.
 * delayed  update u (u = step * K + replica + 1) reads exactly version max(0, u - 1 - tau) and is applied exactly
 *          after update u - 1: every update is tau updates stale (the first tau read the initial weights), whatever
 *          the timing, so a run is reproducible bit for bit. tau = K - 1 is what K equally fast workers see.
 *
 * Delayed mode keeps the newest tau + 1 versions of the weights in a ring: version v lives in slot v mod (tau + 1),
 * and is overwritten by version v + tau + 1, whose gradient read version v, so no reader is ever overtaken. Async
 * mode keeps one version, read and updated under a lock (a read never sees half an update).
 *
 * The update rules are tfjs's (Adam, momentum, Adagrad), computed per element in double precision and rounded once to
 * float32: within float rounding of the sync path's tfjs optimizers, and deterministic. The state leaves as named
 * arrays (`state`), in-flight weight versions included, so a delayed run resumes bit for bit from a checkpoint.
 *
 * A replica that fails raises the abort flag and wakes every waiter, as the sync group's memory does.
 */
import type { OptimConfig } from '../config/schema.js';
import type { NamedArray, OptimizerState } from '../train/optim.js';
import { GroupAborted } from './memory.js';

export type AsyncMode = 'async' | 'delayed';

/** The optimizer's settings, as the parameter server applies them. */
export type ServerOptimizer = Pick<OptimConfig, 'optimizer' | 'beta1' | 'beta2' | 'epsilon' | 'momentum'>;

/** Plain description of the server's buffers, posted to each replica worker (shared, not copied). */
export interface ParameterServerInit {
  mode: AsyncMode;
  parameters: number;
  /** Weight versions kept: tau + 1 (delayed), 1 (async). */
  versions: number;
  /** delayed: the fixed staleness tau. */
  staleness: number;
  optimizer: ServerOptimizer;
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

const VERSION = 0;
const LOCK = 1;
const ABORT = 2;
/** Bumped by every change a waiter may wait for (a new version, the lock freed, an abort): the one word waited on. */
const SIGNAL = 3;
/** Bumped by every `setState`: weights a replica read before it are not the server's any more. */
const EPOCH = 4;
const CONTROL_INTS = 8;

/** tfjs's Adagrad starts its accumulators here and adds the backend's epsilon (1e-7 in float32) inside the root. */
const ADAGRAD_INITIAL = 0.1;
const ADAGRAD_EPSILON = 1e-7;

/** Optimizer slots of P values each, and scalars (Adam's running powers of beta1 and beta2). */
function slotsOf(o: ServerOptimizer): { slots: string[]; scalars: string[] } {
  if (o.optimizer === 'adam') return { slots: ['m', 'v'], scalars: ['accBeta1', 'accBeta2'] };
  return { slots: [o.optimizer === 'momentum' ? 'accumulation' : 'accumulator'], scalars: [] };
}

/**
 * The buffers of a group's parameter server for `parameters` weights: tau = `staleness` (null = replicas - 1) in delayed
 * mode. The weights start at zero: the group writes its initial model in with `setState` before any step.
 */
export function createParameterServer(mode: AsyncMode, replicas: number, parameters: number, staleness: number | null, optimizer: ServerOptimizer): ParameterServerInit {
  const tau = mode === 'delayed' ? (staleness ?? replicas - 1) : 0;
  const versions = mode === 'delayed' ? tau + 1 : 1;
  const { slots, scalars } = slotsOf(optimizer);
  const data = new SharedArrayBuffer(((versions + slots.length) * parameters + scalars.length) * 4);
  return { mode, parameters, versions, staleness: tau, optimizer, control: new SharedArrayBuffer(CONTROL_INTS * 4), data };
}

/** What one replica's update did. */
export interface AppliedUpdate {
  /** The update's number (updates applied before it + 1). */
  update: number;
  /** Updates applied between the weights its gradient was computed on and it. */
  staleness: number;
  /** The gradient's global L2 norm before clipping. */
  norm: number;
  /** The update was not applied (a non-finite gradient under guard.nonFinite = skip); the version still advanced. */
  skipped: boolean;
}

export class ParameterServer {
  readonly mode: AsyncMode;
  readonly parameters: number;
  readonly staleness: number;
  private readonly control: Int32Array;
  private readonly ring: Float32Array[];
  private readonly slots: Float32Array[];
  private readonly scalars: Float32Array;
  private readonly optimizer: ServerOptimizer;

  constructor(init: ParameterServerInit) {
    this.mode = init.mode;
    this.parameters = init.parameters;
    this.staleness = init.staleness;
    this.optimizer = init.optimizer;
    this.control = new Int32Array(init.control);
    const P = init.parameters;
    const { slots, scalars } = slotsOf(init.optimizer);
    this.ring = Array.from({ length: init.versions }, (_, k) => new Float32Array(init.data, k * P * 4, P));
    this.slots = slots.map((_, k) => new Float32Array(init.data, (init.versions + k) * P * 4, P));
    this.scalars = new Float32Array(init.data, (init.versions + slots.length) * P * 4, scalars.length);
  }

  /** Updates applied so far. */
  get version(): number {
    return Atomics.load(this.control, VERSION);
  }

  /** Changes whenever weights are loaded (a resume, an outer step): a read from before is of other weights. */
  get epoch(): number {
    return Atomics.load(this.control, EPOCH);
  }

  /** delayed: the version update `update` reads (tau updates before it, or the initial weights). */
  readVersionOf(update: number): number {
    return Math.max(0, update - 1 - this.staleness);
  }

  /**
   * Hands `use` the weights its update computes on, and returns their version: delayed, exactly the version of
   * `update` (waiting until it exists); async, the newest (under the lock, so never half-updated).
   */
  read(use: (weights: Float32Array) => void, update?: number): number {
    if (this.mode === 'delayed') {
      if (update === undefined) throw new Error('a delayed-SGD read needs the number of its update');
      const v = this.readVersionOf(update);
      this.waitFor((now) => now >= v);
      use(this.ring[v % this.ring.length]);
      return v;
    }
    this.lock();
    try {
      const v = this.version;
      use(this.ring[0]);
      return v;
    } finally {
      this.unlock();
    }
  }

  /**
   * Applies `gradient` (computed on version `readVersion`) as the next update: delayed, as update `update` once
   * update - 1 is applied; async, as soon as the lock is free. Clips to `clipNorm` (0 = off). A non-finite gradient
   * is not applied: `fail` throws (nothing changes), `skip` returns `skipped` (delayed mode still advances the
   * version, with the weights unchanged, so that the updates after it are not left waiting).
   */
  apply(gradient: Float32Array, o: { lr: number; clipNorm: number; readVersion: number; update?: number; nonFinite: 'fail' | 'skip' }): AppliedUpdate {
    let sum = 0;
    for (let i = 0; i < gradient.length; i++) sum += gradient[i] * gradient[i];
    const norm = Math.sqrt(sum);
    const finite = Number.isFinite(norm);
    if (!finite && o.nonFinite === 'fail') throw new NonFiniteGradient(norm);
    const scale = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
    if (this.mode === 'delayed') {
      const u = o.update;
      if (u === undefined) throw new Error('a delayed-SGD update needs its number');
      this.waitFor((now) => now === u - 1);
      const from = this.ring[(u - 1) % this.ring.length];
      const to = this.ring[u % this.ring.length];
      if (finite) this.step(from, to, gradient, scale, o.lr);
      else to.set(from);
      this.publish(u);
      return { update: u, staleness: u - 1 - o.readVersion, norm, skipped: !finite };
    }
    this.lock();
    try {
      const u = this.version + 1;
      if (!finite) return { update: u, staleness: u - 1 - o.readVersion, norm, skipped: true };
      this.step(this.ring[0], this.ring[0], gradient, scale, o.lr);
      this.publish(u);
      return { update: u, staleness: u - 1 - o.readVersion, norm, skipped: false };
    } finally {
      this.unlock();
    }
  }

  /**
   * The server's state for a checkpoint: the newest weights, and as optimizer state the update count, the
   * optimizer's slots and (delayed) the older weight versions still to be read. Copies.
   */
  state(withOptimizer: boolean): { weights: Float32Array; optimizer: OptimizerState } {
    const v = this.version;
    const weights = this.ring[v % this.ring.length].slice();
    if (!withOptimizer) return { weights, optimizer: [] };
    const P = this.parameters;
    const { slots, scalars } = slotsOf(this.optimizer);
    const optimizer: NamedArray[] = [
      { name: 'server/updates', shape: [], data: Float32Array.of(v) },
      ...slots.map((name, k) => ({ name: `server/${name}`, shape: [P], data: this.slots[k].slice() })),
      ...scalars.map((name, k) => ({ name: `server/${name}`, shape: [], data: this.scalars.slice(k, k + 1) })),
    ];
    // Versions v - 1 ... v - tau: the reads of the next tau updates.
    for (let back = 1; back < this.ring.length && back <= v; back++) {
      optimizer.push({ name: `server/weights-${back}`, shape: [P], data: this.ring[(v - back) % this.ring.length].slice() });
    }
    return { weights, optimizer };
  }

  /**
   * Loads a state. With optimizer state (a checkpoint of this server), everything as it was; without it (the initial
   * weights, or the anchor an outer step hands out), the weights become the newest version and every version still
   * to be read, and the optimizer starts fresh if it never ran.
   */
  setState(weights: Float32Array, optimizer: OptimizerState): void {
    Atomics.add(this.control, EPOCH, 1);
    if (weights.length !== this.parameters) throw new Error(`the parameter server holds ${this.parameters} weights, not ${weights.length}`);
    const find = (name: string) => optimizer.find((s) => s.name === `server/${name}`)?.data;
    if (optimizer.length === 0) {
      const v = this.version;
      if (v === 0) this.resetOptimizer();
      for (let back = 0; back < this.ring.length; back++) this.ring[(((v - back) % this.ring.length) + this.ring.length) % this.ring.length].set(weights);
      return;
    }
    const updates = find('updates');
    if (!updates) throw new Error('this optimizer state is not a parameter server\'s (it has no server/updates): a checkpoint of a sync-SGD run?');
    const v = updates[0];
    const { slots, scalars } = slotsOf(this.optimizer);
    slots.forEach((name, k) => this.slots[k].set(this.need(find(name), name)));
    scalars.forEach((name, k) => this.scalars.set(this.need(find(name), name), k));
    this.ring[v % this.ring.length].set(weights);
    for (let back = 1; back < this.ring.length && back <= v; back++) {
      this.ring[(v - back) % this.ring.length].set(this.need(find(`weights-${back}`), `weights-${back}`));
    }
    this.publish(v);
  }

  /** Marks the group failed (replica index, or -1 for the supervisor) and wakes every waiting replica. */
  abort(replica: number): void {
    Atomics.compareExchange(this.control, ABORT, 0, replica + 2);
    this.signal();
  }

  private need(a: Float32Array | undefined, name: string): Float32Array {
    if (!a) throw new Error(`the parameter server's state has no server/${name} (a checkpoint of another optimizer or staleness?)`);
    return a;
  }

  private resetOptimizer(): void {
    const o = this.optimizer;
    for (const s of this.slots) s.fill(o.optimizer === 'adagrad' ? ADAGRAD_INITIAL : 0);
    if (o.optimizer === 'adam') this.scalars.set([o.beta1, o.beta2]);
  }

  /** to = from after one update with gradient * scale (to may be from: every element is read before it is written). */
  private step(from: Float32Array, to: Float32Array, g: Float32Array, scale: number, lr: number): void {
    const o = this.optimizer;
    const n = this.parameters;
    if (o.optimizer === 'adam') {
      const [m, v] = this.slots;
      const [acc1, acc2] = this.scalars;
      const c1 = 1 - acc1;
      const c2 = 1 - acc2;
      for (let i = 0; i < n; i++) {
        const gi = g[i] * scale;
        const mi = (m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi);
        const vi = (v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi);
        to[i] = from[i] - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + o.epsilon);
      }
      this.scalars[0] = acc1 * o.beta1;
      this.scalars[1] = acc2 * o.beta2;
    } else if (o.optimizer === 'momentum') {
      const [a] = this.slots;
      for (let i = 0; i < n; i++) {
        const ai = (a[i] = o.momentum * a[i] + g[i] * scale);
        to[i] = from[i] - lr * ai;
      }
    } else {
      const [a] = this.slots;
      for (let i = 0; i < n; i++) {
        const gi = g[i] * scale;
        const ai = (a[i] = a[i] + gi * gi);
        to[i] = from[i] - (lr * gi) / Math.sqrt(ai + ADAGRAD_EPSILON);
      }
    }
    // As in sync mode: a finite gradient times too large a rate can overflow the weights, and that cannot be undone.
    let total = 0;
    for (let i = 0; i < n; i++) total += to[i];
    if (!Number.isFinite(total)) throw new NonFiniteWeights();
  }

  private publish(update: number): void {
    Atomics.store(this.control, VERSION, update);
    this.signal();
  }

  private signal(): void {
    Atomics.add(this.control, SIGNAL, 1);
    Atomics.notify(this.control, SIGNAL);
  }

  /**
   * Waits until `ready` holds for the version (or the group aborts). The signal word is read before the checks, so a
   * change that lands between a check and the wait changes the word, and the wait returns at once.
   */
  private waitFor(ready: (version: number) => boolean): void {
    for (;;) {
      const signal = Atomics.load(this.control, SIGNAL);
      this.throwIfAborted();
      if (ready(Atomics.load(this.control, VERSION))) return;
      Atomics.wait(this.control, SIGNAL, signal);
    }
  }

  private lock(): void {
    for (;;) {
      const signal = Atomics.load(this.control, SIGNAL);
      this.throwIfAborted();
      if (Atomics.compareExchange(this.control, LOCK, 0, 1) === 0) return;
      Atomics.wait(this.control, SIGNAL, signal);
    }
  }

  private unlock(): void {
    Atomics.store(this.control, LOCK, 0);
    this.signal();
  }

  private throwIfAborted(): void {
    const v = Atomics.load(this.control, ABORT);
    if (v !== 0) throw new GroupAborted(v - 2);
  }
}

/** An update that made the weights non-finite (the group fails; its newest checkpoint is from before). */
export class NonFiniteWeights extends Error {
  constructor() {
    super('the update made the weights non-finite');
  }
}

/** A gradient whose norm is not finite, under guard.nonFinite = fail (the replica reports it like the sync path). */
export class NonFiniteGradient extends Error {
  constructor(readonly norm: number) {
    super(`gradient norm is ${norm}`);
  }
}
