/**
 * A synchronous-SGD group: K replica actors that train one model together (the inner loop of codistillation).
 *
 * The group batch is split into K equal row slices, one per replica; the replicas average their gradients through
 * the group's shared memory and apply the same update. The supervisor sees one model: step, read state, load state.
 */
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { Batch } from '../workloads/workload.js';
import { ActorClient, ActorError } from '../util/actor.js';
import { actorFile } from '../util/paths.js';
import type { ModelState, ReplicaReply, ReplicaRequest, ReplicaSpec, StepReply, TeacherTarget } from '../protocol.js';
import { createGroupMemory, GroupMemory } from './memory.js';

export class RunError extends Error {
  override name = 'RunError';
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

/** The group's step: losses averaged over replicas; compute and reduce times of the slowest replica (ms). */
export type GroupStepResult = Omit<StepReply, 'type' | 'id'>;

type ReplicaClient = ActorClient<ReplicaRequest, ReplicaReply>;

export class Group {
  private constructor(
    readonly index: number,
    private readonly replicas: ReplicaClient[],
    private readonly memory: GroupMemory,
    /** Number of trainable parameters. */
    readonly parameters: number,
    /** The tfjs backend the replicas run on. */
    readonly backend: string,
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
      const memoryInit = createGroupMemory(opts.replicas, ready[0].parameters);
      await Promise.all(all.map((c) => c.request({ type: 'attach', id: 0, memory: memoryInit }, 'ok')));
      const memory = new GroupMemory(memoryInit);
      // A dead replica must not leave its peers waiting at the barrier.
      for (const c of all) c.onFailure = () => memory.abort(-1);
      return new Group(opts.group, all, memory, ready[0].parameters, ready[0].backend);
    } catch (err) {
      await Promise.all(all.map((c) => c.close()));
      throw toRunError(err);
    }
  }

  /** One synchronous step of the whole group. */
  async step(input: GroupStepInput): Promise<GroupStepResult> {
    const k = this.replicas.length;
    const { batch } = input;
    const rows = batch.rows / k;
    const replies = await this.all((c, r) => {
      const part = k === 1 ? batch : rowCopy(batch, r * rows, (r + 1) * rows);
      const teacher = input.teacher && sliceTeacher(input.teacher, r, k, rows * input.positionsPerRow, input.classes);
      const transfer: ArrayBufferLike[] = batchBuffers(part);
      if (teacher) transfer.push(...teacherBuffers(teacher));
      return c.request(
        { type: 'step', id: 0, step: input.step, lr: input.lr, alpha: input.alpha, batch: part, continues: input.continues ?? false, teacher },
        'stepped',
        unique(transfer),
      );
    });
    const mean = (f: (s: StepReply) => number) => replies.reduce((a, s) => a + f(s), 0) / k;
    return {
      step: input.step,
      loss: mean((s) => s.loss),
      taskLoss: mean((s) => s.taskLoss),
      distillLoss: mean((s) => s.distillLoss),
      gradNorm: replies[0].gradNorm,
      computeMs: Math.max(...replies.map((s) => s.computeMs)),
      reduceMs: Math.max(...replies.map((s) => s.reduceMs)),
    };
  }

  /** Weights (and optionally optimizer state) of the group's model, from replica 0 (all replicas are identical). */
  async state(optimizer: boolean): Promise<ModelState> {
    const reply = await this.call(0, (c) => c.request({ type: 'getState', id: 0, optimizer }, 'state'));
    return reply.state;
  }

  /** Every replica's weights, for the test that they stay bitwise identical. */
  async replicaWeights(): Promise<Float32Array[]> {
    const replies = await this.all((c) => c.request({ type: 'getState', id: 0, optimizer: false }, 'state'));
    return replies.map((r) => r.state.weights);
  }

  async setState(state: ModelState): Promise<void> {
    await this.all((c) =>
      c.request({ type: 'setState', id: 0, state: { weights: state.weights.slice(), optimizer: state.optimizer.map((o) => ({ ...o, data: o.data.slice() })) } }, 'ok'),
    );
  }

  /** Live tfjs tensors in each replica (flat across steps when every step is tidy). */
  async tensors(): Promise<number[]> {
    const replies = await this.all((c) => c.request({ type: 'tensors', id: 0 }, 'tensors'));
    return replies.map((r) => r.tensors);
  }

  async injectFault(replica: number, atStep: number): Promise<void> {
    await this.call(replica, (c) => c.request({ type: 'injectFault', id: 0, atStep }, 'ok'));
  }

  /** Fault injection: kills one replica's worker thread as a crash would. */
  async killReplica(replica: number): Promise<void> {
    await this.replicas[replica].kill();
  }

  async close(): Promise<void> {
    this.memory.abort(-1);
    await Promise.all(this.replicas.map((c) => c.close()));
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
          this.memory.abort(r);
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

function toRunError(err: unknown): RunError {
  if (err instanceof RunError) return err;
  if (err instanceof ActorError) return new RunError(err.message);
  return new RunError((err as Error).message ?? String(err));
}

/** Replica r's share of a teacher target: its rows' positions, renumbered from the replica's first row. */
function sliceTeacher(t: TeacherTarget, r: number, k: number, positions: number, classes: number): TeacherTarget {
  if (k === 1) return t;
  // Every row has the same number of distilled positions, so a replica's entries are one contiguous range.
  const n = t.positions ? t.positions.length / k : positions;
  const part = t.positions ? { positions: t.positions.slice(r * n, (r + 1) * n).map((p) => p - r * positions) } : {};
  if (t.kind === 'dense') return { kind: 'dense', values: t.values.slice(r * n * classes, (r + 1) * n * classes), ...part };
  return { kind: 'topk', k: t.k, indices: t.indices.slice(r * n * t.k, (r + 1) * n * t.k), probs: t.probs.slice(r * n * t.k, (r + 1) * n * t.k), ...part };
}

function teacherBuffers(t: TeacherTarget): ArrayBufferLike[] {
  const own = t.kind === 'dense' ? [t.values.buffer] : [t.indices.buffer, t.probs.buffer];
  return t.positions ? [...own, t.positions.buffer] : own;
}

function unique(buffers: ArrayBufferLike[]): ArrayBufferLike[] {
  return [...new Set(buffers)].filter((b) => !(b instanceof SharedArrayBuffer));
}
