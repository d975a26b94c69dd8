/** The library: everything a program that embeds codistill needs. */
export { loadConfig, validateConfig, describeKeys, ConfigError } from './config/load.js';
export { DEFAULTS, configSchema, type Config } from './config/schema.js';
export { initBackend, describeBackend, type BackendInfo } from './backend.js';
export { ingest, type IngestResult, type IngestProgress } from './corpus/ingest.js';
export { Corpus, CorpusError, type CorpusMeta } from './corpus/store.js';
export { openBatchStream, createReaderPool, readValidationWindows, type TrainBatch, type DataCursor } from './data/batches.js';
export { Group, RunError, type GroupOptions } from './group/group.js';
export { buildModel } from './model/build.js';
export type { Model, ModelSpec, Batch } from './model/workload.js';
export { codistillLoss, taskLoss, distillLoss, distillWeight } from './train/loss.js';
export { startRun, train, type Run, type RunSummary, type TrainOptions } from './train/run.js';
export type { RunEvent, StepEvent, EvalEvent } from './train/events.js';
export { readMetrics } from './train/metrics.js';
export { openSnapshotStore, type SnapshotStore, type Snapshot } from './store/index.js';
