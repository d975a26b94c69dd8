/** Seeded synthetic token batches for tests that need data but not a corpus. */
import type { TokenBatch } from '../../src/workloads/lm/tokens.js';
import type { Batch } from '../../src/workloads/workload.js';

/** A workload batch whose one field `tokens` is also reachable as the token batch's `data` (the same array). */
export function randomBatch(seed: number, rows: number, cols: number, classes: number): Batch & TokenBatch {
  let s = seed >>> 0 || 1;
  const data = new Int32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    // xorshift32: enough for test data, and the same on every machine.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    data[i] = s % classes;
  }
  return { data, rows, cols, fields: { tokens: data } };
}

/** A Group step's input on a random token batch (seeded by the step): no distillation, lr 0.01. */
export function groupStepInput(step: number, rows: number, window: number, classes: number) {
  return {
    step,
    lr: 0.01,
    alpha: 0,
    batch: randomBatch(100 + step, rows, window + 1, classes),
    positionsPerRow: window,
    classes,
  };
}
