/** The config sections of the click workload: where its Criteo-format rows come from and the net that reads them. */
import { z } from 'zod';

const int = (min: number) => z.number().int().min(min);

export const clickDataSchema = z.strictObject({
  path: z.string().min(1).default('data/flights-criteo')
    .describe('LMDB record store (a directory) written by `codistill ingest` and read by training'),
  inputs: z.array(z.string().min(1)).default([])
    .describe('Criteo-format text files (label, 13 integers, 26 hex categoricals, tab-separated) for training; empty = the bundled vega-datasets flights, converted: January-May train, June validation'),
  validationInputs: z.array(z.string().min(1)).default([])
    .describe('Criteo-format files held out whole for validation; empty = a seeded validationFraction of the rows of inputs'),
  validationFraction: z.number().gt(0).lt(1).default(0.05)
    .describe('share of the rows of inputs held out for validation, by a seeded hash of file name and line (only when inputs are given without validationInputs)'),
  buckets: int(2).max(1 << 30).default(1 << 18)
    .describe('hash buckets shared by the 26 categorical fields (bucket 0 is "empty"; values hash to 1 .. buckets-1)'),
  shardRows: int(1).default(16384)
    .describe('rows per LMDB shard (the unit of data partitioning between groups)'),
  malformed: z.enum(['fail', 'skip']).default('fail')
    .describe('a malformed input row stops the ingest (naming file and line) or is skipped and counted'),
  hashSeed: int(0).max(0xffffffff).default(0)
    .describe('seed of the categorical hash (another seed, other collisions)'),
});

export const clickModelSchema = z.strictObject({
  embedding: int(1).default(8).describe('width of each categorical field\'s embedding'),
  hidden: z.array(int(1)).default([128, 64])
    .describe('units of each ReLU layer between the concatenated inputs and the logit, in order'),
});

export type ClickDataConfig = z.infer<typeof clickDataSchema>;
export type ClickModelConfig = z.infer<typeof clickModelSchema>;
