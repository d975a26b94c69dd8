/**
 * An SGD group: K replica actors that train one model together (the inner loop of codistillation).
 *
 * The group batch is split into K equal row slices, one per replica. In sync mode (sgd.mode, the default) the
 * replicas average their gradients through the group's shared memory and apply the same update; in async and
 * delayed mode each replica's gradient is an update of its own, applied to the group's parameter server without a
 * barrier (parameter-server.ts). The supervisor sees one model: step, read state, load state.
 *
 * A step whose loss or reduced gradient is not finite never reaches the weights; `guard.nonFinite` says what then:
 * fail (Group.step rejects with the replica's error), skip (the step's result says `skipped`, and more than
 * `guard.maxSkips` skips in a row fail the group) or rollback (Group.step rejects with a NonFiniteError, for the
 * supervisor to start the group again from its newest checkpoint).
 *
 * Errors are RunErrors naming the group and replica; one that a replica worker caused (it threw, or died) keeps the
 * replica's ActorError as its `cause`, so `isActorFault` (src/util/actor.ts) tells it from bad input.
 */
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { Batch } from '../workloads/workload.js';
import type { GuardConfig } from '../config/schema.js';
import { ActorClient, ActorError } from '../util/actor.js';
import { actorFile } from '../util/paths.js';
import type { ModelState, ReplicaReply, ReplicaRequest, ReplicaSpec, StepReply, TeacherTarget } from '../protocol.js';
import type { FaultKind } from '../train/faults.js';
import { createGroupMemory, GroupMemory } from './memory.js';
import { createParameterServer, ParameterServer } from './parameter-server.js';

export class RunError extends Error {
  override name = 'RunError';
}

/**
 * A step of group `group` had a non-finite loss or gradient under `guard.nonFinite = rollback`: nothing reached the
 * weights, and the group is to start again from its newest checkpoint.
 */
export class NonFiniteError extends RunError {
  override name = 'NonFiniteError';

  constructor(
    readonly group: number,
    /** The step (0-based, as Group.step was given it). */
    readonly step: number,
    readonly what: 'loss' | 'gradient',
    /** The loss, or the reduced gradient's norm. */
    readonly value: number,
  ) {
    super(
      `group ${group}: the ${what === 'loss' ? 'loss' : 'gradient norm'} is ${value} at step ${step}; ` +
        'nothing was applied (guard.nonFinite = rollback: the group starts again from its newest checkpoint)',
    );
  }
}

export type GroupOptions = ReplicaSpec & { replicas: number };

export interface GroupStepInput {
  step: number;
  lr: number;
  alpha: number;
  batch: Batch;
  /** Whether the batch's rows continue those of the previous step (for a model that carries state). */
  continues?: boolean;
  /** Positions each batch row predicts (so teacher targets split with the rows). */
  positionsPerRow: number;
  classes: number;
  teacher?: TeacherTarget;
}

/**
 * The group's step: losses averaged over replicas; compute and reduce times of the slowest replica (ms). `skipped`
 * (guard.nonFinite = skip): nothing was applied; `loss` if a replica's loss was not finite (its value), else
 * `gradient` (the reduced gradient's norm).
 */
export type GroupStepResult = Omit<StepReply, 'type' | 'id'>;

const DEFAULT_GUARD: Pick<GuardConfig, 'nonFinite' | 'maxSkips'> = { nonFinite: 'fail', maxSkips: 10 };

type ReplicaClient = ActorClient<ReplicaRequest, ReplicaReply>;

export class Group {
  /** Steps skipped in a row (guard.nonFinite = skip). */
  private skips = 0;

  private constructor(
    readonly index: number,
    private readonly replicas: ReplicaClient[],
    private readonly memory: GroupMemory,
    /** Number of trainable parameters. */
    readonly parameters: number,
    /** The tfjs backend the replicas run on. */
    readonly backend: string,
    private readonly guard: Pick<GuardConfig, 'nonFinite' | 'maxSkips'>,
    /** sgd.mode = async or delayed: the group's weights and optimizer state, which the replicas update. */
    private readonly server?: ParameterServer,
  ) {}

