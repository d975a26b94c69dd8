/**
 * WorkloadData over a record store (src/records/): what the workloads with fixed-width examples (one prediction a
 * row) share. Batches are read on the calling thread: a batch of records is a few hundred kilobytes, gathered in
 * well under a millisecond, so a reader pool would only add messages.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { RecordError, type RecordMeta, RecordStore } from '../records/store.js';
import { openRecordStream, readValidation } from '../records/stream.js';
import { ActorError } from '../util/actor.js';
import type { Batch, StreamSpec, TrainBatch, TrainStream, WorkloadData } from './workload.js';

/**
 * Why `path` (the config key `key`) cannot be a store a run reads (it is missing, a file, or a folder without an
 * LMDB data.mdb), naming the path and how to build one; undefined when it looks like one. `what`: "corpus store".
 */
export function storePathProblem(path: string, key: string, what: string): string | undefined {
  const build = `build one with \`codistill ingest -s ${key}=${path}\` (with the preset and --set flags of the run)`;
  if (!existsSync(path)) return `no ${what} at ${path} (${key}): ${build}, or set ${key} to an existing store`;
  if (!statSync(path).isDirectory()) return `${path} (${key}) is a file, not a codistill ${what} (a folder holding data.mdb): set ${key} to a store folder`;
  if (existsSync(join(path, 'data.mdb'))) return undefined;
  const empty = readdirSync(path).length === 0;
  return (
    `${path} (${key}) is not a codistill ${what} (no data.mdb${empty ? ': the folder is empty' : ' in it'}): ` +
    `set ${key} to a store that \`codistill ingest\` built, or remove the folder and run \`codistill ingest -s ${key}=${path}\`` +
    (empty ? '' : ' (if it holds your input files, give them to `codistill ingest` as arguments and put the store elsewhere)')
  );
}

export function recordData(
  path: string,
  classes: number,
  validationRows: number,
  reference?: (meta: RecordMeta, validation: Batch) => WorkloadData['reference'],
  key = 'data.path',
): WorkloadData {
  const problem = storePathProblem(path, key, 'record store');
  if (problem) throw new RecordError(problem);
  // Opening checks the store (format, version) once, with an error naming the path.
  const store = RecordStore.open(path);
  const meta = store.meta;
  store.close();
  const validation = readValidation(path, validationRows);
  return {
    classes,
    positionsPerRow: 1,
    validation,
    reference: reference?.(meta, validation),
    openStream: (spec: StreamSpec) => {
      const { fault, ...plain } = spec;
      const stream = openRecordStream(path, plain);
      return fault ? new FaultyStream(stream, fault, spec.group) : stream;
    },
    close: async () => undefined,
  };
}

/**
 * Fault injection (StreamSpec.fault) for a stream read on the calling thread: pulling batch `atBatch` fails, and so
 * does every pull after it, with an ActorError of the group's record reader. There is no reader worker to end, so
 * 'exit' throws as 'throw' does (its message says so).
 */
class FaultyStream implements TrainStream {
  private served = 0;
  private failure: ActorError | undefined;
  readonly recycle?: (batch: TrainBatch) => void;

  constructor(
    private readonly inner: TrainStream,
    private readonly fault: NonNullable<StreamSpec['fault']>,
    private readonly group: number,
  ) {
    if (!Number.isInteger(fault.atBatch) || fault.atBatch < 0 || !['throw', 'exit'].includes(fault.kind)) {
      throw new RangeError(`fault must be { atBatch: an integer >= 0, kind: 'throw' or 'exit' }, got ${JSON.stringify(fault)}`);
    }
    if (inner.recycle) this.recycle = (batch) => inner.recycle!(batch);
  }

  async next(): Promise<TrainBatch> {
    if (this.failure) throw this.failure;
    if (this.served === this.fault.atBatch) {
      const { atBatch, kind } = this.fault;
      const what = kind === 'exit'
        ? `injected exit at batch ${atBatch} (records are read on the calling thread: no worker to end, so it throws)`
        : `injected fault at batch ${atBatch}`;
      this.failure = new ActorError(`record reader of group ${this.group}`, what);
      throw this.failure;
    }
    const batch = await this.inner.next();
    this.served++;
    return batch;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
