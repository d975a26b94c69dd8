/**
 * WorkloadData over arrays in memory: for a user's workload whose examples fit in memory (the own-model example).
 * Group g's share of the training rows is every row r with r % groups === g (all rows with sameData); each epoch
 * serves them in a permutation fixed by (seed, group, epoch), in batches of B, a last piece shorter than B dropped.
 *
 *   open: async () => arrayData({ classes: 3, train: { rows, fields: { x, label } }, validation })
 *
 * `arrayPredictor` answers predictions for such a workload (`predictor: arrayPredictor` in the module's export):
 * input `{ fields }` in the batch's own field names, answer the class probabilities of every position.
 */
import type { Config } from '../config/schema.js';
import { Random, deriveSeed } from '../util/random.js';
import { rowCopy } from './batch.js';
import { classAnswer, describeValue, isNumbers } from './predict-input.js';
import type { Batch, DataCursor, Field, Predictor, StreamSpec, TrainBatch, TrainStream, WorkloadData } from './workload.js';

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

export interface ArrayPredictorOptions {
  /** Fields the input may leave out, filled with zeros: the labels, which a forward pass never reads (default: ["label"]). */
  optional?: readonly string[];
}

type FieldType = Int32ArrayConstructor | Float32ArrayConstructor | Uint8ArrayConstructor;

/** Checks one value for a field of type `type`; undefined when it fits, else what is wrong. */
function badValue(v: unknown, type: FieldType): string | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return `${typeof v === 'number' ? v : describeValue(v)} is not a finite number`;
  if (type === Float32Array) return undefined;
  const [lo, hi] = type === Uint8Array ? [0, 255] : [-(2 ** 31), 2 ** 31 - 1];
  return Number.isInteger(v) && v >= lo && v <= hi ? undefined : `${v} is not an integer in ${lo}..${hi} (the field is ${type.name.replace('Array', '').toLowerCase()})`;
}

/**
 * The predictor of an arrays workload, from its opened data: every field of the validation batch, with its width
 * and type, is a field of the input, `{ fields: { name: values } }`. Values are numbers row-major (`rows * width`,
 * an array or a typed array), or an array of rows of `width` numbers; every field gives the same number of rows.
 * Fields in `optional` (the labels) may be left out. Answer: `{ probs: number[][], classes: number[] }`, the class
 * probabilities of each position (rows x positionsPerRow of them) and the most likely class of each.
 *
 *   export default { ...workload, predictor: arrayPredictor };
 */
export function arrayPredictor(_config: Config, data: WorkloadData, o: ArrayPredictorOptions = {}): Predictor {
  const optional = new Set(o.optional ?? ['label']);
  const { validation } = data;
  if (validation.rows === 0) throw new Error('arrayPredictor needs the validation batch to hold a row: it learns the fields from it');
  const layout = Object.entries(validation.fields).map(([name, f]) => ({
    name,
    width: f.length / validation.rows,
    type: f.constructor as FieldType,
  }));
  const names = layout.map((f) => f.name).join(', ');
  return {
    encode(input) {
      const fields = (input as { fields?: unknown } | null)?.fields;
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
        throw new Error(`pass { fields: { ${names} } } (the batch's fields, by name), not ${describeValue(input)}`);
      }
      const given = fields as Record<string, unknown>;
      const unknown = Object.keys(given).filter((k) => !layout.some((f) => f.name === k));
      if (unknown.length) throw new Error(`unknown field ${unknown.map((k) => `"${k}"`).join(', ')}: the fields are ${names}`);
      const missing = layout.filter((f) => given[f.name] === undefined && !optional.has(f.name)).map((f) => `"${f.name}"`);
      if (missing.length) throw new Error(`field ${missing.join(', ')} is missing: the fields are ${names}`);

      let rows: number | undefined;
      const flat = new Map<string, ArrayLike<unknown>>();
      for (const f of layout) {
        const v = given[f.name];
        if (v === undefined) continue;
        const nested = Array.isArray(v) && v.length > 0 && Array.isArray(v[0]);
        if (!isNumbers(v) && !nested) throw new Error(`field "${f.name}" is ${describeValue(v)}, not an array of numbers`);
        if (nested) {
          const bad = (v as unknown[]).findIndex((row) => !isNumbers(row) || row.length !== f.width);
          if (bad >= 0) throw new Error(`field "${f.name}" row ${bad} is ${describeValue((v as unknown[])[bad])}, not ${f.width} numbers`);
        }
        const values: ArrayLike<unknown> = nested ? (v as ArrayLike<number>[]).flatMap((row) => Array.from(row)) : (v as ArrayLike<number>);
        const n = values.length / f.width;
        if (!Number.isInteger(n) || n === 0) {
          throw new Error(`field "${f.name}" has ${values.length} values: a whole number of rows of ${f.width}, at least one, is needed`);
        }
        if (rows !== undefined && n !== rows) throw new Error(`field "${f.name}" has ${n} rows, the fields before it ${rows}`);
        rows = n;
        flat.set(f.name, values);
      }
      if (rows === undefined) throw new Error(`no fields given: the fields are ${names}`);
      const out: Record<string, Field> = {};
      for (const f of layout) {
        const field = new f.type(rows * f.width);
        const values = flat.get(f.name);
        for (let i = 0; values && i < values.length; i++) {
          const bad = badValue(values[i], f.type);
          if (bad) throw new Error(`field "${f.name}" row ${Math.floor(i / f.width)} value ${i % f.width}: ${bad}`);
          field[i] = values[i] as number;
        }
        out[f.name] = field;
      }
      return { batch: { rows, fields: out } };
    },
    decode: (probs, classes) => classAnswer(probs, classes),
  };
}
