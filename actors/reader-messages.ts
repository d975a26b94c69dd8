/**
 * The reader actor's protocol (DESIGN.md, "Actors"): a stateless piscina worker that turns window lists into
 * token arrays. Every request gets exactly one reply; errors come back as an `error` reply, never as exceptions.
 *
 * Buffers move, never clone: the caller transfers `windows` and (optionally) a spent `out` buffer in, and the reply
 * moves both back, so a stream can keep reusing the same memory (fresh allocation is slow on these machines).
 */
import type { Split } from '../src/corpus/store.js';
import type { WindowDtype, WindowFormat } from '../src/data/windows.js';

export interface ReadWindowsRequest {
  type: 'read';
  corpusPath: string;
  split: Split;
  /** T: every window is T+1 tokens. */
  window: number;
  format: WindowFormat;
  /** Shard ids this task reads; a window names its shard by index into this table. */
  shards: Uint32Array;
  /**
   * Two entries per output row, in row order: index into `shards`, first token offset of the window in that shard.
   * The worker reads each listed shard once per task, however many of the rows come from it.
   */
  windows: Uint32Array;
  rows: number;
  /** A buffer to write the rows into (moved in); the worker allocates one if it is missing or too small. */
  out?: ArrayBuffer;
}

export type ReaderRequest = ReadWindowsRequest;

export interface WindowsReply {
  type: 'windows';
  /** rows x (T+1) elements of `dtype` from byte 0 (the buffer may be longer: it is a reused one). */
  data: ArrayBuffer;
  dtype: WindowDtype;
  rows: number;
  cols: number;
  /** The request's `windows`, moved back so that the caller can reuse its buffer. */
  windows: Uint32Array;
}

export interface ReaderErrorReply {
  type: 'error';
  message: string;
}

export type ReaderReply = WindowsReply | ReaderErrorReply;
