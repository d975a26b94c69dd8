/**
 * Replica actor: one synchronous-SGD replica of one group, on its own worker thread and tfjs backend.
 *
 * A step: forward/backward on this replica's rows (task loss + alpha * distillation toward the teachers' averaged
 * prediction), gradient into the group's shared slot, all-reduce (fixed summation order), then the same clipped,
 * averaged update applied by every replica of the group. Everything tfjs allocates in a step is released by tf.tidy.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { GroupMemory } from '../src/group/memory.js';
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
import { serveActor } from '../src/util/actor.js';
import { loadWorkload } from '../src/workloads/registry.js';
import type { Model } from '../src/workloads/workload.js';
import type { ReplicaReply, ReplicaRequest } from '../src/protocol.js';

interface Replica {
  replica: number;
  model: Model;
  optimizer: tf.Optimizer;
  /** The group's gradient memory, from `attach`. */
  memory?: GroupMemory;
  clipNorm: number;
  distillKind: DistillKind;
  labelSmoothing: number;
  faultAt: number;
}

let self: Replica | undefined;

type StepRequest = Extract<ReplicaRequest, { type: 'step' }>;

function step(r: Replica, req: StepRequest): Extract<ReplicaReply, { type: 'stepped' }> {
  if (req.step === r.faultAt) throw new Error(`injected fault at step ${req.step}`);
  const memory = r.memory;
  if (!memory) throw new Error('replica stepped before its group memory was attached');
  const t0 = performance.now();
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
  gradsToFlat(grads, vars, memory.slot(r.replica));
  const loss = value.dataSync()[0];
  const taskValue = task!.dataSync()[0];
  const distillValue = distill!.dataSync()[0];
  tf.dispose([value, task!, distill!, ...Object.values(grads)]);
  if (!Number.isFinite(loss)) {
    throw new Error(`loss is ${loss} at step ${req.step} (task ${taskValue}, distillation ${distillValue}): lower optim.lr or set optim.clipNorm`);
  }
  const t1 = performance.now();
  const mean = memory.allReduce(r.replica);
  const t2 = performance.now();
  setLearningRate(r.optimizer, req.lr);
  const gradNorm = tf.tidy(() => {
    const { grads: clipped, norm } = clipByGlobalNorm(flatToGrads(mean, vars), r.clipNorm);
    // Never apply a non-finite update: the weights (and so the checkpoints) stay usable.
    if (!Number.isFinite(norm)) throw new Error(`gradient norm is ${norm} at step ${req.step} (loss ${loss}): lower optim.lr`);
    r.optimizer.applyGradients(clipped);
    return norm;
  });
  const t3 = performance.now();
  return {
    type: 'stepped',
    id: req.id,
    step: req.step,
    loss,
    taskLoss: taskValue,
    distillLoss: distillValue,
    gradNorm,
    computeMs: t1 - t0 + (t3 - t2),
    reduceMs: t2 - t1,
  };
}

async function handle(req: ReplicaRequest): Promise<{ reply: ReplicaReply; transfer?: ArrayBufferLike[] }> {
  switch (req.type) {
    case 'init': {
      const { config } = req;
      const info = await initBackend(config.backend);
      const model = await loadWorkload(config.workload).buildModel({ config, classes: req.classes, seed: req.seed, role: 'student' });
      self = {
        replica: req.replica,
        model,
        optimizer: createOptimizer(config.optim),
        clipNorm: config.optim.clipNorm,
        distillKind: config.distill.loss,
        labelSmoothing: config.distill.labelSmoothing,
        faultAt: -1,
      };
      const parameters = flatLength(model.variables);
      return { reply: { type: 'ready', id: req.id, parameters, backend: info.name, tensors: tf.memory().numTensors } };
    }
    case 'attach':
      need().memory = new GroupMemory(req.memory);
      return { reply: { type: 'ok', id: req.id } };
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
      need().faultAt = req.atStep;
      return { reply: { type: 'ok', id: req.id } };
  }
}

function need(): Replica {
  if (!self) throw new Error('replica used before init');
  return self;
}

// A failing replica wakes its peers at the barrier so the whole group reports the error instead of hanging.
serveActor<ReplicaRequest>(parentPort!, handle, () => self?.memory?.abort(self.replica));
