/**
 * The batch stream of one group: its data order (order.ts) read ahead by the shared reader pool.
 *
 * A read task is one shuffle block: a reader plans it from the stream's data order (its feed), reads each of its
 * shards once and moves back its chunks (B spans of M windows each, in the corpus dtype) in one buffer. The stream
 * grants tasks in order and cuts batch k of a chunk on this thread, one widening copy of T+1 tokens a row into the
 * batch's own Int32Array (about 1.5 us for 32 rows of 33 tokens), and hands the task's buffer to a later grant once
 * all its batches are cut.
 *
 * Bounded prefetch, counted in chunks: a block is granted while the chunks in flight or buffered stay within `prefetch`
 * (or when none are, if one block holds more), so a consumer that stops pulling stops the reading and memory stays
 * flat at max(prefetch, chunks of a block) chunks. Every batch owns its buffer: the consumer may move it on to a
 * replica, or hand a spent batch back with `recycle(batch)` so that a later batch reuses its buffer.
 *
 *   const pool = createReaderPool(config.reader.threads);
 *   const stream = openBatchStream({ corpusPath, group, groups, sameData, batch, window, seed, cursor, pool });
 *   const b = await stream.next();      // b.cursor is the checkpoint's data cursor once b has been trained on
 *   ...train on b...; stream.recycle(b);
 *   await stream.close(); await pool.destroy();
 *
 * A failure (a reader that threw or died, a damaged corpus) fails the pull that reaches the batches it lost, and
 * every pull after it, with a ReaderError naming the reader; the batches read before it are still delivered.
 */
import { Observable, defer, repeat } from 'rxjs';
import { type TokenArray, tokenArrayType } from '../corpus/store.js';
import type { TokenBatch } from '../tokens.js';
import { pullEach } from '../../../../streams/pull-each.js';
import { type DataCursor, type DataOrder, type GroupOrderSpec, type SpanPlanner, type TaskPosition, groupOrder } from './order.js';
import { type FeedEvent, type ReaderFeed, type ReaderPool, ReaderError, createReaderPool } from './reader-pool.js';
import { widenBatch } from './windows.js';
import type { ChunksReply } from '../../../protocol.js';
import type { WorkerFaultKind } from '../../../train/faults.js';

// The data side's front door: a run needs nothing else from src/data.
export type { DataCursor } from './order.js';
export { ReaderError, ReaderPool, createReaderPool } from './reader-pool.js';
export { readValidationWindows } from './validation.js';

/** Chunks read ahead by default: two blocks at the default T = 32, B = 32 and 64Ki-token shards (29-31 chunks each). */
export const DEFAULT_PREFETCH = 64;

/** Recycled batch buffers kept at most: a consumer holds a few batches at a time. */
const RECYCLED_BATCHES = 8;

/** A batch of one group's training stream. */
export interface WindowBatch extends TokenBatch {
  group: number;
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  /** The data cursor after this batch: where a run resumes once this batch has been trained on. */
  cursor: DataCursor;
  /**
   * k: the rows are window k of their spans (0 <= k < M). When k > 0, row r continues row r of the stream's batch
   * before (its last token is this row's first), which is what carrying an LSTM state across batches needs.
   */
  spanWindow: number;
}

export interface BatchStreamOptions {
  corpusPath: string;
  group: number;
  groups: number;
  /** Every group reads all shards (distill.sameData) instead of its own. */
  sameData: boolean;
  /** B: windows per batch. */
  batch: number;
  /** T: tokens per window (each row holds T+1). */
  window: number;
  seed: number;
  /** Where to start (default: the very beginning). */
  cursor?: DataCursor;
  /** Reader threads of the stream's own pool when no `pool` is given (default 1). */
  threads?: number;
  /**
   * Chunks (M batches each) in flight or buffered at most (default DEFAULT_PREFETCH). Reading goes by whole blocks;
   * a block with more chunks than this is read alone, once everything before it has been taken.
   */
  prefetch?: number;
  /** Shards per shuffle block (order.ts; default SHUFFLE_SHARDS). */
  shuffleShards?: number;
  /** M: windows per span, hence batches per chunk (order.ts; 0 or absent: automatic). */
  spanWindows?: number;
  /** A shared reader pool; the stream does not destroy it. Without one the stream owns a pool of `threads`. */
  pool?: ReaderPool;
  /**
   * Fault injection (tests, the fault-injection suite): when the consumer asks for batch `atBatch` (0 = the stream's
   * first, whatever its cursor), the reader that read it throws for this stream or its worker exits; that pull and
   * every later one reject with the reader's error. The batches before it are delivered as usual.
   */
  fault?: { atBatch: number; kind: WorkerFaultKind };
}

