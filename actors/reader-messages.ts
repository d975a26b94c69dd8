/**
 * The reader actor's protocol (DESIGN.md, "Actors"): a stateless piscina worker that turns window lists into
 * token arrays. Every request gets exactly one reply; errors come back as an `error` reply, never as exceptions.
 *
 * Buffers move, never clone: the caller transfers `windows` and (optionally) spent `out` buffers in, and the reply
 * moves the filled buffers and `windows` back, so a stream can keep reusing the same memory (fresh allocation is slow
 * on these machines). Rows come in several buffers of `rowsPerOutput` rows (one per batch for the batch stream), so
 * that every batch owns its buffer and can move on to a replica alone.
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
  /** Rows per output buffer: the reply has ceil(rows / rowsPerOutput) buffers. */
  rowsPerOutput: number;
  /** Spent buffers to write the rows into (moved in), used in order; missing or too small ones are allocated. */
  out?: ArrayBuffer[];
}

export type ReaderRequest = ReadWindowsRequest;

export interface WindowsReply {
  type: 'windows';
  /** Buffer i holds rows i * rowsPerOutput onwards, (T+1) elements of `dtype` a row, from byte 0 (a reused buffer may
   * be longer than its rows). */
  data: ArrayBuffer[];
  rowsPerOutput: number;
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
