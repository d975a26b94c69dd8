/**
 * Replica actor: one synchronous-SGD replica of one group, on its own worker thread and tfjs backend.
 *
 * A step: forward/backward on this replica's rows (task loss + alpha * distillation toward the teachers' averaged
 * prediction), gradient into the group's shared slot, all-reduce (fixed summation order), then the same clipped,
 * averaged update applied by every replica of the group. Everything tfjs allocates in a step is released by tf.tidy.
 *
 * A non-finite loss or gradient never reaches the weights. With `guard.nonFinite = fail` the step fails (before the
 * all-reduce for a loss, before the update for a gradient). Otherwise (skip, rollback) a replica whose loss is not
 * finite still takes part in the all-reduce, with NaN in its gradient slot: the reduced mean, bitwise the same on
 * every replica, is then NaN everywhere, so every replica sees a non-finite norm and leaves its weights and optimizer
 * state untouched, and the group agrees on skipping without a word more than the all-reduce. The peers waiting at
 * the barrier are never left waiting.
 *
 * With sgd.mode = async or delayed there is no all-reduce: the replica reads the weights of its update from the
 * group's parameter server, computes its gradient on them, and applies it there as an update of its own, without
 * waiting for its peers (src/group/parameter-server.ts).
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { backendName, initBackend } from '../src/backend.js';
import { GroupMemory } from '../src/group/memory.js';
import { NonFiniteGradient, NonFiniteWeights, ParameterServer } from '../src/group/parameter-server.js';
import { codistillLoss, type DistillKind } from '../src/train/loss.js';
import {
  clipByGlobalNorm,
  createOptimizer,
  flatLength,
  flatToGrads,
  flatToWeights,
  gradsToFlat,
  loadOptimizerState,
  optimizerState,
  setLearningRate,
  weightsToFlat,
} from '../src/train/optim.js';
import { enactFault, type FaultKind } from '../src/train/faults.js';
import { RequestError, serveActor } from '../src/util/actor.js';
import { loadWorkload } from '../src/workloads/registry.js';
import type { Model } from '../src/workloads/workload.js';
import type { ReplicaReply, ReplicaRequest, StepReply } from '../src/protocol.js';

interface Replica {
  replica: number;
  model: Model;
  optimizer: tf.Optimizer;
  /** The group's gradient memory, from `attach`. */
  memory?: GroupMemory;
  /** sgd.mode = async or delayed: the group's weights and optimizer state, from `attach`. */
  server?: ParameterServer;
  /**
   * sgd.mode = async: the version of the weights read into the model right after this replica's last update (and
   * the server's epoch then), which its next gradient is computed on.
   */
  read?: { version: number; epoch: number };
  clipNorm: number;
  distillKind: DistillKind;
  labelSmoothing: number;
  /** guard.nonFinite: whether a non-finite step fails here or is skipped (for the group to act on). */
  nonFinite: 'fail' | 'skip' | 'rollback';
  /** Injected faults by step. */
  faults: Map<number, FaultKind>;
}

let self: Replica | undefined;

type StepRequest = Extract<ReplicaRequest, { type: 'step' }>;

interface LossParts {
  loss: number;
  taskValue: number;
  distillValue: number;
}

/** The reply to a step request. */
function stepped(req: StepRequest, l: LossParts, o: Pick<StepReply, 'gradNorm' | 'computeMs' | 'reduceMs' | 'skipped' | 'gradientStaleness'>): StepReply {
  return { type: 'stepped', id: req.id, step: req.step, loss: l.loss, taskLoss: l.taskValue, distillLoss: l.distillValue, ...o };
}

/** A non-finite update cannot be undone (that would need a copy of the weights every step): the step fails. */
const overflowed = (req: StepRequest, norm?: number) =>
  new RequestError(
    `the update of step ${req.step} made the weights non-finite (${norm === undefined ? '' : `gradient norm ${norm}, `}learning rate ${req.lr}): ` +
      'lower optim.lr or set optim.clipNorm',
  );

