/**
 * The language model workload: an LSTM over BPE tokens of the bundled books and speeches (or the user's text).
 *
 * Store: the token corpus in LMDB (./corpus/). Training data: each group's windows read ahead by the reader pool
 * (./data/, actors/reader.ts), spans of consecutive windows so that a row may continue the previous batch's row.
 * A batch row is a window of T+1 tokens (the one field `tokens`); it predicts T positions over the vocabulary.
 */
import type { Model, ModelSpec, Workload } from '../workload.js';
import { type ModelConfig, lmConfig, lmSections } from './config.js';
import { type ModelPart, modelSizeProblems } from './model-size.js';

/** The LSTM's parameters by part (the vocabulary as requested: the learned one is at most that). */
export function lmModelParts(m: ModelConfig, vocab: number): ModelPart[] {
  const H = m.hidden;
  let lstm = 0;
  for (let l = 0; l < m.layers; l++) lstm += 4 * H * ((l === 0 ? m.embedding : H) + H) + 4 * H + (m.layerNorm ? 2 * H : 0);
  return [
    { what: 'the token embeddings (corpus.vocabSize x model.embedding)', params: vocab * m.embedding, keys: ['model.embedding', 'corpus.vocabSize'] },
    { what: `the LSTM layers (4 x model.hidden x (input + model.hidden) each)`, params: lstm, keys: ['model.hidden', 'model.layers'] },
    { what: 'the output layer (model.hidden x corpus.vocabSize)', params: H * vocab + vocab, keys: ['model.hidden', 'corpus.vocabSize'] },
  ];
}

export const lmWorkload: Workload = {
  kind: 'lm',
  sections: lmSections,
  unit: 'tokens',
  metrics: [],
  formats: ['text'],
  ingestsInParts: true,
  untracked: ['reader.threads', 'reader.prefetch', 'ingest.threads'],
  describe(config) {
    const { model: m, corpus } = lmConfig(config);
    return (
      `Model: ${m.layers}-layer LSTM language model, ${m.embedding}-d embeddings, ${m.hidden} units, ` +
      `windows of ${m.window} tokens, vocabulary from corpus \`${corpus.path}\` (${corpus.vocabSize} tokens requested).`
    );
  },
  check(config) {
    const c = lmConfig(config);
    const problems =
      c.distill.topK >= c.corpus.vocabSize
        ? [`config key "distill.topK": ${c.distill.topK} must be below corpus.vocabSize = ${c.corpus.vocabSize} (0 = all)`]
        : [];
    return [...problems, ...modelSizeProblems(lmModelParts(c.model, c.corpus.vocabSize), c.replicas)];
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
