/**
 * A corpus of synthetic token ids, written straight through CorpusWriter (no text, no tokenizer): for tests and
 * benchmarks of everything downstream of ingestion. Token i of shard s of a split is a fixed hash of (split, s, i),
 * so any window read back can be checked against `Corpus.shard`.
 */
import {
  CORPUS_FORMAT,
  CORPUS_FORMAT_VERSION,
  type CorpusMeta,
  CorpusWriter,
  type Split,
  type TokenDtype,
  tokenArrayType,
} from '../src/workloads/lm/corpus/store.js';

export interface SyntheticCorpusOptions {
  shardTokens: number;
  /** Tokens of each split (the last shard of a split holds the remainder). */
  tokens: Record<Split, number>;
  vocabSize?: number;
  tokenDtype?: TokenDtype;
}

/** The synthetic token at position `i` of shard `shard` of `split`. */
export function syntheticToken(split: Split, shard: number, i: number, vocabSize: number): number {
  const h = Math.imul(shard + (split === 'train' ? 1 : 0x10001), 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b);
  return ((h ^ (h >>> 15)) >>> 0) % vocabSize;
}

/** Writes the corpus at `path` (replacing what is there) and returns its metadata. */
export async function writeSyntheticCorpus(path: string, o: SyntheticCorpusOptions): Promise<CorpusMeta> {
  const vocabSize = o.vocabSize ?? 50000;
  const tokenDtype = o.tokenDtype ?? 'uint16';
  const writer = new CorpusWriter(path);
  const splits = {} as CorpusMeta['splits'];
  try {
    for (const split of ['train', 'validation'] as const) {
      const total = o.tokens[split];
      const shards = Math.ceil(total / o.shardTokens);
      for (let s = 0; s < shards; s++) {
        const n = Math.min(o.shardTokens, total - s * o.shardTokens);
        const tokens = new (tokenArrayType(tokenDtype))(n);
        for (let i = 0; i < n; i++) tokens[i] = syntheticToken(split, s, i, vocabSize);
        void writer.putShard(split, s, tokens);
        if (s % 64 === 63) await writer.flush();
      }
      splits[split] = { shards, tokens: total, documents: shards };
    }
    const meta: CorpusMeta = {
      format: CORPUS_FORMAT,
      version: CORPUS_FORMAT_VERSION,
      tokenizer: { kind: 'bpe', library: 'synthetic', vocabSize, json: '{}', sha256: '', eod: 0 },
      tokenDtype,
      shardTokens: o.shardTokens,
      splits,
      inputs: { fingerprint: 'synthetic', files: [] },
      split: { seed: 0, validationFraction: 0 },
      createdAt: new Date(0).toISOString(),
    };
    await writer.commit(meta);
    return meta;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
