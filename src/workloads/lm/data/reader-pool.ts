/**
 * The pool of reader actors (actors/reader.ts): one piscina pool per run, shared by every group's batch stream.
 *
 * Each of the W workers runs one long `serve` task with a MessagePort of its own. A stream opens a feed on every
 * reader (`openFeed`), then grants its tasks one at a time as its prefetch budget allows, each grant going to the
 * reader that owns the task (j mod W) with a spent buffer to refill; the chunks come back to the feed's sink as soon
 * as they are read. Measured on 2 cores, this keeps both readers busy where a request and a reply per task through
 * `piscina.run` left them waiting on the main thread a quarter of the time (bench/reader.ts).
 *
 * Workers load compiled JavaScript (dist/actors/reader.js): run `npm run build` first.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { FeedSpec, FromReader, ServeRequest, ServeResult, ToReader } from '../../../protocol.js';
import { actorFile } from '../../../util/paths.js';

export class ReaderError extends Error {
  override name = 'ReaderError';
}

/** What a feed's sink receives: the readers' replies, or the pool's failure (task -1: every pending task). */
export type FeedEvent = FromReader;

/** One reader as the pool sees it: its port, doorbell and serve task. */
interface Reader {
  port: MessagePort;
  bell: Int32Array;
  served: Promise<ServeResult | undefined>;
}

/** A stream's handle on its feed: grant tasks, close. */
export class ReaderFeed {
  private closed = false;

  constructor(
    private readonly pool: ReaderPool,
    readonly id: number,
  ) {}

  /** Lets the readers read task `task` (tasks are granted in order), into `buffer` if one is given (moved). */
  grant(task: number, buffer?: ArrayBuffer): void {
    if (this.closed) return;
    this.pool.post(task % this.pool.threads, { type: 'grant', feed: this.id, task, buffer }, buffer ? [buffer] : []);
  }

  /** Tells every reader to drop the feed; replies still on their way are ignored. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pool.closeFeed(this.id);
  }
}

export class ReaderPool {
  private readonly piscina: Piscina<ServeRequest, ServeResult>;
  private readonly readers: Reader[];
  private readonly sinks = new Map<number, (event: FeedEvent) => void>();
  private nextFeed = 0;
  private chunkReplies = 0;
  private failure: ReaderError | undefined;
  private destroyed = false;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new ReaderError(`reader threads must be >= 1, got ${threads}`);
    this.piscina = new Piscina({ filename: actorFile('reader'), minThreads: threads, maxThreads: threads });
    this.readers = Array.from({ length: threads }, (_, reader) => {
      const { port1, port2 } = new MessageChannel();
      const doorbell = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
      const request: ServeRequest = { type: 'serve', port: port2, doorbell, reader, readers: threads };
      const served = this.piscina.run(request, { transferList: [port2] }).catch((err: unknown) => {
        this.fail(new ReaderError(`reader worker ${reader} failed: ${err instanceof Error ? err.message : String(err)}`));
        return undefined;
      });
      port1.on('message', (m: FromReader) => this.receive(m));
      return { port: port1, bell: new Int32Array(doorbell), served };
    });
  }

  /**
   * Opens a feed of `spec` on every reader; `sink` gets each task's chunks (or a failure) as it is read. Throws a
   * ReaderError once the pool is destroyed or has failed.
   */
  openFeed(spec: FeedSpec, sink: (event: FeedEvent) => void): ReaderFeed {
    if (this.destroyed) throw new ReaderError('the reader pool is destroyed');
    if (this.failure) throw this.failure;
    const id = this.nextFeed++;
    this.sinks.set(id, sink);
    for (let r = 0; r < this.threads; r++) this.post(r, { type: 'open', feed: id, spec });
    return new ReaderFeed(this, id);
  }

  /** Tasks the readers have read and sent back. */
  get completed(): number {
    return this.chunkReplies;
  }

  /** Stops the readers (their feeds get nothing more); safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (let r = 0; r < this.threads; r++) this.post(r, { type: 'stop' });
    await Promise.all(this.readers.map((r) => r.served));
    for (const r of this.readers) r.port.close();
    this.sinks.clear();
    await this.piscina.destroy();
  }

  /** @internal Posts `message` to reader `reader` and rings its doorbell. */
  post(reader: number, message: ToReader, transfer: ArrayBuffer[] = []): void {
    const r = this.readers[reader];
    r.port.postMessage(message, transfer);
    Atomics.add(r.bell, 0, 1);
    Atomics.notify(r.bell, 0);
  }

  /** @internal */
  closeFeed(id: number): void {
    if (!this.sinks.delete(id) || this.destroyed) return;
    for (let r = 0; r < this.threads; r++) this.post(r, { type: 'close', feed: id });
  }

  private receive(m: FromReader): void {
    if (m.type === 'chunks') this.chunkReplies++;
    this.sinks.get(m.feed)?.(m);
  }

  /** A reader died: every feed fails at its pending tasks, and no feed opens any more. */
  private fail(err: ReaderError): void {
    if (this.failure || this.destroyed) return;
    this.failure = err;
    for (const [feed, sink] of this.sinks) sink({ type: 'error', feed, task: -1, message: err.message });
  }
}

/** A reader pool of `threads` workers, to share between all groups' batch streams. */
export function createReaderPool(threads = 1): ReaderPool {
  return new ReaderPool(threads);
}
