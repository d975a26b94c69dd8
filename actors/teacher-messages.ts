/**
 * The teacher actor's protocol. A teacher holds read-only copies of published snapshots ("slots", e.g. `g1`) and
 * answers forward-only questions about them: the averaged prediction of some slots on a batch (the distillation
 * target), their loss on validation windows (evaluation), and how much two sets of slots disagree (churn).
 * No gradient is ever taken here.
 */
import type { Config } from '../src/config/schema.js';
import type { Batch, MetricName } from '../src/workloads/workload.js';
import type { TeacherTarget } from './replica-messages.js';

export type TeacherRequest =
  /** The run's config names the workload (whose module builds the models) and the backend. */
  | { type: 'init'; id: number; config: Config; classes: number }
  | { type: 'load'; id: number; slot: string; weights: Float32Array }
  | { type: 'drop'; id: number; slot: string }
  /** Average of the slots' probabilities (output 'probs') or logits ('logits'); topK > 0 keeps the k largest. */
  | { type: 'predict'; id: number; slots: string[]; batch: Batch; output: 'probs' | 'logits'; topK: number; positions?: Int32Array }
  /**
   * Cross-entropy (nats per position) of each slot and of the slots' ensemble (averaged probabilities), and the
   * named measures of each (accuracy; AUC of p(class 1) for a binary task).
   */
  | { type: 'evaluate'; id: number; slots: string[]; batch: Batch; chunkRows: number; metrics?: readonly MetricName[] }
  /** Disagreement between the ensemble of slots `a` and the ensemble of slots `b` on the same windows. */
  | { type: 'churn'; id: number; a: string[]; b: string[]; batch: Batch; chunkRows: number }
  | { type: 'tensors'; id: number };

export interface EvaluateReply {
  type: 'evaluated';
  id: number;
  /** Mean cross-entropy per slot, in request order. */
  losses: number[];
  /** Cross-entropy of the averaged probabilities of all requested slots. */
  ensembleLoss: number;
  /** Each requested measure: one value per slot, then the ensemble's. */
  metrics: Partial<Record<MetricName, number[]>>;
  positions: number;
}

export interface ChurnReply {
  type: 'churn';
  id: number;
  /** Mean total-variation distance between the two predicted distributions. */
  totalVariation: number;
  /** Share of positions whose most likely class differs. */
  top1Disagreement: number;
  /** Mean absolute difference of the probability of class 1 (binary tasks; the paper's measure). */
  meanAbsDiff: number;
  positions: number;
}

export type TeacherReply =
  | { type: 'ready'; id: number; backend: string }
  | { type: 'ok'; id: number }
  | { type: 'predicted'; id: number; target: TeacherTarget; ms: number }
  | EvaluateReply
  | ChurnReply
  | { type: 'tensors'; id: number; tensors: number };
