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
import type { MessagePort } from 'node:worker_threads';
import type { Split, TokenDtype } from '../src/workloads/lm/corpus/store.js';
import type { DataCursor, GroupOrderSpec } from '../src/workloads/lm/data/order.js';

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

export type ToReader = OpenFeed | GrantTask | CloseFeed | Stop;

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
  message: string;
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
