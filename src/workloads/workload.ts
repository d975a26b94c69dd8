/**
 * The one interface every workload implements. The run supervisor, groups, replicas, teachers, evaluator,
 * checkpoints, experiments and reports hold a `Workload` and never name one; everything that depends on the task
 * (its config section, ingest and store format, batch streams, validation set, model, loss, metrics) lives behind it,
 * in a folder of its own under src/workloads/ (lm/, click/, image/), or in a user's module named by path.
 *
 * The model side is written once against logits: a model turns a batch into logits [positions, classes] and the
 * matching integer labels, so the task loss (softmax cross-entropy), the distillation term (cross-entropy to the
 * averaged teacher probabilities), evaluation and churn are the same code for every workload. A binary task has two
 * classes whose logits are [0, z]: softmax then gives p(1) = sigmoid(z), its cross-entropy is the log loss, and the
 * distillation term is the binary cross-entropy to the averaged teacher probability.
 *
 * Workers load workloads, not closures: an actor receives the workload's name (a built-in kind or a module path) in
 * its init message and resolves it with `loadWorkload` (./registry.ts). A workload module stays light at the top
 * (config sections, descriptions) and imports its data and model code where they are used: every actor and the
 * config loader import it.
 */
import type * as tf from '@tensorflow/tfjs';
import type { z } from 'zod';
import type { Config } from '../config/schema.js';

/** One named column of a batch, row-major: `rows * width` values. */
export type Field = Int32Array | Float32Array | Uint8Array;

/** A batch: `rows` examples as named typed arrays, each `rows * width` long (the width is the field's own). */
export interface Batch {
  rows: number;
  fields: Record<string, Field>;
}

/** Where a group's training stream resumes: the next batch's epoch and index within it. */
export interface DataCursor {
  epoch: number;
  batch: number;
}

/** A batch of one group's training stream. */
export interface TrainBatch extends Batch {
  /** The data cursor after this batch: where a run resumes once this batch has been trained on. */
  cursor: DataCursor;
  /** Every row continues the same row of the stream's previous batch (a model may carry state across them). */
  continues: boolean;
}

/** One group's training batches, in order, read ahead with bounded memory. */
export interface TrainStream {
  next(): Promise<TrainBatch>;
  /** Hands a spent batch back so that a later batch may reuse its buffers (optional). */
  recycle?(batch: TrainBatch): void;
  close(): Promise<void>;
}

export interface StreamSpec {
  group: number;
  groups: number;
  /** Every group reads all training data (distill.sameData) instead of its own disjoint part. */
  sameData: boolean;
  /** Examples per batch (the group batch, before the split across replicas). */
  batch: number;
  /** Seed of the data order. */
  seed: number;
  /** Where to start (default: the very beginning). */
  cursor?: DataCursor;
  /**
   * Fault injection (tests, the fault-injection suite): when batch `atBatch` is pulled (counted from the stream's
   * opening, 0-based, whatever its cursor), the reader serving it throws, or its worker exits ('exit'; a stream that
   * reads on the calling thread throws then too). That pull and every later one reject with an error naming the
   * reader, for which `isActorFault` (src/util/actor.ts) is true. A workload may ignore the field.
   */
  fault?: { atBatch: number; kind: 'throw' | 'exit' };
}

/** A workload's data opened for a run, on the supervisor's thread. */
export interface WorkloadData {
  /** Output classes of the model (the vocabulary for the language model, 2 for click prediction). */
  readonly classes: number;
  /** Positions a batch row predicts: logits have rows * positionsPerRow rows (T for the language model, else 1). */
  readonly positionsPerRow: number;
  /** The validation examples, the same for every group and every evaluation. */
  readonly validation: Batch;
  /**
   * A trivial predictor's validation loss on the same examples, shown beside the models' so that the gain is
   * visible (click prediction: always predicting the training base rate).
   */
  readonly reference?: { label: string; loss: number };
  /** Group `spec.group`'s training stream. */
  openStream(spec: StreamSpec): TrainStream;
  close(): Promise<void>;
}

export interface Model {
  /** Number of output classes. */
  readonly classes: number;
  /** Trainable variables in a fixed order: gradients, all-reduce buffers and snapshots all use this order. */
  readonly variables: readonly tf.Variable[];
  /**
   * Logits [positions, classes]; with `at` (int32 position indices), only those rows: forward passes that need no
   * gradient (teachers) may then skip work. Call inside tf.tidy.
   */
  logits(batch: Batch, at?: tf.Tensor1D): tf.Tensor2D;
  /** Labels [positions] (int32). Call inside tf.tidy. */
  labels(batch: Batch): tf.Tensor1D;
  /** Positions a batch of `rows` rows predicts. */
  positions(rows: number): number;
  /** Forgets state carried between batches, when the next batch's rows do not continue the previous ones. */
  resetState?(): void;
  dispose(): void;
}

