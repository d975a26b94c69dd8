/**
 * Encoding on every core: the documents, cut into tasks of consecutive documents, go to a pool of encoder actors
 * (actors/encoder.ts), and their ids come back task by task in document order, whatever order the workers finish
 * in. The ingest packs them into shards in that order, so the shards are those of one thread.
 *
 * Memory stays flat: at most a few tasks per worker are in flight or waiting to be packed (a task is about a
 * megabyte of text, or one document when that is longer, worker-tasks.ts), and the spent buffers go back to the
 * workers.
 *
 * Workers load compiled JavaScript (dist/actors/encoder.js): run `npm run build` first.
 */
import { Piscina } from 'piscina';
import type { EncodeReply, EncodeRequest, EncodedReply, EncoderData } from '../../../protocol.js';
import { actorFile } from '../../../util/paths.js';
import { CorpusError } from './errors.js';
import type { PlannedDocument } from './plan.js';
import { type TokenArray, type TokenDtype, type TokenizerMeta, tokenArrayType } from './store.js';
import { cutTasks, runTask, workerError } from './worker-tasks.js';

/** Tasks in flight or waiting, per worker: enough that none waits while the ingest packs what came back. */
const AHEAD_PER_WORKER = 3;

/** One task's documents and their ids, each document followed by the end-of-document token. */
export interface EncodedTask {
  documents: readonly PlannedDocument[];
  ids: TokenArray;
  /** Tokens of each document, its end-of-document token included. */
  counts: Uint32Array;
  /** The buffer behind both: hand it back with `recycle` once packed. */
  buffer: ArrayBuffer;
}

/** Cuts documents into tasks of consecutive ones, so every worker gets several. */
export const encodeTasks = (docs: readonly PlannedDocument[], threads: number): PlannedDocument[][] =>
  cutTasks(docs, (d) => d.span.end - d.span.start, threads);

export class EncoderPool {
  readonly threads: number;
  private readonly piscina: Piscina<EncodeRequest, EncodeReply>;
  private readonly dtype: TokenDtype;
  private readonly free: ArrayBuffer[] = [];

  /** A pool of `threads` encoders of `tokenizer`, writing ids in `dtype`. */
  constructor(tokenizer: TokenizerMeta, dtype: TokenDtype, threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new CorpusError(`ingest.threads must be at least 1 here, got ${threads}`);
    this.threads = threads;
    this.dtype = dtype;
    const workerData: EncoderData = { tokenizer, dtype };
    this.piscina = new Piscina({ filename: actorFile('encoder'), minThreads: threads, maxThreads: threads, workerData });
  }

  /** The tasks' ids, in task order; at most AHEAD_PER_WORKER tasks a worker are asked for before they are taken. */
  async *encode(tasks: readonly (readonly PlannedDocument[])[]): AsyncGenerator<EncodedTask> {
    const pending: Promise<EncodeReply>[] = [];
    let next = 0;
    const ask = () => {
      while (next < tasks.length && pending.length < this.threads * AHEAD_PER_WORKER) {
        pending.push(this.run(tasks[next++]));
      }
    };
    ask();
    for (let t = 0; t < tasks.length; t++) {
      const reply = await pending.shift()!;
      if (reply.type === 'error') throw workerError('encoder', reply);
      ask();
      yield this.unpack(tasks[t], reply);
    }
  }

  /** Hands a packed task's buffer back: a later task is written into it. */
  recycle(buffer: ArrayBuffer): void {
    if (this.free.length < this.threads * AHEAD_PER_WORKER) this.free.push(buffer);
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }

  private run(docs: readonly PlannedDocument[]): Promise<EncodeReply> {
    const out = this.free.pop();
    const request: EncodeRequest = {
      type: 'encode',
      documents: docs.map((d) => ({ path: d.file.path, encoding: d.file.encoding, start: d.span.start, end: d.span.end })),
      out,
    };
    return runTask(this.piscina, request, out ? [out] : []);
  }

  private unpack(documents: readonly PlannedDocument[], reply: EncodedReply): EncodedTask {
    if (reply.documents !== documents.length) {
      throw new Error(`encoder: it answered for ${reply.documents} documents, not the task's ${documents.length}`);
    }
    const counts = new Uint32Array(reply.data, 0, reply.documents);
    const ids = new (tokenArrayType(this.dtype))(reply.data, reply.tokenOffset, reply.tokens);
    return { documents, ids, counts, buffer: reply.data };
  }
}
