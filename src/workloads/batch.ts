/**
 * Operations on workload batches that every layer needs and no workload owns: row slices (a replica's share, an
 * evaluation chunk), private copies (before a buffer moves to another thread) and the buffers to transfer.
 */
import type { Batch, Field } from './workload.js';

/** Rows [from, to) of a batch as views of its fields (no copy). */
export function rowView(batch: Batch, from: number, to: number): Batch {
  const fields: Record<string, Field> = {};
  for (const [name, f] of Object.entries(batch.fields)) {
    const w = f.length / batch.rows;
    fields[name] = f.subarray(from * w, to * w);
  }
  return { rows: to - from, fields };
}

/** Rows [from, to) as fresh arrays, each with a buffer of its own (to transfer to a worker). */
export function rowCopy(batch: Batch, from = 0, to = batch.rows): Batch {
  const fields: Record<string, Field> = {};
  for (const [name, f] of Object.entries(batch.fields)) {
    const w = f.length / batch.rows;
    fields[name] = f.slice(from * w, to * w);
  }
  return { rows: to - from, fields };
}

/** The buffers a batch's fields live in, for a transfer list. */
export const batchBuffers = (batch: Batch): ArrayBuffer[] =>
  [...new Set(Object.values(batch.fields).map((f) => f.buffer))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
