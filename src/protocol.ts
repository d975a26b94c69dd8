/**
 * The actors' protocol: every message that crosses a thread (or process) boundary between the supervisor, a group's
 * replicas, the teachers and the readers, in one place that both `actors/` and `src/` import.
 *
 * Every request carries an id and gets exactly one reply with that id, or an `error` reply carrying the message as
 * data (errors never cross threads as exceptions). Typed arrays move by transfer, never by copy, where the sender
 * no longer needs them.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from './config/schema.js';
import type { GroupMemoryInit } from './group/memory.js';
import type { ParameterServerInit } from './group/parameter-server.js';
import type { OptimizerState } from './train/optim.js';
import type { Batch, MetricName } from './workloads/workload.js';
import type { Split, TokenDtype, TokenizerMeta } from './workloads/lm/corpus/store.js';
import type { InputFile, InvalidUtf8Policy, ScannedFile, TextEncoding } from './workloads/lm/corpus/inputs.js';
import type { WorkerErrorReply } from './workloads/lm/corpus/worker-tasks.js';
import type { DataCursor, GroupOrderSpec } from './workloads/lm/data/order.js';
import type { CheckpointEvent, ExchangeEvent, RestartEvent, StepEvent, WarningEvent } from './train/events.js';
import type { InjectedFault } from './train/group-trainer.js';
import type { FaultKind, WorkerFaultKind } from './train/faults.js';

/** What a group's loop reports as it trains. */
export type GroupEvent = StepEvent | ExchangeEvent | CheckpointEvent | RestartEvent | WarningEvent;


/**
 * The teachers' averaged prediction as it travels: dense [S, C] values or the top-k entries [S, k] of each of S
 * positions, where S is every position or only `positions` (sorted indices) when distill.positionFraction < 1.
 * Values are probabilities for the cross-entropy term, logits for mse-logits.
 */
export type TeacherTarget = (
  | { kind: 'dense'; values: Float32Array }
  | { kind: 'topk'; k: number; indices: Int32Array; probs: Float32Array }
) & { positions?: Int32Array };

// ==============================================================================================================
/**
 * The replica actor's protocol: one synchronous-SGD replica of one group.
 * Requests come from the group supervisor on the main thread; every request gets exactly one reply with its id.
 */

/** A model's full trainable state: weights flattened in variable order, and the optimizer's slots. */
export interface ModelState {
  weights: Float32Array;
  optimizer: OptimizerState;
}


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
  /** The group's shared memory; with sgd.mode = async or delayed, also its parameter server. */
  | { type: 'attach'; id: number; memory: GroupMemoryInit; server?: ParameterServerInit }
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
      /** sgd.mode = delayed: the number of this replica's update in the run (step * replicas + replica + 1). */
      update?: number;
    }
  | { type: 'getState'; id: number; optimizer: boolean }
  | { type: 'setState'; id: number; state: ModelState }
  | { type: 'tensors'; id: number }
  /**
   * Fault injection (tests and the fault-injection suite): at step `atStep` the replica throws, its worker exits, or
   * its loss and gradient are NaN (src/train/faults.ts).
   */
  | { type: 'injectFault'; id: number; atStep: number; kind: FaultKind };

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
  /**
   * The update was not applied (`guard.nonFinite` = skip or rollback): this replica's loss was not finite (`loss`,
   * its value), or the reduced gradient's norm was not (`gradient`, the norm). Weights and optimizer state are as
   * they were before the step, bit for bit.
   */
  skipped?: { what: 'loss' | 'gradient'; value: number };
  /** sgd.mode = async or delayed: updates applied between the weights this gradient was computed on and it. */
  gradientStaleness?: number;
}

export type ReplicaReply =
  | { type: 'ready'; id: number; parameters: number; backend: string; tensors: number }
  | StepReply
  | { type: 'state'; id: number; state: ModelState }
  | { type: 'ok'; id: number }
  | { type: 'tensors'; id: number; tensors: number };

// ==============================================================================================================
/**
 * The teacher actor's protocol. A teacher holds read-only copies of published snapshots ("slots", e.g. `g1`) and
 * answers forward-only questions about them: the averaged prediction of some slots on a batch (the distillation
 * target), their loss on validation windows (evaluation), and how much two sets of slots disagree (churn).
 * No gradient is ever taken here.
 */

