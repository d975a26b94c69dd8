/**
 * What a run tells the world, as one typed stream (`events$`). The progress display, the metrics log, experiments and
 * the embedded service all read this stream and nothing else.
 */
import type { Config } from '../config/schema.js';
import type { MetricName } from '../workloads/workload.js';

export interface StartEvent {
  type: 'start';
  runId: string;
  runDir: string;
  backend: string;
  parameters: number;
  /** What a position is (tokens, rows, images): the unit of `positions` and of throughput. */
  unit: string;
  config: Config;
  /** The step the run starts from (0, or the checkpoint it resumed). */
  fromStep: number;
  time: number;
}

export interface StepEvent {
  type: 'step';
  group: number;
  /** Updates done after this step (1-based). */
  step: number;
  loss: number;
  taskLoss: number;
  distillLoss: number;
  alpha: number;
  lr: number;
  gradNorm: number;
  /** Positions trained on in this step (tokens for the language model, rows or images otherwise). */
  positions: number;
  /** Wall time of this step, including waiting for data and teachers (ms). */
  ms: number;
  /**
   * Of which tfjs compute in the slowest replica, and the gradient all-reduce (ms); with sgd.mode async or delayed,
   * the time a replica spent reading and updating the parameter server, waits included.
   */
  computeMs: number;
  reduceMs: number;
  /**
   * sgd.mode async or delayed: the mean over this step's updates (one per replica) of the updates applied between the
   * weights a gradient was computed on and the update that applied it.
   */
  gradientStaleness?: number;
  /** Time this step waited for its teacher target (ms). */
  teacherWaitMs: number;
  /** Steps between this step and the oldest teacher snapshot used (undefined while distillation is off). */
  staleness?: number;
  /** The update was not applied: the loss or gradient was not finite (`guard.nonFinite = skip`). */
  skipped?: boolean;
  time: number;
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  /** The groups evaluated, when not all of them (a group on a machine of its own evaluates only its model). */
  groups?: number[];
  /** Validation cross-entropy (nats per position) of each group's model, and of their ensemble (averaged probabilities). */
  losses: number[];
  ensembleLoss: number;
  /** The workload's other measures (accuracy, auc): one value per group, then the ensemble's. */
  metrics?: Partial<Record<MetricName, number[]>>;
  positions: number;
  time: number;
}

export interface ExchangeEvent {
  type: 'exchange';
  group: number;
  /** The snapshot's step: teachers of the other groups now use it. */
  step: number;
  time: number;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  group: number;
  step: number;
  ms: number;
  bytes: number;
  time: number;
}

/**
 * A group was started again from its newest checkpoint: its process died, one of its actors (a replica, reader or
 * teacher worker) failed, or a non-finite step rolled it back.
 */
export interface RestartEvent {
  type: 'restart';
  group: number;
  /** The step of the checkpoint it continues from (0: the initialisation). */
  fromStep: number;
  /** How many times this group has been restarted, this one included. */
  attempt: number;
  /** What happened: how the process ended, or the actor's error. */
  reason: string;
  time: number;
}

export interface DoneEvent {
  type: 'done';
  step: number;
  seconds: number;
  /** Final validation loss per group and of the ensemble. */
  losses: number[];
  ensembleLoss: number;
  time: number;
}

/** The run was stopped before its last step (`Run.stop`). */
export interface StoppedEvent {
  type: 'stopped';
  /** The newest step every group reached. */
  step: number;
  /** The newest step every group has a checkpoint of, where a resume continues (the same step, normally). */
  resumesAt: number;
  seconds: number;
  time: number;
}

/**
 * Something went wrong that the run survived: a step skipped for a non-finite loss or gradient, a damaged
 * checkpoint passed over, a validation loss far above its best, an evaluation run again on a fresh evaluator.
 */
export interface WarningEvent {
  type: 'warning';
  kind: 'non-finite' | 'damaged-checkpoint' | 'divergence' | 'evaluator-restart';
  /** The group concerned, when one is. */
  group?: number;
  step: number;
  message: string;
  time: number;
}

export interface ErrorEvent {
  type: 'error';
  message: string;
  time: number;
}

export type RunEvent = StartEvent | StepEvent | EvalEvent | ExchangeEvent | CheckpointEvent | RestartEvent | WarningEvent | DoneEvent | StoppedEvent | ErrorEvent;
