/**
 * WorkloadData over arrays in memory: for a user's workload whose examples fit in memory (the own-model example).
 * Group g's share of the training rows is every row r with r % groups === g (all rows with sameData); each epoch
 * serves them in a permutation fixed by (seed, group, epoch), in batches of B, a last piece shorter than B dropped.
 *
 *   open: async () => arrayData({ classes: 3, train: { rows, fields: { x, label } }, validation })
 */
import { Random, deriveSeed } from '../util/random.js';
import { rowCopy } from './batch.js';
import type { Batch, DataCursor, Field, StreamSpec, TrainBatch, TrainStream, WorkloadData } from './workload.js';

export interface ArrayDataOptions {
  classes: number;
  train: Batch;
  validation: Batch;
  /** Positions a row predicts (default 1). */
  positionsPerRow?: number;
}

class ArrayStream implements TrainStream {
  private readonly rows: Uint32Array;
  private readonly perEpoch: number;
  private order: Uint32Array | undefined;
  private cursor: DataCursor;

  constructor(private readonly train: Batch, private readonly spec: StreamSpec) {
    const mine: number[] = [];
    for (let r = spec.sameData ? 0 : spec.group; r < train.rows; r += spec.sameData ? 1 : spec.groups) mine.push(r);
    this.rows = Uint32Array.from(mine);
    this.perEpoch = Math.floor(this.rows.length / spec.batch);
    if (this.perEpoch === 0) {
      throw new RangeError(`group ${spec.group} has ${this.rows.length} training rows, fewer than one batch of ${spec.batch}`);
    }
    this.cursor = spec.cursor ?? { epoch: 0, batch: 0 };
  }

  async next(): Promise<TrainBatch> {
    const { epoch, batch } = this.cursor;
    if (batch === 0 || !this.order) this.order = this.permutation(epoch);
    const B = this.spec.batch;
    const fields: Record<string, Field> = {};
    for (const [name, f] of Object.entries(this.train.fields)) {
      const w = f.length / this.train.rows;
      const out = new (f.constructor as new (n: number) => Field)(B * w);
      for (let i = 0; i < B; i++) {
        const r = this.order[batch * B + i];
        out.set(f.subarray(r * w, (r + 1) * w), i * w);
      }
      fields[name] = out;
    }
    this.cursor = batch + 1 === this.perEpoch ? { epoch: epoch + 1, batch: 0 } : { epoch, batch: batch + 1 };
    return { rows: B, fields, cursor: this.cursor, continues: false };
  }

  async close(): Promise<void> {}

  private permutation(epoch: number): Uint32Array {
    return new Random(deriveSeed(this.spec.seed, this.spec.group, epoch)).shuffle(this.rows.slice());
  }
}

export function arrayData(o: ArrayDataOptions): WorkloadData {
  return {
    classes: o.classes,
    positionsPerRow: o.positionsPerRow ?? 1,
    validation: rowCopy(o.validation),
    openStream: (spec) => new ArrayStream(o.train, spec),
    close: async () => undefined,
  };
}