export type TeacherRequest =
  /** The run's config names the workload (whose module builds the models) and the backend. */
  | { type: 'init'; id: number; config: Config; classes: number }
  | { type: 'load'; id: number; slot: string; weights: Float32Array }
  | { type: 'drop'; id: number; slot: string }
  /**
   * Average of the slots' probabilities (output 'probs') or logits ('logits'); topK > 0 keeps the k largest, written
   * into `into` (the reply's target is made of views of it). `step`: the training step the prediction is for (what
   * an injected fault is keyed on).
   */
  | {
      type: 'predict';
      id: number;
      slots: string[];
      batch: Batch;
      output: 'probs' | 'logits';
      topK: number;
      positions?: Int32Array;
      into: SharedArrayBuffer;
      step?: number;
    }
  /**
   * Cross-entropy (nats per position) of each slot and of the slots' ensemble (averaged probabilities), and the
   * named measures of each (accuracy; AUC of p(class 1) for a binary task). `step`: the evaluation's step.
   */
  | { type: 'evaluate'; id: number; slots: string[]; batch: Batch; chunkRows: number; metrics?: readonly MetricName[]; step?: number }
  /** Disagreement between the ensemble of slots `a` and the ensemble of slots `b` on the same windows. */
  | { type: 'churn'; id: number; a: string[]; b: string[]; batch: Batch; chunkRows: number }
  | { type: 'tensors'; id: number }
  /**
   * Fault injection: the predict or evaluate request of step `atStep` throws, or ends the actor's worker (kind
   * 'exit'); other requests are served as usual.
   */
  | { type: 'injectFault'; id: number; atStep: number; kind: WorkerFaultKind };

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

// ==============================================================================================================
/**
 * The reader actor's protocol: one request union in, one reply union out, errors as data, buffers transferred.
 *
 * A reader is a piscina worker running one long task, `serve`, that feeds batch streams: each stream opens a feed
 * (its group's data order from a cursor) on every reader of the pool; the readers plan and read the feed's block
 * tasks themselves, task j on reader j mod W, and send each one back as it is done. The stream grants tasks, one
 * message per task carrying a spent buffer to refill, so the readers never wait for the stream to tell them what to
 * read next, only for room (the stream's bounded prefetch). Messages go over a MessagePort per reader; a doorbell
 * (an Int32 in shared memory) wakes a reader that has nothing to do.
 *
 * Buffers move, never clone: a granted buffer is transferred in and the filled chunks are transferred back, so a
 * stream keeps reusing the same memory (fresh allocation is slow on these machines). A task's chunks share one
 * buffer: every transferred buffer costs about 1.5 us each way, which for 30 chunk buffers came to a third of a
 * block's copying time.
 */

/** A group's data order (rebuilt by each reader exactly as the stream has it) from a cursor. */
export interface FeedSpec extends GroupOrderSpec {
  /** Where the feed's task 0 starts. */
  cursor: DataCursor;
}

/** The piscina task of a reader: serve feeds over `port` until told to stop. */
export interface ServeRequest {
  type: 'serve';
  port: MessagePort;
  /** One Int32: bumped (and notified) after every message posted to `port`. */
  doorbell: SharedArrayBuffer;
  /** This reader's index and the pool's size: it reads the tasks j with j mod readers = reader. */
  reader: number;
  readers: number;
}

export type ServeResult = { type: 'stopped' };

/** Opens feed `feed` with no task granted yet. */
export interface OpenFeed {
  type: 'open';
  feed: number;
  spec: FeedSpec;
}

/**
 * Grants task `task` of a feed (the readers see only their own tasks, in order), with a spent buffer to fill. Without
 * a buffer, or with one too small, the reader allocates one with room for the feed's largest block.
 */
export interface GrantTask {
  type: 'grant';
  feed: number;
  task: number;
  buffer?: ArrayBuffer;
}

export interface CloseFeed {
  type: 'close';
  feed: number;
}

export interface Stop {
  type: 'stop';
}

/**
 * Fault injection: the reader fails feed `feed` now, as the reader of its task `task`: it throws (the feed fails
 * with an error reply for that task, and the reader reads no more of it) or its worker exits (the pool fails).
 */
export interface InjectReaderFault {
  type: 'fault';
  feed: number;
  task: number;
  kind: WorkerFaultKind;
  /** The stream's batch (counted from its opening) the fault is for, for the message. */
  atBatch: number;
}

export type ToReader = OpenFeed | GrantTask | CloseFeed | Stop | InjectReaderFault;

/**
 * A task's chunks in one buffer, `data`: first the row table, a Uint32 per row (chunk c, row r at c * rows + r), then
 * from byte `tokenOffset` the task's tokens: for each shard it read, the one region of the shard that its spans lie
 * in. Row r of chunk c is the `cols` tokens from tokenOffset + rowStarts[c * rows + r] tokens on. So a reader copies
 * one piece a shard, not one a span, and a span overlapping the next by a token holds it once. (The buffer may be
 * longer than both.)
 */
export interface ChunksReply {
  type: 'chunks';
  feed: number;
  task: number;
  /** The task's place in the stream, as the reader planned it: the stream checks it against its own. */
  epoch: number;
  firstChunk: number;
  chunks: number;
  data: ArrayBuffer;
  dtype: TokenDtype;
  /** Rows a chunk (B) and tokens a row (M*T+1). */
  rows: number;
  cols: number;
  /** Byte offset of the tokens in `data` (after the row table), and how many there are. */
  tokenOffset: number;
  tokens: number;
}

