/**
 * The replica actor's protocol: one synchronous-SGD replica of one group.
 * Requests come from the group supervisor on the main thread; every request gets exactly one reply with its id.
 */
import type { Config } from '../src/config/schema.js';
import type { GroupMemoryInit } from '../src/group/memory.js';
import type { TeacherTarget } from '../src/train/loss.js';
import type { Batch } from '../src/workloads/workload.js';
import type { OptimizerState } from '../src/train/optim.js';

/** A model's full trainable state: weights flattened in variable order, and the optimizer's slots. */
export interface ModelState {
  weights: Float32Array;
  optimizer: OptimizerState;
}

export type { TeacherTarget };

/**
 * What every replica of a group is built from (the group supervisor's options, less the replica count): the run's
 * config names the workload, whose module the replica loads to build the model, and the backend, optimizer and loss.
 */
export interface ReplicaSpec {
  group: number;
  config: Config;
  classes: number;
  /** Seed of the group's initialisation (groups start from different weights). */
  seed: number;
}

export type ReplicaRequest =
  /** Builds the model; the reply says how many parameters it has, so that the group can size its memory. */
  | ({ type: 'init'; id: number; replica: number } & ReplicaSpec)
  /** The group's shared gradient memory, sized from `ready.parameters`: the replica can step once it has it. */
  | { type: 'attach'; id: number; memory: GroupMemoryInit }
  | {
      type: 'step';
      id: number;
      step: number;
      lr: number;
      alpha: number;
      /** This replica's rows of the group batch. */
      batch: Batch;
      /** Whether each row continues the same row of the previous batch (a model that carries state keeps it then). */
      continues: boolean;
      teacher?: TeacherTarget;
    }
  | { type: 'getState'; id: number; optimizer: boolean }
  | { type: 'setState'; id: number; state: ModelState }
  | { type: 'tensors'; id: number }
  /** Fault injection: the replica throws at the given step (tests and the fault-injection suite). */
  | { type: 'injectFault'; id: number; atStep: number };

export interface StepReply {
  type: 'stepped';
  id: number;
  step: number;
  loss: number;
  taskLoss: number;
  distillLoss: number;
  gradNorm: number;
  /** Milliseconds spent in tfjs forward/backward and in the update; the rest of the step is messaging and reduction. */
  computeMs: number;
  reduceMs: number;
}

export type ReplicaReply =
  | { type: 'ready'; id: number; parameters: number; backend: string; tensors: number }
  | StepReply
  | { type: 'state'; id: number; state: ModelState }
  | { type: 'ok'; id: number }
  | { type: 'tensors'; id: number; tensors: number };
