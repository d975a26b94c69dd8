/**
 * The language model workload: an LSTM over BPE tokens of the bundled books and speeches (or the user's text).
 *
 * Store: the token corpus in LMDB (./corpus/). Training data: each group's windows read ahead by the reader pool
 * (./data/, actors/reader.ts), spans of consecutive windows so that a row may continue the previous batch's row.
 * A batch row is a window of T+1 tokens (the one field `tokens`); it predicts T positions over the vocabulary.
 */
import type { Model, ModelSpec, Workload } from '../workload.js';
import { lmConfig, lmSections } from './config.js';

export const lmWorkload: Workload = {
  kind: 'lm',
  sections: lmSections,
  unit: 'tokens',
  metrics: [],
  formats: ['text'],
  untracked: ['reader.threads', 'reader.prefetch'],
  describe(config) {
    const { model: m, corpus } = lmConfig(config);
    return (
      `Model: ${m.layers}-layer LSTM language model, ${m.embedding}-d embeddings, ${m.hidden} units, ` +
      `windows of ${m.window} tokens, vocabulary from corpus \`${corpus.path}\` (${corpus.vocabSize} tokens requested).`
    );
  },
  check(config) {
    const c = lmConfig(config);
    return c.distill.topK >= c.corpus.vocabSize
      ? [`config key "distill.topK": ${c.distill.topK} must be below corpus.vocabSize = ${c.corpus.vocabSize} (0 = all)`]
      : [];
  },
  async ingest(config, opts) {
    return (await import('./data.js')).ingest(config, opts);
  },
  dataPath: (config) => lmConfig(config).corpus.path,
  async open(config) {
    return (await import('./data.js')).open(config);
  },
  async buildModel(spec: ModelSpec): Promise<Model> {
    const { model } = lmConfig(spec.config);
    const { LstmLanguageModel } = await import('./lstm.js');
    // Teachers see each batch once, out of any stream: they never carry LSTM state between batches.
    return new LstmLanguageModel({ model: spec.role === 'teacher' ? { ...model, carryState: false } : model, classes: spec.classes, seed: spec.seed });
  },
  async predictor(config) {
    return (await import('./predict.js')).lmPredictor(config);
  },
};