export interface ModelSpec {
  /** The run's resolved config (the workload reads its own sections). */
  config: Config;
  classes: number;
  /** Seed of the initialisation. */
  seed: number;
  /** Teachers and evaluators only run forward passes on batches out of any stream. */
  role: 'student' | 'teacher';
}

/** A validation measure every evaluation reports, beside the cross-entropy that every workload has. */
export type MetricName = 'accuracy' | 'auc';

/** What `codistill ingest` reports for a workload: a table and a closing line. */
export interface IngestReport {
  /** Nothing was done: the store is up to date with its inputs. */
  upToDate: boolean;
  header: string[];
  rows: string[][];
  /** Lines printed after the table (rates, counts of skipped input, where the store is). */
  notes: string[];
}

export interface IngestOptions {
  /** Input files named on the command line (override the config's inputs). */
  inputs?: string[];
  /** The format of those files, for workloads that read several (`--format`). */
  format?: string;
  /** Replace a store built from other input or settings. */
  force?: boolean;
  /** Ingest part `index` of `count` of the inputs, into the store's folder as one part of it (`--part i/P`). */
  part?: { index: number; count: number };
  /** Progress lines and bars go here (the CLI passes its terminal). */
  progress?: IngestProgressSink;
}

export interface IngestProgressSink {
  /** A phase starts; `total` in `unit` when known. */
  phase(name: string, total?: number, unit?: string): void;
  update(done: number, fields?: Record<string, number>): void;
  /** A plain message (e.g. "no store at PATH: ingesting it first"). */
  line(text: string): void;
}

/**
 * The sections a workload adds to the config, each a strict zod object with defaults (the schema of a run is the
 * common sections plus these, keyed on `workload`).
 */
export type WorkloadSections = Record<string, z.ZodType>;

/**
 * How a user's input becomes one batch for the trained models, and their averaged probabilities an answer: what
 * `openPredictor` (src/train/predict.ts) asks of a workload. Built on the caller's thread from the opened data.
 */
export interface Predictor {
  /**
   * Checks a user's input and encodes it as one batch, with the positions whose probabilities the answer needs
   * (sorted flat indices into the batch's rows x positionsPerRow; undefined = all). Throws an Error naming what is
   * wrong with the input (its type, a length, a row and column).
   */
  encode(input: unknown): { batch: Batch; positions?: Int32Array };
  /**
   * The answer from the averaged probabilities of those positions, [positions, classes] row-major. `topK`: how many
   * of the most likely classes an answer that lists classes gives (at least 1; the language model's next tokens).
   */
  decode(probs: Float32Array, classes: number, options: { topK: number }): unknown;
}

export interface Workload {
  /** The name the config's `workload` key gives (a built-in kind, or the module's path for a user's workload). */
  readonly kind: string;
  /** What reports call the task, e.g. "LSTM language model on the bundled books". */
  describe(config: Config): string;
  readonly sections: WorkloadSections;
  /** Keys of its sections that change how fast a run goes but nothing it computes (e.g. reader threads). */
  readonly untracked?: readonly string[];
  /** Cross-field checks of the workload's own keys: each problem names its key (`config key "model.x": ...`). */
  check?(config: Config): string[];
  /** The unit of a position, plural: what throughput is counted in ("tokens", "rows", "images"). */
  readonly unit: string;
  /** The validation measures reported beside the cross-entropy. */
  readonly metrics: readonly MetricName[];
  /** Input formats `codistill ingest --format` accepts for this workload (the first is the default). */
  readonly formats: readonly string[];
  /** Builds the store from the inputs (or reports it up to date). */
  ingest(config: Config, opts?: IngestOptions): Promise<IngestReport>;
  /** Whether `ingest` builds a store in parts (`IngestOptions.part`, on many machines); without it `--part` is refused. */
  readonly ingestsInParts?: boolean;
  /** Where the config's store lives: train, start and experiments ingest first when nothing is there yet. */
  dataPath(config: Config): string;
  /** Opens the store for a run. */
  open(config: Config): Promise<WorkloadData>;
  /**
   * Builds a model (in an actor's thread). It may be async, so that a workload module loads its model code (and
   * tfjs) only where a model is built: the config loader and the supervisor import workloads too.
   */
  buildModel(spec: ModelSpec): Model | Promise<Model>;
  /**
   * The encoder and decoder of predictions from a trained run (optional: without one, the workload cannot answer
   * `predict`). `data` is the workload's opened data (classes, positions per row, the validation batch's fields).
   * It may be async, as buildModel may, so that the module imports its encoding code only where it is used.
   */
  predictor?(config: Config, data: WorkloadData): Predictor | Promise<Predictor>;
}
