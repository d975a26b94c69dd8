/**
 * The pool of reader actors (actors/reader.ts): one piscina pool per run, shared by every group's batch stream.
 *
 * Workers load compiled JavaScript (dist/actors/reader.js): run `npm run build` first.
 */
import { Piscina } from 'piscina';
import type { ChunksReply, ReadSpansRequest, ReaderReply } from '../../actors/reader-messages.js';
import { actorFile } from '../util/paths.js';

export class ReaderError extends Error {
  override name = 'ReaderError';
}

export class ReaderPool {
  private readonly piscina: Piscina<ReadSpansRequest, ReaderReply>;
  private destroyed = false;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new ReaderError(`reader threads must be >= 1, got ${threads}`);
    this.piscina = new Piscina({ filename: actorFile('reader'), minThreads: threads, maxThreads: threads });
  }

  /**
   * Runs one read task. `request.spans` and the `request.out` buffer move to the worker (the caller's become
   * detached); the reply moves the filled chunks and the spans buffer back. Rejects with a ReaderError.
   */
  async read(request: ReadSpansRequest): Promise<ChunksReply> {
    if (this.destroyed) throw new ReaderError('the reader pool is destroyed');
    const transferList: ArrayBuffer[] = [request.spans.buffer as ArrayBuffer, ...(request.out ? [request.out] : [])];
    let reply: ReaderReply;
    try {
      reply = await this.piscina.run(request, { transferList });
    } catch (err) {
      throw new ReaderError(`reader worker failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (reply.type === 'error') throw new ReaderError(reply.message);
    return reply;
  }

  /** Tasks the pool has finished. */
  get completed(): number {
    return this.piscina.completed;
  }

  /** Stops the workers (tasks still running are rejected); safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.piscina.destroy();
  }
}

/** A reader pool of `threads` workers, to share between all groups' batch streams. */
export function createReaderPool(threads = 1): ReaderPool {
  return new ReaderPool(threads);
}
