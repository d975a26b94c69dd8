/**
 * The batch stream of one group: its data order (order.ts) read ahead by the shared reader pool.
 *
 * Bounded prefetch: batches in flight or buffered never exceed `prefetch`, so a consumer that stops pulling stops
 * the reading and memory stays flat. Reads go out as tasks of `batchesPerTask` batches (bigger tasks amortise the
 * messages and the shard reads). Every batch owns its buffer, moved from the worker: the consumer may move it on to
 * a replica. Or it hands a spent batch back with `recycle(batch)`, and the buffer is moved into a later task instead
 * of a fresh allocation.
 *
 *   const pool = createReaderPool(config.reader.threads);
 *   const stream = openBatchStream({ corpusPath, group, groups, sameData, batch, window, seed, cursor, pool });
 *   const b = await stream.next();      // b.cursor is the checkpoint's data cursor once b has been trained on
 *   ...train on b...; stream.recycle(b);
 *   await stream.close(); await pool.destroy();
 */
import { Observable, defer, repeat } from 'rxjs';
import { readCorpusMeta } from '../corpus/store.js';
import type { Batch } from '../model/workload.js';
import { pullEach } from '../../streams/pull-each.js';
import { type BatchId, type BatchPlanner, type DataCursor, DataOrder, type WindowPlan } from './order.js';
import { partitionShards, shardLayout } from './partition.js';
import { type ReaderPool, ReaderError, createReaderPool } from './reader-pool.js';
import type { WindowsReply } from '../../actors/reader-messages.js';

// The data side's front door: a run needs nothing else from src/data.
export type { DataCursor } from './order.js';
export { ReaderError, ReaderPool, createReaderPool } from './reader-pool.js';
export { readValidationWindows } from './validation.js';

/** A batch of one group's training stream. */
export interface TrainBatch extends Batch {
  group: number;
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  /** The data cursor after this batch: where a run resumes once this batch has been trained on. */
  cursor: DataCursor;
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
  /** Batches in flight or buffered at most (default 4). */
  prefetch?: number;
  /** Batches read by one task (default: half of prefetch, so that two tasks overlap); at most prefetch. */
  batchesPerTask?: number;
  /** Shards per shuffle block (order.ts; default SHUFFLE_SHARDS). */
  shuffleShards?: number;
  /** A shared reader pool; the stream does not destroy it. Without one the stream owns a pool of `threads`. */
  pool?: ReaderPool;
}

interface Task {
  ids: BatchId[];
  /** Settles (never rejects) when the reply has been cut into `batches`, or has failed with `error`. */
  done: Promise<void>;
  batches?: TrainBatch[];
  error?: Error;
  delivered: number;
}

export class BatchStream {
  readonly group: number;
  readonly order: DataOrder;
  readonly prefetch: number;
  readonly batchesPerTask: number;
  private readonly corpusPath: string;
  private readonly pool: ReaderPool;
  private readonly ownsPool: boolean;
  private readonly planner: BatchPlanner;
  private readonly tasks: Task[] = [];
  /** Batches issued to the pool and not yet handed to the consumer. */
  private outstanding = 0;
  private issuedTasks = 0;
  private failure: Error | undefined;
  private closed = false;
  /** The chain of pulls that had to wait, and how many of them are still waiting. */
  private pulling: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  // Spent buffers, moved into later tasks: batch buffers (a set: a buffer recycled twice must not be filled twice)
  // and window lists.
  private readonly freeData = new Set<ArrayBuffer>();
  private readonly freeWindows: Uint32Array[] = [];

