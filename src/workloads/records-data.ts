/**
 * WorkloadData over a record store (src/records/): what the workloads with fixed-width examples (one prediction a
 * row) share. Batches are read on the calling thread: a batch of records is a few hundred kilobytes, gathered in
 * well under a millisecond, so a reader pool would only add messages.
 */
import { type RecordMeta, RecordStore } from '../records/store.js';
import { openRecordStream, readValidation } from '../records/stream.js';
import type { Batch, StreamSpec, WorkloadData } from './workload.js';

export function recordData(
  path: string,
  classes: number,
  validationRows: number,
  reference?: (meta: RecordMeta, validation: Batch) => WorkloadData['reference'],
): WorkloadData {
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
    openStream: (spec: StreamSpec) => openRecordStream(path, spec),
    close: async () => undefined,
  };
}
