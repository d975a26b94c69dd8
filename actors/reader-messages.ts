/**
 * The reader actor's protocol (DESIGN.md, "Actors"): a stateless piscina worker that copies spans (M consecutive
 * windows of one shard, M*T+1 contiguous tokens) out of the corpus into chunks. Every request gets exactly one
 * reply; errors come back as an `error` reply, never as exceptions.
 *
 * Buffers move, never clone: the caller transfers `spans` and (optionally) spent `out` buffers in, and the reply
 * moves the filled chunks and `spans` back, so a stream keeps reusing the same memory (fresh allocation is slow on
 * these machines). Every chunk has its own buffer, so that it can be recycled as soon as its batches are cut.
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
  /** Spent chunk buffers to fill (moved in), used in order; missing or too small ones are allocated. */
  out?: ArrayBuffer[];
}

export type ReaderRequest = ReadSpansRequest;

export interface ChunksReply {
  type: 'chunks';
  /** One buffer per chunk: `rows` rows of `cols` tokens of `dtype` from byte 0 (a reused buffer may be longer). */
  data: ArrayBuffer[];
  dtype: TokenDtype;
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