  static async start(opts: GroupOptions): Promise<Group> {
    // The parameter count is known only once a model is built: every replica builds its model, and the shared
    // memory, sized from the first one's count, is attached to all of them afterwards.
    const all: ReplicaClient[] = Array.from(
      { length: opts.replicas },
      (_, r) => new ActorClient(`group ${opts.group} replica ${r}`, actorFile('replica')),
    );
    try {
      const { replicas: _count, ...spec } = opts;
      const ready = await Promise.all(all.map((c, replica) => c.request({ type: 'init', id: 0, replica, ...spec }, 'ready')));
      const parameters = ready[0].parameters;
      const memoryInit = createGroupMemory(opts.replicas, parameters);
      const sgd = opts.config.sgd ?? { mode: 'sync', staleness: null };
      const serverInit = sgd.mode === 'sync' ? undefined : createParameterServer(sgd.mode, opts.replicas, parameters, sgd.staleness, opts.config.optim);
      await Promise.all(all.map((c) => c.request({ type: 'attach', id: 0, memory: memoryInit, server: serverInit }, 'ok')));
      const memory = new GroupMemory(memoryInit);
      const server = serverInit && new ParameterServer(serverInit);
      // The server starts from the replicas' initial model (every replica built the same one, from the same seed).
      if (server) server.setState((await all[0].request({ type: 'getState', id: 0, optimizer: false }, 'state')).state.weights, []);
      // A config resolved by loadConfig always has the section; one built by hand may not.
      const guard = { ...DEFAULT_GUARD, ...opts.config.guard };
      const group = new Group(opts.group, all, memory, parameters, ready[0].backend, guard, server);
      // A dead replica must not leave its peers waiting at the barrier, or for a version of the weights.
      for (const c of all) c.onFailure = () => group.abort(-1);
      return group;
    } catch (err) {
      await Promise.all(all.map((c) => c.close()));
      throw toRunError(err);
    }
  }

  /**
   * One step of the whole group: each replica gets its slice of the batch. Sync: one averaged update. Async or
   * delayed: one update per replica, update step * K + r + 1 being replica r's.
   */
  async step(input: GroupStepInput): Promise<GroupStepResult> {
    const k = this.replicas.length;
    const { batch } = input;
    const rows = batch.rows / k;
    const replies = await this.all((c, r) => {
      const part = k === 1 ? batch : rowCopy(batch, r * rows, (r + 1) * rows);
      const teacher = input.teacher && sliceTeacher(input.teacher, r, k, rows * input.positionsPerRow, input.classes);
      const transfer: ArrayBufferLike[] = batchBuffers(part);
      if (teacher) transfer.push(...teacherBuffers(teacher));
      const update = this.server?.mode === 'delayed' ? input.step * k + r + 1 : undefined;
      return c.request(
        { type: 'step', id: 0, step: input.step, lr: input.lr, alpha: input.alpha, batch: part, continues: input.continues ?? false, teacher, update },
        'stepped',
        unique(transfer),
      );
    });
    const mean = (f: (s: StepReply) => number) => replies.reduce((a, s) => a + f(s), 0) / k;
    const result: GroupStepResult = {
      step: input.step,
      loss: mean((s) => s.loss),
      taskLoss: mean((s) => s.taskLoss),
      distillLoss: mean((s) => s.distillLoss),
      gradNorm: replies[0].gradNorm,
      computeMs: Math.max(...replies.map((s) => s.computeMs)),
      reduceMs: Math.max(...replies.map((s) => s.reduceMs)),
      ...(this.server ? { gradientStaleness: mean((s) => s.gradientStaleness ?? 0), gradNorm: mean((s) => s.gradNorm) } : {}),
    };
    const skipped = this.agreedSkip(input.step, replies);
    if (!skipped) {
      this.skips = 0;
      return result;
    }
    if (this.guard.nonFinite === 'rollback') throw new NonFiniteError(this.index, input.step, skipped.what, skipped.value);
    if (++this.skips > this.guard.maxSkips) {
      throw new RunError(
        `group ${this.index}: ${this.skips} consecutive steps had a non-finite loss or gradient (last at step ${input.step}): ` +
          'lower optim.lr or set optim.clipNorm',
      );
    }
    return { ...result, skipped };
  }

  /**
   * Whether the replicas skipped the step, checked to be all or none of them: they all apply the same reduced
   * mean, so a disagreement means their weights have parted. The skip reported is a replica's non-finite loss when
   * there is one, else the gradient norm (the same on every replica).
   */
  private agreedSkip(step: number, replies: StepReply[]): StepReply['skipped'] {
    const skipping = replies.filter((s) => s.skipped);
    if (skipping.length === 0) return undefined;
    if (skipping.length < replies.length) {
      const which = replies.map((s, r) => (s.skipped ? r : -1)).filter((r) => r >= 0);
      throw new RunError(
        `group ${this.index}: at step ${step} replicas ${which.join(', ')} skipped the update and the others applied it: ` +
          'the replicas no longer hold the same weights',
      );
    }
    return skipping.find((s) => s.skipped!.what === 'loss')?.skipped ?? skipping[0].skipped;
  }

  /**
   * Weights (and optionally optimizer state) of the group's model: from replica 0 (all replicas are identical), or
   * the parameter server's (async, delayed; read between steps).
   */
  async state(optimizer: boolean): Promise<ModelState> {
    if (this.server) return this.server.state(optimizer);
    const reply = await this.call(0, (c) => c.request({ type: 'getState', id: 0, optimizer }, 'state'));
    return reply.state;
  }

