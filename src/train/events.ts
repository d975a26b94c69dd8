/**
 * What a run tells the world, as one typed stream (`events$`). The progress display, the metrics log, experiments and
 * the embedded service all read this stream and nothing else.
 */
import type { Config } from '../config/schema.js';

export interface StartEvent {
  type: 'start';
  runId: string;
  runDir: string;
  backend: string;
  parameters: number;
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
  tokens: number;
  /** Wall time of this step, including waiting for data and teachers (ms). */
  ms: number;
  /** Of which tfjs compute in the slowest replica, and the gradient all-reduce (ms). */
  computeMs: number;
  reduceMs: number;
  /** Time this step waited for its teacher target (ms). */
  teacherWaitMs: number;
  /** Steps between this step and the oldest teacher snapshot used (undefined while distillation is off). */
  staleness?: number;
  time: number;
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  /** Validation cross-entropy (nats/token) of each group's model, and of their ensemble (averaged probabilities). */
  losses: number[];
  ensembleLoss: number;
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
  step: number;
  ms: number;
  bytes: number;
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

export interface ErrorEvent {
  type: 'error';
  message: string;
  time: number;
}

export type RunEvent = StartEvent | StepEvent | EvalEvent | ExchangeEvent | CheckpointEvent | DoneEvent | ErrorEvent;
