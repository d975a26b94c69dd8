/**
 * The reader actor's protocol (DESIGN.md, "Actors"): a stateless piscina worker that copies spans (M consecutive
 * windows of one shard, M*T+1 contiguous tokens) out of the corpus into chunks. Every request gets exactly one
 * reply; errors come back as an `error` reply, never as exceptions.
 *
 * Buffers move, never clone: the caller transfers `spans` and (optionally) a spent `out` buffer in, and the reply
 * moves the filled chunks and `spans` back, so a stream keeps reusing the same memory (fresh allocation is slow on
 * these machines). A task's chunks share one buffer: every transferred buffer costs about 1.5 us each way, which for
 * 30 chunk buffers came to a third of a block's copying time.
 */
import type { Split, TokenDtype } from '../src/corpus/store.js';

export interface ReadSpansRequest {
  type: 'read';
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
  /** A spent buffer to fill (moved in); if it is missing or too small, one is allocated. */
  out?: ArrayBuffer;
  /**
   * Chunks a newly allocated buffer has room for (default `chunks`): room for the largest task lets one buffer serve
   * every later task.
   */
  reserveChunks?: number;
}

export type ReaderRequest = ReadSpansRequest;

export interface ChunksReply {
  type: 'chunks';
  /**
   * The chunks, one after the other from byte 0: chunk c is rows c*rows .. (c+1)*rows - 1, `cols` tokens of `dtype`
   * a row (the buffer may be longer).
   */
  data: ArrayBuffer;
  dtype: TokenDtype;
  chunks: number;
  rows: number;
  cols: number;
  /** The request's `spans`, moved back so that the caller can reuse its buffer. */
  spans: Uint32Array;
}

export interface ReaderErrorReply {
  type: 'error';
  message: string;
}

export type ReaderReply = ChunksReply | ReaderErrorReply;