/** A feed that failed: no later task of it on this reader comes. */
export interface FeedErrorReply {
  type: 'error';
  feed: number;
  task: number;
  /** The reader that failed (-1: the pool, for every reader). */
  reader: number;
  /** Names the reader: "reader 1: ...". */
  message: string;
  /**
   * False when the feed's input is at fault (a missing or damaged corpus, a span past a shard's end): the same read
   * would fail on any reader. True or absent: the reader itself failed (it threw unexpectedly, or was made to).
   */
  fault?: boolean;
}

export type FromReader = ChunksReply | FeedErrorReply;

/**
 * One read: the spans of the listed shards, as the rows of chunks (ChunksReply's layout). The serve loop makes these
 * from its own plans; tests and tools call `readSpans` with them directly.
 */
export interface ReadSpansRequest {
  corpusPath: string;
  split: Split;
  /** Tokens per span (M*T+1): the row length of a chunk. */
  spanTokens: number;
  /** Spans per chunk (B). */
  rows: number;
  chunks: number;
  /** Shard ids this task reads; a span names its shard by index into this table. Each is read once per task. */
  shards: Uint32Array;
  /** Two entries per span, chunk-major (chunk c, row r at 2 * (c * rows + r)): index into `shards`, first token. */
  spans: Uint32Array;
  /** A spent buffer to fill; if it is missing or too small, one is allocated. */
  out?: ArrayBuffer;
  /**
   * Bytes a newly allocated buffer has (at least what this read needs): room for the largest task of an order
   * (DataOrder.taskBytes) lets one buffer serve every later task.
   */
  reserveBytes?: number;
}

export type ReadSpansResult = Pick<ChunksReply, 'data' | 'dtype' | 'tokenOffset' | 'tokens'>;

// ==============================================================================================================
/**
 * The ingest's actors (`codistill ingest` on every core), each a piscina pool, each request one run of consecutive
 * items and one reply, errors as data (WorkerErrorReply, which says whether the input is at fault).
 *
 * The scanner checks input files and cuts them into documents (corpus/inputs.ts, scanFile). The encoder loads the
 * corpus tokenizer once (EncoderData, its pool's workerData) and turns documents into token ids, which come back in
 * one transferred buffer; the ingest hands a spent buffer back with a later request, so that the pool keeps reusing
 * the same memory.
 */

export interface ScanRequest {
  type: 'scan';
  files: InputFile[];
  maxDocumentBytes: number;
  invalidUtf8: InvalidUtf8Policy;
}

export type ScanReply = { type: 'scanned'; files: ScannedFile[] } | WorkerErrorReply;

/** What every encoder loads at its start. */
export interface EncoderData {
  tokenizer: TokenizerMeta;
  /** The corpus dtype the ids are written in. */
  dtype: TokenDtype;
}

/** A document to encode: a byte range of a file, read in the file's encoding. */
export interface EncodeDocument {
  path: string;
  encoding: TextEncoding;
  start: number;
  end: number;
}

export interface EncodeRequest {
  type: 'encode';
  documents: EncodeDocument[];
  /** A spent buffer to fill (moved); a larger one is allocated when it is missing or too small. */
  out?: ArrayBuffer;
}

/**
 * The documents' ids, each followed by the end-of-document token. `data` holds, in order, the token count of each
 * document (a Uint32Array of `documents.length`, its end-of-document token included), then from byte `tokenOffset`
 * the ids of all of them, in the corpus dtype.
 */
export interface EncodedReply {
  type: 'encoded';
  data: ArrayBuffer;
  documents: number;
  tokenOffset: number;
  tokens: number;
}

export type EncodeReply = EncodedReply | WorkerErrorReply;

// ==============================================================================================================
/**
 * A group process's protocol (process placement): the supervisor forks one child per group and talks to it over
 * the IPC channel with structured-clone serialization (typed arrays travel as such). The child trains its group
 * and reports everything as events; the supervisor's evaluator gets the weights it needs by message.
 */

export type ToGroupProcess =
  /** Trains group `group` of the run, from its checkpoint at step `from` (undefined: from the initialisation). */
  | {
      type: 'start';
      config: Config;
      runDir: string;
      group: number;
      from?: number;
      faults?: InjectedFault[];
    }
  /** End the run early with a checkpoint: after step `at`, or (no `at`) after the current step. */
  | { type: 'stop'; at?: number };

export type FromGroupProcess =
  | { type: 'ready'; backend: string; parameters: number }
  /** One of the group's run events (step, exchange, checkpoint), as a thread-placed group emits it. */
  | { type: 'event'; event: GroupEvent }
  /** The group's weights at an evaluation step, for the supervisor's evaluator. */
  | { type: 'evaluate'; step: number; weights: Float32Array }
  | { type: 'done'; steps: number }
  | { type: 'failed'; message: string };
