/**
 * The keys every run has, whatever its workload, with their defaults and documentation, in one place.
 *
 * A run's schema is these common sections plus the sections its workload adds (`workload` names it: a built-in
 * kind or a user's module), so the config is a union keyed on the workload, strict per kind: an unknown key is an
 * error naming it. Presets in config/*.json and `--set key=value` overrides are merged on top of the defaults and
 * validated by src/config/load.ts. `codistill config --keys` prints every key; the README's table is generated
 * from it.
 */
import { z } from 'zod';

const int = (min: number) => z.number().int().min(min);
const fraction = z.number().min(0).max(1);

export const optimSchema = z.strictObject({
  batch: int(1).default(32).describe('examples (windows, rows or images) per step for one group (split evenly across its replicas)'),
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

export const sgdSchema = z.strictObject({
  mode: z.enum(['sync', 'async', 'delayed']).default('sync')
    .describe('how a group\'s replicas combine their gradients: sync (an all-reduce, one averaged update per step), async (parameter-server style, no barrier: each replica\'s gradient is its own update, computed on the weights it last read, applied as it arrives) or delayed (each replica\'s gradient is its own update, computed on the weights of exactly sgd.staleness updates before: async SGD made deterministic)'),
  staleness: int(0).nullable().default(null)
    .describe('delayed: the updates between the weights a gradient is computed on and the update that applies it (tau); null = replicas - 1, what K equally fast asynchronous workers see'),
});

export const distillSchema = z.strictObject({
  method: z.enum(['codistill', 'average']).default('codistill')
    .describe('what the groups exchange every distill.exchangeEvery steps: codistill (snapshots that teach the other groups through the distillation term) or average (every group\'s weights are replaced by an outer step on the groups\' averaged pseudo-gradient, at a barrier: DiLoCo with the default outer rate and momentum, local SGD with outerLr = 1 and outerMomentum = 0; all groups start from the same initialisation)'),
  outerLr: z.number().positive().default(0.7).describe('average: the outer learning rate (DiLoCo 0.7; 1 with no momentum is plain averaging)'),
  outerMomentum: fraction.default(0.9).describe('average: the outer Nesterov momentum (DiLoCo 0.9; 0 for local SGD)'),
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
    .describe('share of each example\'s positions (a window\'s tokens) that carry the distillation term (strided, the offset moving every step); the teachers compute only those, cutting their cost'),
  sameData: z.boolean().default(false).describe('every group reads the same shards instead of disjoint ones'),
  labelSmoothing: fraction.default(0).describe('label smoothing of the task loss (a baseline, usually with groups = 1)'),
});

export const evalSchema = z.strictObject({
  every: int(0).default(50).describe('steps between validation passes (0 = only at the end)'),
  examples: int(1).default(256).describe('validation examples (windows, rows or images) per pass, taken in order from the validation split'),
});

export const checkpointSchema = z.strictObject({
  every: int(0).default(100).describe('steps between checkpoints (0 = only at the end)'),
  keep: int(1).default(3).describe('checkpoints kept per group (older ones are pruned)'),
});

export const placementSchema = z.strictObject({
  mode: z.enum(['thread', 'process']).default('thread')
    .describe('where each group runs: thread (every group in this process, its replicas on worker threads) or process (a child process per group: one GPU per group, and a group that dies is restarted)'),
  devices: z.array(z.string().min(1)).default([])
    .describe('process placement: the GPUs handed to the group processes through CUDA_VISIBLE_DEVICES, group g getting devices[g mod length] (e.g. ["0","1"]; empty = leave it as it is)'),
  restarts: int(0).default(2).describe('times a group is restarted from its newest checkpoint (its process died, one of its actors failed, or guard.nonFinite = rollback) before the run stops'),
});

export const storeSchema = z.strictObject({
  url: z.string().default('')
    .describe('where the groups exchange snapshots, write checkpoints and record the config: lmdb:PATH (one machine), file:PATH (a shared directory) or s3://BUCKET/PREFIX (?endpoint=URL for an S3-compatible server); empty = the run folder, in LMDB (and in thread placement the exchange stays in memory)'),
  pollMs: int(1).default(25).describe('milliseconds between two looks at the store for the other groups\' new snapshots'),
});

export const guardSchema = z.strictObject({
  nonFinite: z.enum(['fail', 'skip', 'rollback']).default('fail')
    .describe('a step whose loss or reduced gradient is not finite never reaches the weights; then: fail (the run stops with an error), skip (the group leaves its weights and optimizer state as they were and goes on with the next batch) or rollback (the group starts again from its newest checkpoint, up to placement.restarts times); an update that makes the weights themselves non-finite (a finite gradient times too large a rate) cannot be undone and fails the group in every mode'),
  maxSkips: int(1).default(10)
    .describe('skip: consecutive steps a group may skip; one more non-finite step in a row fails the group'),
  divergence: z.number().min(0).default(3)
    .describe('a validation loss above this many times the best one so far is reported as a warning (0 = off)'),
  stopOnDivergence: z.boolean().default(false)
    .describe('stop the run (every group checkpointing, as on a stop) when the validation loss diverges as guard.divergence says'),
});

export const commonShape = {
  workload: z.string().min(1).default('lm')
    .describe('the task: a built-in workload (lm: LSTM language model on the token corpus; click: click prediction on Criteo-format rows; image: CNN on MNIST) or the path of a module whose default export is a Workload; its sections (corpus, data, model, ...) follow'),
  seed: int(0).default(1234).describe('seed of everything random in a run: each group\'s initialisation and data order'),
  backend: z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto')
    .describe('tfjs backend; auto takes the best that loads (tfjs-node-gpu, tfjs-node, wasm, cpu)'),
  kernels: z.enum(['auto', 'native', 'wasm']).default('auto')
    .describe('on the wasm backend: native runs matMul, the LSTM recurrence, dense layers and the cross-entropy in C on OpenBLAS (built at install when a C compiler and OpenBLAS are present), wasm keeps tfjs\'s own kernels, auto takes native when it was built'),
  blasThreads: int(1).max(64).default(1)
    .describe('OpenBLAS threads of the native kernels (one setting per process: groups and replicas are the parallelism)'),
  groups: int(1).max(64).default(2).describe('models trained side by side (N); 1 = plain synchronous SGD'),
  replicas: int(1).max(64).default(1).describe('synchronous-SGD replicas (worker threads) per group'),
  steps: int(1).default(1000).describe('training steps per group'),
  runDir: z.string().min(1).default('runs').describe('folder under which each run writes its outputs'),
  name: z.string().default('').describe('run name (a folder under runDir); empty = a timestamp'),
  optim: optimSchema.prefault({}),
  sgd: sgdSchema.prefault({}),
  distill: distillSchema.prefault({}),
  eval: evalSchema.prefault({}),
  checkpoint: checkpointSchema.prefault({}),
  placement: placementSchema.prefault({}),
  store: storeSchema.prefault({}),
  guard: guardSchema.prefault({}),
};

export const commonSchema = z.strictObject(commonShape);

/** A resolved config: the common sections, typed, and the workload's own sections (its code reads them typed). */
export type CommonConfig = z.infer<typeof commonSchema>;
export type Config = CommonConfig & { readonly [section: string]: unknown };
export type OptimConfig = CommonConfig['optim'];
export type DistillConfig = CommonConfig['distill'];
export type SgdConfig = CommonConfig['sgd'];
export type GuardConfig = CommonConfig['guard'];

/** The common sections' defaults, resolved (a workload's own defaults come with its sections). */
export const DEFAULTS: CommonConfig = commonSchema.parse({});