/** This replica's loss parts and its gradient, flattened into `slot`. Everything tfjs allocates is released. */
function gradient(r: Replica, req: StepRequest, slot: Float32Array): LossParts {
  const fault = r.faults.get(req.step);
  if (fault === 'throw' || fault === 'exit') enactFault(fault, `injected fault at step ${req.step}`);
  const batch = req.batch;
  if (!req.continues) r.model.resetState?.();
  const vars = r.model.variables;
  // Forward and backward. The loss parts are kept out of the tape's tidy so that they can be read afterwards.
  let task: tf.Scalar | undefined;
  let distill: tf.Scalar | undefined;
  const { value, grads } = tf.tidy(() =>
    tf.variableGrads(() => {
      const logits = r.model.logits(batch);
      const loss = codistillLoss(logits, r.model.labels(batch), {
        smoothing: r.labelSmoothing,
        teacher: req.teacher,
        alpha: req.alpha,
        kind: r.distillKind,
      });
      task = tf.keep(loss.task);
      distill = tf.keep(loss.distill);
      return loss.total;
    }, vars as tf.Variable[]),
  );
  gradsToFlat(grads, vars, slot);
  let loss = value.dataSync()[0];
  let taskValue = task!.dataSync()[0];
  const distillValue = distill!.dataSync()[0];
  tf.dispose([value, task!, distill!, ...Object.values(grads)]);
  if (fault === 'nan') {
    // Injected: this replica's numbers blew up at this step, as a too-large learning rate would make them.
    loss = NaN;
    taskValue = NaN;
    slot.fill(NaN);
  }
  if (!Number.isFinite(loss)) {
    const message = `loss is ${loss} at step ${req.step} (task ${taskValue}, distillation ${distillValue}): lower optim.lr or set optim.clipNorm`;
    // Not the actor's fault: the same step fails the same way on a fresh replica.
    if (r.nonFinite === 'fail') throw new RequestError(message);
    // Skipping: a NaN in every element makes the reduced mean NaN on every replica, whatever the peers sent (and
    // makes the parameter server skip the update).
    slot.fill(NaN);
  }
  return { loss, taskValue, distillValue };
}

/** sgd.mode = sync: the group's gradients averaged in shared memory, and the same update applied by every replica. */
function syncStep(r: Replica, memory: GroupMemory, req: StepRequest): StepReply {
  const t0 = performance.now();
  const parts = gradient(r, req, memory.slot(r.replica));
  const { loss } = parts;
  const vars = r.model.variables;
  const t1 = performance.now();
  const mean = memory.allReduce(r.replica);
  const t2 = performance.now();
  let skipped: StepReply['skipped'];
  const gradNorm = tf.tidy(() => {
    const { grads: clipped, norm } = clipByGlobalNorm(flatToGrads(mean, vars), r.clipNorm);
    // Never apply a non-finite update: the weights (and so the checkpoints) stay usable.
    if (!Number.isFinite(norm)) {
      if (r.nonFinite === 'fail') throw new RequestError(`gradient norm is ${norm} at step ${req.step} (loss ${loss}): lower optim.lr`);
      skipped = Number.isFinite(loss) ? { what: 'gradient', value: norm } : { what: 'loss', value: loss };
      return norm;
    }
    setLearningRate(r.optimizer, req.lr);
    r.optimizer.applyGradients(clipped);
    // A finite gradient times a huge rate can still overflow the weights: in every guard mode the step fails here,
    // before anything of it is checkpointed, so the newest checkpoint stays finite. (The sum of a tensor is finite iff
    // all its elements are, short of a sum that itself overflows, which only weights near float32's range reach.)
    const total = tf.addN(vars.map((v) => tf.sum(v))).dataSync()[0];
    if (!Number.isFinite(total)) throw overflowed(req, norm);
    return norm;
  });
  const t3 = performance.now();
  return stepped(req, parts, { gradNorm, computeMs: t1 - t0 + (t3 - t2), reduceMs: t2 - t1, skipped });
}

/**
 * sgd.mode = async or delayed: read the weights this update computes on from the group's parameter server, compute
 * this replica's gradient, and apply it there as an update of its own (src/group/parameter-server.ts).
 */
