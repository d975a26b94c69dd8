/**
 * What the ingest's two worker pools share (scan-pool.ts: files checked and cut into documents; encode-pool.ts:
 * documents turned into ids): how consecutive items are cut into tasks, and how a worker's error reply is thrown.
 */
import type { Piscina } from 'piscina';
import { CorpusError } from './errors.js';

/** Bytes of input a task holds at most (one larger item is a task of its own): about a tenth of a second of work. */
const TASK_BYTES = 1 << 20;
/** ...and at least, when a small input is spread over the workers. */
const MIN_TASK_BYTES = 16 << 10;

/** Cuts `items` into runs of consecutive ones of about TASK_BYTES, fewer bytes when that gives each worker several. */
export function cutTasks<T>(items: readonly T[], bytesOf: (item: T) => number, threads: number): T[][] {
  const total = items.reduce((sum, item) => sum + bytesOf(item), 0);
  const target = Math.min(TASK_BYTES, Math.max(MIN_TASK_BYTES, Math.ceil(total / (threads * 4))));
  const tasks: T[][] = [];
  let task: T[] = [];
  let bytes = 0;
  for (const item of items) {
    task.push(item);
    bytes += bytesOf(item);
    if (bytes >= target) {
      tasks.push(task);
      task = [];
      bytes = 0;
    }
  }
  if (task.length > 0) tasks.push(task);
  return tasks;
}

/** A worker's error reply, as the ingest's pools and actors share it. */
export interface WorkerErrorReply {
  type: 'error';
  /** Names the file: "input file a.txt got shorter while being read". */
  message: string;
  /** The input is at fault (a CorpusError: the same work fails on any worker), not the worker. */
  input: boolean;
  stack?: string;
}

/** The reply of a worker that threw: `err`, carried as data. */
export function errorReply(err: unknown): WorkerErrorReply {
  const e = err instanceof Error ? err : new Error(String(err));
  return { type: 'error', message: e.message, input: e.name === 'CorpusError', stack: e.stack };
}

/** A worker's error reply as the error to throw: the input's (a CorpusError naming the file), or the worker's, with its stack. */
export function workerError(actor: string, reply: WorkerErrorReply): Error {
  if (reply.input) return new CorpusError(reply.message);
  const err = new Error(`${actor}: ${reply.message}`);
  if (reply.stack) err.stack = `${err.message}\n(in the ${actor} worker)\n${reply.stack}`;
  return err;
}

/** Runs `request` on `pool`; a worker that died (rather than replying with an error) replies with its failure. */
export function runTask<Req, Reply>(
  pool: Piscina<Req, Reply | WorkerErrorReply>,
  request: Req,
  transferList: ArrayBuffer[] = [],
): Promise<Reply | WorkerErrorReply> {
  return pool
    .run(request, { transferList })
    .catch((err: unknown): WorkerErrorReply => ({ type: 'error', message: `a worker failed: ${(err as Error).message}`, input: false }));
}