  /** Every replica's weights, for the test that they stay bitwise identical. */
  async replicaWeights(): Promise<Float32Array[]> {
    const replies = await this.all((c) => c.request({ type: 'getState', id: 0, optimizer: false }, 'state'));
    return replies.map((r) => r.state.weights);
  }

  /**
   * Loads weights and optimizer state into every replica (or the parameter server). Weights without optimizer state
   * keep the optimizer's (an outer step's new weights).
   */
  async setState(state: ModelState): Promise<void> {
    if (this.server) return this.server.setState(state.weights, state.optimizer);
    await this.all((c) =>
      c.request({ type: 'setState', id: 0, state: { weights: state.weights.slice(), optimizer: state.optimizer.map((o) => ({ ...o, data: o.data.slice() })) } }, 'ok'),
    );
  }

  /** Live tfjs tensors in each replica (flat across steps when every step is tidy). */
  async tensors(): Promise<number[]> {
    const replies = await this.all((c) => c.request({ type: 'tensors', id: 0 }, 'tensors'));
    return replies.map((r) => r.tensors);
  }

  /**
   * Fault injection: at step `atStep`, replica `replica` throws ("injected fault at step N"), its worker exits
   * (Group.step rejects with "group G replica R: exited (code 1)"), or its loss and gradient are NaN (the guard acts).
   */
  async injectFault(replica: number, atStep: number, kind: FaultKind = 'throw'): Promise<void> {
    if (!Number.isInteger(replica) || replica < 0 || replica >= this.replicas.length) {
      throw new RunError(`group ${this.index} has no replica ${replica} (it has ${this.replicas.length})`);
    }
    await this.call(replica, (c) => c.request({ type: 'injectFault', id: 0, atStep, kind }, 'ok'));
  }

  /** Fault injection: kills one replica's worker thread as a crash would. */
  async killReplica(replica: number): Promise<void> {
    await this.replicas[replica].kill();
  }

  async close(): Promise<void> {
    this.abort(-1);
    await Promise.all(this.replicas.map((c) => c.close()));
  }

  /** Wakes every replica waiting on its peers (replica r failed, or -1: the group is being stopped). */
  private abort(r: number): void {
    this.memory.abort(r);
    this.server?.abort(r);
  }

  private async call<T>(r: number, f: (c: ReplicaClient) => Promise<T>): Promise<T> {
    try {
      return await f(this.replicas[r]);
    } catch (err) {
      throw toRunError(err);
    }
  }

  /** Runs f on every replica; on failure wakes the others and reports the replica that failed first. */
  private async all<T>(f: (c: ReplicaClient, r: number) => Promise<T>): Promise<T[]> {
    const settled = await Promise.allSettled(
      this.replicas.map((c, r) =>
        f(c, r).catch((err: unknown) => {
          this.abort(r);
          throw err;
        }),
      ),
    );
    const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
    if (failures.length) {
      const root = failures.find((e) => !/GroupAborted|replica \d+ of the group failed|the group was stopped/.test(e.message)) ?? failures[0];
      throw toRunError(root);
    }
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }
}

/** A RunError with the same message; an ActorError stays reachable as its `cause` (for `isActorFault`). */
function toRunError(err: unknown): RunError {
  if (err instanceof RunError) return err;
  if (err instanceof ActorError) return new RunError(err.message, { cause: err });
  return new RunError((err as Error).message ?? String(err), { cause: err });
}

/**
 * Replica r's share of a teacher target: its rows' positions, renumbered from the replica's first row. A target in
 * shared memory is shared as views (every replica reads its own range); any other is copied, one buffer per replica.
 */
function sliceTeacher(t: TeacherTarget, r: number, k: number, positions: number, classes: number): TeacherTarget {
  if (k === 1) return t;
  // Every row has the same number of distilled positions, so a replica's entries are one contiguous range.
  const n = t.positions ? t.positions.length / k : positions;
  const part = t.positions ? { positions: t.positions.slice(r * n, (r + 1) * n).map((p) => p - r * positions) } : {};
  const range = <A extends Float32Array | Int32Array>(a: A, width: number): A =>
    (a.buffer instanceof SharedArrayBuffer ? a.subarray(r * n * width, (r + 1) * n * width) : a.slice(r * n * width, (r + 1) * n * width)) as A;
  if (t.kind === 'dense') return { kind: 'dense', values: range(t.values, classes), ...part };
  return { kind: 'topk', k: t.k, indices: range(t.indices, t.k), probs: range(t.probs, t.k), ...part };
}

function teacherBuffers(t: TeacherTarget): ArrayBufferLike[] {
  const own = t.kind === 'dense' ? [t.values.buffer] : [t.indices.buffer, t.probs.buffer];
  return t.positions ? [...own, t.positions.buffer] : own;
}

function unique(buffers: ArrayBufferLike[]): ArrayBufferLike[] {
  return [...new Set(buffers)].filter((b) => !(b instanceof SharedArrayBuffer));
}