interface Task {
  /** The task's index in the feed (0 at the stream's opening cursor). */
  index: number;
  plan: TaskPosition;
  /** Settles (never rejects) when the chunks have been unpacked, the read has failed (`error`) or the stream closed. */
  done: Promise<void>;
  settle: () => void;
  buffer?: ArrayBuffer;
  /** Views of `buffer` (ChunksReply): its tokens, and where each row starts in them. */
  tokens?: TokenArray;
  rowStarts?: Uint32Array;
  error?: Error;
  /** The chunk being cut (index into `chunks`) and its next batch. */
  chunk: number;
  k: number;
}

export class BatchStream {
  readonly group: number;
  readonly order: DataOrder;
  readonly prefetch: number;
  private readonly pool: ReaderPool;
  private readonly ownsPool: boolean;
  private readonly feed: ReaderFeed;
  /** Steps over the tasks as they are granted (the readers plan their spans). */
  private readonly planner: SpanPlanner;
  /** Granted tasks not yet cut to the end, in order. */
  private readonly tasks: Task[] = [];
  /** Chunks issued to the pool whose batches have not all been handed to the consumer. */
  private outstanding = 0;
  private issuedTasks = 0;
  private reusedBuffers = 0;
  private failure: Error | undefined;
  /** The pool's readers died: tasks granted from now on fail with this at once. */
  private readersLost: ReaderError | undefined;
  private closed = false;
  /** Batches handed to the consumer so far (what an injected fault's `atBatch` counts). */
  private served = 0;
  private readonly fault: BatchStreamOptions['fault'];
  /** While an injected fault is on its way: called with the error the reader's failure comes back as. */
  private faulted: ((err: Error) => void) | undefined;
  /** The chain of pulls that had to wait, and how many of them are still waiting. */
  private pulling: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  // Spent buffers, reused instead of fresh allocations: task buffers go back to the readers with later grants; batch
  // buffers (a set: a buffer recycled twice must not serve two batches) go to later batches.
  private readonly freeTasks: ArrayBuffer[] = [];
  private readonly freeBatches = new Set<ArrayBuffer>();

