/** The library: everything a program that embeds codistill needs. */
export { loadConfig, validateConfig, describeKeys, workloadOf, ConfigError } from './config/load.js';
export { DEFAULTS, commonSchema, type Config, type CommonConfig } from './config/schema.js';
export { initBackend, describeBackend, backendName, type BackendInfo, type KernelOptions } from './backend.js';
export { nativeStatus, type NativeStatus } from './tf/native-kernels.js';
export { loadWorkload, builtInWorkloads, WorkloadError } from './workloads/registry.js';
export type {
  Workload, WorkloadData, Model, ModelSpec, Batch, Field, TrainBatch, TrainStream, StreamSpec, DataCursor, IngestReport,
  IngestOptions, IngestProgressSink, MetricName,
} from './workloads/workload.js';
export { rowView, rowCopy, batchBuffers } from './workloads/batch.js';
export { RecordWriter, RecordStore, RecordError, type FieldSpec, type RecordMeta } from './records/store.js';
export { openRecordStream, readValidation } from './records/stream.js';
export { Group, RunError, NonFiniteError, type GroupOptions } from './group/group.js';
export { ActorError, isActorFault } from './util/actor.js';
export type { FaultKind } from './train/faults.js';
export { RunLockedError } from './train/run-folder.js';
export { SupervisedGroup } from './train/supervised-group.js';
export { DamagedStoreError } from './store/lmdb-check.js';
export { codistillLoss, taskLoss, distillLoss } from './train/loss.js';
export { learningRate, distillWeight, distilledPositions, exchangeDue, syncSnapshotStep, periodicDue } from './train/schedule.js';
export { auc, accuracy } from './train/measures.js';
export { startRun, train, type Run, type RunSummary, type TrainOptions } from './train/run.js';
export { startGroupRun, groupIndexOf, type GroupRunOptions } from './train/group-run.js';
export { GroupTrainer, groupSeed, type GroupTrainerOptions, type InjectedFault } from './train/group-trainer.js';
export { MemoryExchange, type Exchange, type Published } from './exchange/exchange.js';
export { StoreExchange, type StoreExchangeOptions } from './exchange/store-exchange.js';
export { runStoreOf, type RunStore } from './train/run-store.js';
export { evaluate, type EvaluateOptions } from './train/evaluate.js';
export { loadRunModels, type RunModels } from './train/snapshots.js';
export { openPredictor, predict, InputError, type PredictorOptions, type PredictOptions, type RunPredictor } from './train/predict.js';
export type { RunEvent, StepEvent, EvalEvent, ExchangeEvent, CheckpointEvent, RestartEvent, WarningEvent, ErrorEvent } from './train/events.js';
export { readMetrics, MetricsLogError } from './train/metrics.js';
export { openSnapshotStore, type SnapshotStore, type Snapshot } from './store/index.js';
export { arrayData, type ArrayDataOptions } from './workloads/arrays.js';
export { arrayPredictor, type ArrayPredictorOptions } from './workloads/arrays.js';
export type { Predictor } from './workloads/workload.js';