function serverStep(r: Replica, server: ParameterServer, slot: Float32Array, req: StepRequest): StepReply {
  const t0 = performance.now();
  const vars = r.model.variables;
  const read = (update?: number) => server.read((weights) => flatToWeights(weights, vars), update);
  // Async: the weights read after the last update, unless the server was loaded since (a resume, an outer step).
  const readVersion = server.mode === 'async' && r.read?.epoch === server.epoch ? r.read.version : read(req.update);
  const t1 = performance.now();
  const parts = gradient(r, req, slot);
  const { loss } = parts;
  const t2 = performance.now();
  let applied;
  try {
    applied = server.apply(slot, { lr: req.lr, clipNorm: r.clipNorm, readVersion, update: req.update, nonFinite: r.nonFinite === 'fail' ? 'fail' : 'skip' });
  } catch (err) {
    if (err instanceof NonFiniteGradient) throw new RequestError(`gradient norm is ${err.norm} at step ${req.step} (loss ${loss}): lower optim.lr`);
    if (err instanceof NonFiniteWeights) throw overflowed(req);
    throw err;
  }
  if (server.mode === 'async') r.read = { version: read(), epoch: server.epoch };
  const t3 = performance.now();
  const skipped: StepReply['skipped'] = applied.skipped ? (Number.isFinite(loss) ? { what: 'gradient', value: applied.norm } : { what: 'loss', value: loss }) : undefined;
  return stepped(req, parts, { gradNorm: applied.norm, computeMs: t2 - t1, reduceMs: t1 - t0 + (t3 - t2), skipped, gradientStaleness: applied.staleness });
}

function step(r: Replica, req: StepRequest): StepReply {
  const memory = r.memory;
  if (!memory) throw new Error('replica stepped before its group memory was attached');
  return r.server ? serverStep(r, r.server, memory.slot(r.replica), req) : syncStep(r, memory, req);
}

async function handle(req: ReplicaRequest): Promise<{ reply: ReplicaReply; transfer?: ArrayBufferLike[] }> {
  switch (req.type) {
    case 'init': {
      const { config } = req;
      const info = await initBackend(config.backend, config);
      const model = await loadWorkload(config.workload).buildModel({ config, classes: req.classes, seed: req.seed, role: 'student' });
      self = {
        replica: req.replica,
        model,
        optimizer: createOptimizer(config.optim),
        clipNorm: config.optim.clipNorm,
        distillKind: config.distill.loss,
        labelSmoothing: config.distill.labelSmoothing,
        // A config resolved by loadConfig always has the section; one built by hand may not.
        nonFinite: config.guard?.nonFinite ?? 'fail',
        faults: new Map(),
      };
      const parameters = flatLength(model.variables);
      return { reply: { type: 'ready', id: req.id, parameters, backend: backendName(info), tensors: tf.memory().numTensors } };
    }
    case 'attach': {
      const r = need();
      r.memory = new GroupMemory(req.memory);
      if (req.server) r.server = new ParameterServer(req.server);
      return { reply: { type: 'ok', id: req.id } };
    }
    case 'step':
      return { reply: step(need(), req) };
    case 'getState': {
      const r = need();
      const weights = weightsToFlat(r.model.variables);
      const optimizer = req.optimizer ? await optimizerState(r.optimizer) : [];
      return {
        reply: { type: 'state', id: req.id, state: { weights, optimizer } },
        transfer: [weights.buffer, ...optimizer.map((o) => o.data.buffer)],
      };
    }
    case 'setState': {
      const r = need();
      flatToWeights(req.state.weights, r.model.variables);
      if (req.state.optimizer.length) await loadOptimizerState(r.optimizer, req.state.optimizer);
      return { reply: { type: 'ok', id: req.id } };
    }
    case 'tensors':
      return { reply: { type: 'tensors', id: req.id, tensors: tf.memory().numTensors } };
    case 'injectFault':
      if (!['throw', 'exit', 'nan'].includes(req.kind)) throw new Error(`unknown fault kind ${JSON.stringify(req.kind)}`);
      need().faults.set(req.atStep, req.kind);
      return { reply: { type: 'ok', id: req.id } };
  }
}

function need(): Replica {
  if (!self) throw new Error('replica used before init');
  return self;
}

// A failing replica wakes its peers at the barrier so the whole group reports the error instead of hanging.
serveActor<ReplicaRequest>(parentPort!, handle, () => {
  self?.memory?.abort(self.replica);
  self?.server?.abort(self.replica);
});