  constructor(o: BatchStreamOptions) {
    if (!Number.isInteger(o.group) || o.group < 0 || o.group >= o.groups) {
      throw new RangeError(`group ${o.group} is not one of the ${o.groups} groups`);
    }
    this.group = o.group;
    const spec: GroupOrderSpec = {
      corpusPath: o.corpusPath, split: 'train', group: o.group, groups: o.groups, sameData: o.sameData,
      window: o.window, batch: o.batch, seed: o.seed, shuffleShards: o.shuffleShards, spanWindows: o.spanWindows,
    };
    this.order = groupOrder(spec);
    this.planner = this.order.planner(o.cursor);
    this.prefetch = o.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) {
      throw new RangeError(`prefetch must be >= 1, got ${this.prefetch}`);
    }
    if (o.fault && (!Number.isInteger(o.fault.atBatch) || o.fault.atBatch < 0 || !['throw', 'exit'].includes(o.fault.kind))) {
      throw new RangeError(`fault must be { atBatch: an integer >= 0, kind: 'throw' or 'exit' }, got ${JSON.stringify(o.fault)}`);
    }
    this.fault = o.fault;
    this.ownsPool = !o.pool;
    this.pool = o.pool ?? createReaderPool(o.threads ?? 1);
    this.feed = this.pool.openFeed({ ...spec, cursor: this.planner.cursor }, (event) => this.receive(event));
    this.issue();
  }

  /** The next batch, in order. Concurrent calls are served one after the other. */
  next(): Promise<WindowBatch> {
    // Fast path, the usual one when reading keeps ahead: a batch is ready and no earlier pull is waiting.
    const ready = this.waiting === 0 ? this.takeReady() : undefined;
    if (ready) return Promise.resolve(ready);
    this.waiting++;
    const p = this.pulling.then(() => this.take()).finally(() => this.waiting--);
    this.pulling = p.catch(() => undefined);
    return p;
  }

  /**
   * The batches, pulled one after the other as the subscriber takes them: for a subscriber that handles each batch
   * synchronously. An asynchronous consumer pulls with `pull(demand$)` (or `next()`), so that nothing queues up.
   * Unsubscribing while a pull is pending drops that batch (each batch carries its own cursor, so resuming from
   * the last batch trained on stays exact).
   */
  get batches$(): Observable<WindowBatch> {
    return defer(() => this.next()).pipe(repeat());
  }

  /** One batch per notification of `demand$` (see streams/pull-each.ts). */
  pull(demand$: Observable<unknown>): Observable<WindowBatch> {
    return demand$.pipe(pullEach(() => this.next()));
  }

  /**
   * Hands a spent batch back so that a later batch reuses its buffer; do not touch `batch.data` afterwards. A batch
   * whose buffer has moved elsewhere (detached) is ignored.
   */
  recycle(batch: Pick<WindowBatch, 'data'>): void {
    const buffer = batch.data.buffer;
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength !== this.batchBytes) return;
    if (!this.closed && this.freeBatches.size < RECYCLED_BATCHES) this.freeBatches.add(buffer);
  }

  /**
   * Counters for tests and benchmarks: read tasks granted so far, chunks in flight or buffered now, and tasks granted
   * with a spent buffer to refill.
   */
  get stats(): { tasks: number; outstanding: number; reusedBuffers: number } {
    return { tasks: this.issuedTasks, outstanding: this.outstanding, reusedBuffers: this.reusedBuffers };
  }

  /** Resolves when every task granted so far has arrived (or failed). */
  async whenIdle(): Promise<void> {
    await Promise.all(this.tasks.map((t) => t.done));
  }

  /** Stops reading; pending and later pulls reject. Destroys the pool only if the stream made it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The readers drop the feed: tasks still on their way never come, so settle them here.
    this.feed.close();
    this.faulted?.(new ReaderError(`the batch stream of group ${this.group} is closed`));
    for (const task of this.tasks) task.settle();
    this.tasks.length = 0;
    this.freeTasks.length = 0;
    this.freeBatches.clear();
    if (this.ownsPool) await this.pool.destroy();
  }

  private get batchBytes(): number {
    return this.order.batch * (this.order.window + 1) * Int32Array.BYTES_PER_ELEMENT;
  }

  private async take(): Promise<WindowBatch> {
    this.issue();
    const head = this.tasks[0];
    if (head && !this.closed && !this.failure) await head.done;
    if (head?.tokens && this.faultDue && !this.closed && !this.failure) this.failure = await this.injectFault(head);
    const batch = this.takeReady();
    if (batch) return batch;
    if (head?.error && !this.failure) this.failure = head.error;
    if (this.failure) throw this.failure;
    throw new ReaderError(`the batch stream of group ${this.group} is closed`);
  }

  /** Whether the next batch is the one an injected fault is for. */
  private get faultDue(): boolean {
    return this.fault !== undefined && this.served === this.fault.atBatch;
  }

  /**
   * Makes the reader of `task` (whose chunks hold the next batch) fail as the injected fault says, and resolves with
   * the error its failure comes back as: its error reply for the task, or the pool's failure when its worker exits.
   */
  private injectFault(task: Task): Promise<Error> {
    const { kind, atBatch } = this.fault!;
    // A reader already lost cannot be made to fail again (and would never answer): its failure is the stream's.
    if (this.readersLost) return Promise.resolve(this.readersLost);
    return new Promise<Error>((resolve) => {
      this.faulted = (err) => {
        this.faulted = undefined;
        resolve(err);
      };
      this.feed.fault(task.index, kind, atBatch);
    });
  }

  /** The head task's next batch if its chunks have arrived (and the stream is healthy), else undefined. */
  private takeReady(): WindowBatch | undefined {
    const task = this.tasks[0];
    if (this.closed || this.failure || this.faultDue || !task?.tokens || !task.rowStarts || !task.buffer) return undefined;
    const o = this.order;
    const m = o.spanWindows;
    const recycled = this.freeBatches.values().next();
    if (!recycled.done) this.freeBatches.delete(recycled.value);
    // A buffer moved away after its recycling (detached) cannot serve: allocate instead.
    const reuse = !recycled.done && recycled.value.byteLength === this.batchBytes;
    const data = reuse ? new Int32Array(recycled.value) : new Int32Array(o.batch * (o.window + 1));
    const k = task.k;
    widenBatch(task.tokens, task.rowStarts, task.chunk * o.batch, o.batch, o.window, k, data);
    const { epoch } = task.plan;
    const index = (task.plan.firstChunk + task.chunk) * m + k;
    const cursor = index + 1 === o.batchesPerEpoch ? { epoch: epoch + 1, batch: 0 } : { epoch, batch: index + 1 };
    if (++task.k === m) {
      task.k = 0;
      task.chunk++;
      this.outstanding--;
      if (task.chunk === task.plan.chunks) {
        // All the task's batches are cut: its buffer can take a later block.
        this.tasks.shift();
        this.freeTasks.push(task.buffer);
      }
      this.issue();
    }
    this.served++;
    return { data, rows: o.batch, cols: o.window + 1, group: this.group, epoch, index, cursor, spanWindow: k };
  }

  /** Grants block tasks while the prefetch budget allows. */
  private issue(): void {
    while (
      !this.closed &&
      !this.failure &&
      (this.outstanding === 0 || this.outstanding + this.planner.nextChunks <= this.prefetch)
    ) {
      const plan = this.planner.stepOver();
      const out = this.freeTasks.pop();
      if (out) this.reusedBuffers++;
      let settle = (): void => undefined;
      const done = new Promise<void>((resolve) => {
        settle = resolve;
      });
      const task: Task = { index: this.issuedTasks, plan, done, settle, chunk: 0, k: plan.skip };
      this.tasks.push(task);
      this.outstanding += plan.chunks;
      this.issuedTasks++;
      if (this.readersLost) {
        task.error = this.readersLost;
        settle();
      } else {
        this.feed.grant(task.index, out);
      }
    }
  }

  /** A reader's reply: unpack it into its task; a failure waits for the pull that reaches the task. */
  private receive(event: FeedEvent): void {
    if (this.closed) return;
    if (event.type === 'error') this.faulted?.(event.error);
    if (event.type === 'error' && event.task < 0) {
      // A reader failed: every task still to come fails with it (the reader's share of them is lost).
      this.readersLost = event.error;
      for (const task of this.tasks) {
        if (!task.tokens) {
          task.error ??= this.readersLost;
          task.settle();
        }
      }
      return;
    }
    const task = this.tasks.length > 0 ? this.tasks[event.task - this.tasks[0].index] : undefined;
    if (!task || task.index !== event.task) return;
    if (event.type === 'error') task.error ??= event.error;
    else this.unpack(task, event);
    task.settle();
  }

  private unpack(task: Task, reply: ChunksReply): void {
    const { plan } = task;
    if (
      reply.chunks !== plan.chunks || reply.rows !== this.order.batch || reply.cols !== this.order.spanTokens ||
      reply.epoch !== plan.epoch || reply.firstChunk !== plan.firstChunk
    ) {
      const o = this.order;
      task.error = new ReaderError(`reader read ${reply.chunks} chunks of ${reply.rows} x ${reply.cols} tokens from ` +
        `chunk ${reply.firstChunk} of epoch ${reply.epoch}, not ${plan.chunks} of ${o.batch} x ${o.spanTokens} from ` +
        `chunk ${plan.firstChunk} of epoch ${plan.epoch} (was the corpus replaced while the run was reading it?)`);
      return;
    }
    task.buffer = reply.data;
    task.rowStarts = new Uint32Array(reply.data, 0, reply.chunks * reply.rows);
    task.tokens = new (tokenArrayType(reply.dtype))(reply.data, reply.tokenOffset, reply.tokens);
  }
}

/** Opens the batch stream of one group (see BatchStreamOptions); it starts reading ahead at once. */
export function openBatchStream(opts: BatchStreamOptions): BatchStream {
  return new BatchStream(opts);
}
