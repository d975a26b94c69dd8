/**
 * The pool of reader actors (actors/reader.ts): one piscina pool per run, shared by every group's batch stream.
 *
 * Each of the W workers runs one long `serve` task with a MessagePort of its own. A stream opens a feed on every
 * reader (`openFeed`), then grants its tasks one at a time as its prefetch budget allows, each grant going to the
 * reader that owns the task (j mod W) with a spent buffer to refill; the chunks come back to the feed's sink as soon
 * as they are read. Measured on 2 cores, this keeps both readers busy where a request and a reply per task through
 * `piscina.run` left them waiting on the main thread a quarter of the time (bench/reader.ts).
 *
 * A reader that fails (its worker exits, or its serve loop throws) fails every feed open at the time, each at its
 * pending tasks, with a ReaderError naming the reader ("reader 1: exited (code 1)"): the feeds' tasks it owed are
 * lost. The pool itself recovers: piscina replaces a dead worker, and the next feed opened starts a new serve task
 * for the reader, so a group started again (from its checkpoint) reads on.
 *
 * Workers load compiled JavaScript (dist/actors/reader.js): run `npm run build` first.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ChunksReply, FeedErrorReply, FeedSpec, FromReader, ServeRequest, ServeResult, ToReader } from '../../../protocol.js';
import type { WorkerFaultKind } from '../../../train/faults.js';
import { ActorError } from '../../../util/actor.js';
import { actorFile } from '../../../util/paths.js';

/**
 * A batch stream's or the pool's failure. One that a reader worker caused (it threw, or died) has the reader's
 * ActorError as its `cause` and the same message, so `isActorFault` (src/util/actor.ts) is true for it; the others
 * (a closed stream, a destroyed pool, a corpus replaced under a run) have none.
 */
export class ReaderError extends Error {
  override name = 'ReaderError';

  /** The failure of reader `reader`, as its worker reported it (`message`) or as it ended. */
  static ofReader(reader: number | string, message: string, reason: 'threw' | 'exited' = 'threw'): ReaderError {
    const cause = new ActorError(typeof reader === 'number' ? `reader ${reader}` : reader, message, { reason });
    return new ReaderError(cause.message, { cause });
  }
}


/**
 * What a feed's sink receives: the readers' replies, or the pool's failure (task -1: every pending task). An error's
 * `error` is the ReaderError to fail with: its message names the reader, and its cause says it was the reader's fault.
 */
export type FeedEvent = ChunksReply | (FeedErrorReply & { error: ReaderError });

/** One reader as the pool sees it: its port, doorbell and serve task (undefined once it has failed). */
interface Reader {
  port: MessagePort;
  bell: Int32Array;
  served: Promise<ServeResult | undefined>;
  failed?: ReaderError;
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

  /**
   * Fault injection: the reader of task `task` (already read) throws for this feed, or its worker exits; the feed's
   * sink gets the resulting error (for `task`, or the pool's failure, task -1).
   */
  fault(task: number, kind: WorkerFaultKind, atBatch: number): void {
    if (this.closed) return;
    this.pool.post(task % this.pool.threads, { type: 'fault', feed: this.id, task, kind, atBatch });
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
  private destroyed = false;
  /** Readers started again after a failure. */
  private restartedReaders = 0;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new ReaderError(`reader threads must be >= 1, got ${threads}`);
    this.piscina = new Piscina({ filename: actorFile('reader'), minThreads: threads, maxThreads: threads });
    this.readers = Array.from({ length: threads }, (_, reader) => this.startReader(reader));
  }

  /** Starts reader `reader`'s serve task (on a piscina worker) with a port and doorbell of its own. */
  private startReader(reader: number): Reader {
    const { port1, port2 } = new MessageChannel();
    const doorbell = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    const request: ServeRequest = { type: 'serve', port: port2, doorbell, reader, readers: this.threads };
    const r: Reader = { port: port1, bell: new Int32Array(doorbell), served: Promise.resolve(undefined) };
    r.served = this.piscina.run(request, { transferList: [port2] }).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      // piscina says "worker exited with code: 1" of a worker that ended; anything else was thrown by the serve loop.
      const exited = /exited with code:? *(-?\d+)/.exec(message);
      this.fail(r, exited ? ReaderError.ofReader(reader, `exited (code ${exited[1]})`, 'exited') : ReaderError.ofReader(reader, message));
      return undefined;
    });
    port1.on('message', (m: FromReader) => this.receive(m));
    return r;
  }

  /**
   * Opens a feed of `spec` on every reader; `sink` gets each task's chunks (or a failure) as it is read. A reader
   * that failed before is started again first. Throws a ReaderError once the pool is destroyed.
   */
  openFeed(spec: FeedSpec, sink: (event: FeedEvent) => void): ReaderFeed {
    if (this.destroyed) throw new ReaderError('the reader pool is destroyed');
    for (const [i, r] of this.readers.entries()) {
      if (!r.failed) continue;
      r.port.close();
      this.readers[i] = this.startReader(i);
      this.restartedReaders++;
    }
    const id = this.nextFeed++;
    this.sinks.set(id, sink);
    for (let r = 0; r < this.threads; r++) this.post(r, { type: 'open', feed: id, spec });
    return new ReaderFeed(this, id);
  }

  /** Resolves once reader `reader`'s current serve task has ended (it fails only by dying or throwing), with its failure. */
  async readerEnded(reader: number): Promise<ReaderError | undefined> {
    const r = this.readers[reader];
    await r.served;
    return r.failed;
  }

  /** Tasks the readers have read and sent back. */
  get completed(): number {
    return this.chunkReplies;
  }

  /** Readers started again after a failure (for tests). */
  get restarts(): number {
    return this.restartedReaders;
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
    if (m.type === 'chunks') {
      this.chunkReplies++;
      this.sinks.get(m.feed)?.(m);
    } else {
      // A reader's error reply: its message names the reader already ("reader 1: ..."), as the ActorError's does.
      const actor = `reader ${m.reader}`;
      const text = m.message.startsWith(`${actor}: `) ? m.message.slice(actor.length + 2) : m.message;
      const error = new ReaderError(m.message, { cause: new ActorError(actor, text, { fault: m.fault !== false }) });
      this.sinks.get(m.feed)?.({ ...m, error });
    }
  }

  /**
   * Reader `r` failed (its worker died, or its serve loop threw): every open feed fails at its pending tasks (the
   * reader's share of them is lost). The next feed opened starts the reader again.
   */
  private fail(r: Reader, err: ReaderError): void {
    if (r.failed || this.destroyed) return;
    r.failed = err;
    for (const [feed, sink] of [...this.sinks]) sink({ type: 'error', feed, task: -1, reader: -1, message: err.message, error: err });
  }
}

/** A reader pool of `threads` workers, to share between all groups' batch streams. */
export function createReaderPool(threads = 1): ReaderPool {
  return new ReaderPool(threads);
}