  constructor(o: BatchStreamOptions) {
    if (!Number.isInteger(o.group) || o.group < 0 || o.group >= o.groups) {
      throw new RangeError(`group ${o.group} is not one of the ${o.groups} groups`);
    }
    this.group = o.group;
    this.corpusPath = o.corpusPath;
    const layout = shardLayout(readCorpusMeta(o.corpusPath), 'train');
    const shards = partitionShards(layout, { groups: o.groups, sameData: o.sameData })[o.group];
    this.order = new DataOrder({
      layout, shards, window: o.window, batch: o.batch, seed: o.seed, group: o.group, shuffleShards: o.shuffleShards,
    });
    this.planner = this.order.planner(o.cursor);
    this.prefetch = o.prefetch ?? 4;
    this.batchesPerTask = o.batchesPerTask ?? Math.max(1, Math.floor(this.prefetch / 2));
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) {
      throw new RangeError(`prefetch must be >= 1, got ${this.prefetch}`);
    }
    const k = this.batchesPerTask;
    if (!Number.isInteger(k) || k < 1 || k > this.prefetch) {
      throw new RangeError(`batchesPerTask must be between 1 and prefetch (${this.prefetch}), got ${k}`);
    }
    this.ownsPool = !o.pool;
    this.pool = o.pool ?? createReaderPool(o.threads ?? 1);
    this.issue();
  }

  /** The next batch, in order. Concurrent calls are served one after the other. */
  next(): Promise<TrainBatch> {
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
  get batches$(): Observable<TrainBatch> {
    return defer(() => this.next()).pipe(repeat());
  }

  /** One batch per notification of `demand$` (see streams/pull-each.ts). */
  pull(demand$: Observable<unknown>): Observable<TrainBatch> {
    return demand$.pipe(pullEach(() => this.next()));
  }

  /**
   * Hands a spent batch back so that a later task refills its buffer; do not touch `batch.data` afterwards. A batch
   * whose buffer has moved elsewhere (detached) is ignored.
   */
  recycle(batch: TrainBatch): void {
    const buffer = batch.data.buffer;
    if (!(buffer instanceof ArrayBuffer) || batch.data.byteLength === 0) return;
    // At most a prefetch's worth of buffers wait here; the rest go to the garbage collector.
    if (!this.closed && this.freeData.size < this.prefetch) this.freeData.add(buffer);
  }

  /** Counters for tests and benchmarks: read tasks sent so far, and batches in flight or buffered now. */
  get stats(): { tasks: number; outstanding: number } {
    return { tasks: this.issuedTasks, outstanding: this.outstanding };
  }

  /** Resolves when no read of this stream is in flight. */
  async whenIdle(): Promise<void> {
    await Promise.all(this.tasks.map((t) => t.done));
  }

  /** Stops reading; pending and later pulls reject. Destroys the pool only if the stream made it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.whenIdle();
    this.tasks.length = 0;
    this.freeData.clear();
    this.freeWindows.length = 0;
    if (this.ownsPool) await this.pool.destroy();
  }

  private async take(): Promise<TrainBatch> {
    this.issue();
    const head = this.tasks[0];
    if (head && !this.closed && !this.failure) await head.done;
    const batch = this.takeReady();
    if (batch) return batch;
    if (head?.error && !this.failure) this.failure = head.error;
    if (this.failure) throw this.failure;
    throw new ReaderError(`the batch stream of group ${this.group} is closed`);
  }

  /** The head task's next batch if it is unpacked (and the stream is healthy), else undefined. */
  private takeReady(): TrainBatch | undefined {
    const task = this.tasks[0];
    if (this.closed || this.failure || !task?.batches) return undefined;
    const batch = task.batches[task.delivered++];
    if (task.delivered === task.batches.length) this.tasks.shift();
    this.outstanding--;
    this.issue();
    return batch;
  }

  /** Sends read tasks while the prefetch budget allows. */
  private issue(): void {
    const k = this.batchesPerTask;
    const rowsPerTask = k * this.order.batch;
    while (!this.closed && !this.failure && this.outstanding + k <= this.prefetch) {
      const windows = this.freeWindows.pop() ?? new Uint32Array(2 * rowsPerTask);
      const plan: WindowPlan = { shards: [], windows, rows: 0 };
      const ids = this.planner.plan(k, plan);
      const out: ArrayBuffer[] = [];
      for (const buffer of this.freeData) {
        if (out.length === k) break;
        out.push(buffer);
        this.freeData.delete(buffer);
      }
      const reply = this.pool.read({
        type: 'read',
        corpusPath: this.corpusPath,
        split: 'train',
        window: this.order.window,
        format: 'int32',
        shards: Uint32Array.from(plan.shards),
        windows: plan.windows,
        rows: plan.rows,
        rowsPerOutput: this.order.batch,
        out,
      });
      const task: Task = { ids, done: Promise.resolve(), delivered: 0 };
      // Cut the reply into batches as soon as it arrives; a failure waits for the pull that reaches this task.
      task.done = reply.then(
        (r) => {
          if (!this.closed) task.batches = this.unpack(task, r);
        },
        (err: unknown) => {
          task.error = err instanceof Error ? err : new Error(String(err));
        },
      );
      this.tasks.push(task);
      this.outstanding += k;
      this.issuedTasks++;
    }
  }

  /** A task's batches, one per moved buffer. */
  private unpack(task: Task, reply: WindowsReply): TrainBatch[] {
    if (reply.windows.length === 2 * task.ids.length * this.order.batch) this.freeWindows.push(reply.windows);
    const rows = this.order.batch;
    const cols = reply.cols;
    const perEpoch = this.order.batchesPerEpoch;
    return task.ids.map(({ epoch, index }, i) => ({
      data: new Int32Array(reply.data[i], 0, rows * cols),
      rows,
      cols,
      group: this.group,
      epoch,
      index,
      cursor: index + 1 === perEpoch ? { epoch: epoch + 1, batch: 0 } : { epoch, batch: index + 1 },
    }));
  }
}

/** Opens the batch stream of one group (see BatchStreamOptions); it starts reading ahead at once. */
export function openBatchStream(opts: BatchStreamOptions): BatchStream {
  return new BatchStream(opts);
}
