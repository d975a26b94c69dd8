/**
 * The language model's batch: B windows of T+1 token ids, row-major (`TokenBatch`, what the reader pool and the
 * validation reader produce), carried through the run as the one field `tokens` of a workload Batch.
 */
import type { Batch } from '../workload.js';

export interface TokenBatch {
  data: Int32Array;
  rows: number;
  cols: number;
}

export const asBatch = (t: TokenBatch): Batch => ({ rows: t.rows, fields: { tokens: t.data } });

export function tokensOf(batch: Batch): TokenBatch {
  const data = batch.fields.tokens;
  if (!(data instanceof Int32Array)) throw new Error('a language-model batch needs an int32 field "tokens"');
  return { data, rows: batch.rows, cols: batch.rows > 0 ? data.length / batch.rows : 0 };
}
