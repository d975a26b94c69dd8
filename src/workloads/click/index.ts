/**
 * Click prediction, the paper's churn workload: rows in the Criteo Display Ad Challenge format (a label, 13
 * integer features, 26 hashed categoricals) stored as records; embeddings of the categoricals plus a ReLU
 * feed-forward net with a logistic output. Two classes with logits [0, z]: the task loss is the log loss, the
 * distillation term the binary cross-entropy to the averaged teacher probability.
 *
 * Real data: the bundled vega-datasets flights converted to the Criteo format (label = departure delay over 15
 * minutes; January to May train, June validation), or any Criteo-format files (`codistill ingest --format criteo`).
 */
import type { Config } from '../../config/schema.js';
import type { RecordMeta } from '../../records/store.js';
import type { Batch, Workload } from '../workload.js';
import { type ModelPart, modelSizeProblems } from '../lm/model-size.js';
import { type ClickDataConfig, type ClickModelConfig, clickDataSchema, clickModelSchema } from './config.js';

/** Criteo rows: 13 integer features and 26 categorical ones (the parser, ./criteo.ts, checks each row has them). */
const DENSE_FIELDS = 13;
const CATEGORICAL_FIELDS = 26;

/** The log loss of always predicting the training split's positive rate, on the validation examples. */
function baseRate(meta: RecordMeta, validation: Batch): { label: string; loss: number } | undefined {
  const positives = (meta.source as { summary?: { positives?: { train?: number } } }).summary?.positives?.train;
  if (positives === undefined || meta.splits.train.rows === 0) return undefined;
  const p = Math.min(Math.max(positives / meta.splits.train.rows, 1e-7), 1 - 1e-7);
  const labels = validation.fields.label;
  let sum = 0;
  for (let i = 0; i < validation.rows; i++) sum -= labels[i] ? Math.log(p) : Math.log(1 - p);
  return { label: `always the training base rate (${(100 * p).toFixed(2)}%)`, loss: sum / validation.rows };
}

/** The model's embedding table has data.buckets rows: the store must have been hashed the same way. */
function checkHashing(meta: RecordMeta, data: ClickDataConfig): void {
  const input = (meta.source as { input?: { buckets?: number; hashSeed?: number } }).input;
  if (input?.buckets !== data.buckets || input?.hashSeed !== data.hashSeed) {
    throw new ClickStoreError(
      `${data.path} was hashed into ${input?.buckets} buckets with hashSeed ${input?.hashSeed}, but this config has ` +
        `data.buckets = ${data.buckets} and data.hashSeed = ${data.hashSeed}: ingest again with this config ` +
        '(`codistill ingest -p PRESET --force`), or point data.path at a store hashed like it',
    );
  }
}

class ClickStoreError extends Error {
  override name = 'ClickStoreError';
}

type ClickConfig = Config & { data: ClickDataConfig; model: ClickModelConfig };
const own = (config: Config): ClickConfig => config as ClickConfig;

/** The click model's parameters by part. */
export function clickModelParts(data: ClickDataConfig, model: ClickModelConfig): ModelPart[] {
  let width = CATEGORICAL_FIELDS * model.embedding + DENSE_FIELDS;
  let hidden = 0;
  for (const units of model.hidden) {
    hidden += width * units + units;
    width = units;
  }
  return [
    { what: 'the embedding table (data.buckets x model.embedding)', params: data.buckets * model.embedding, keys: ['data.buckets', 'model.embedding'] },
    { what: 'the ReLU layers', params: hidden, keys: ['model.hidden', 'model.embedding'] },
    { what: 'the output', params: width + 1, keys: ['model.hidden'] },
  ];
}

export const clickWorkload: Workload = {
  kind: 'click',
  sections: { data: clickDataSchema, model: clickModelSchema },
  check(config) {
    const { data, model } = own(config);
    return modelSizeProblems(clickModelParts(data, model), config.replicas);
  },
  unit: 'rows',
  metrics: ['auc'],
  formats: ['criteo'],
  describe(config) {
    const { data, model } = own(config);
    const source = data.inputs.length ? `Criteo-format files ${data.inputs.join(', ')}` : 'the bundled flights (delay over 15 minutes; January-May train, June validation)';
    return (
      `Model: click prediction on ${source}, store \`${data.path}\`: ${CATEGORICAL_FIELDS} categorical fields hashed to ${data.buckets} buckets, ` +
      `${model.embedding}-d embeddings, ReLU layers of ${model.hidden.join(', ')} units, logistic output; log loss and AUC.`
    );
  },
  async ingest(config, opts = {}) {
    const { ingestClick } = await import('./ingest.js');
    return ingestClick(own(config).data, { inputs: opts.inputs, force: opts.force, progress: opts.progress });
  },
  dataPath: (config) => own(config).data.path,
  async open(config) {
    const { data } = own(config);
    const { recordData } = await import('../records-data.js');
    return recordData(data.path, 2, config.eval.examples, (meta, validation) => {
      checkHashing(meta, data);
      return baseRate(meta, validation);
    });
  },
  async buildModel(spec) {
    const { data, model } = own(spec.config);
    const { ClickModel } = await import('./model.js');
    return new ClickModel({ ...model, buckets: data.buckets, dense: DENSE_FIELDS, categorical: CATEGORICAL_FIELDS, seed: spec.seed });
  },
  async predictor(config) {
    return (await import('./predict.js')).clickPredictor(own(config).data);
  },
};
