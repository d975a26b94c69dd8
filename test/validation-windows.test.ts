import t from 'tap';
import { join } from 'node:path';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { Corpus } from '../src/workloads/lm/corpus/store.js';
import { readValidationWindows } from '../src/workloads/lm/data/validation.js';

const T = 16;

t.test('validation windows come in corpus order, shard after shard, the same every time', async (t) => {
  const path = join(t.testdir(), 'corpus');
  // Validation: shards of 1024, 1024 and 952 tokens: 63 + 63 + 59 windows of 17 tokens.
  await writeSyntheticCorpus(path, { shardTokens: 1024, tokens: { train: 4096, validation: 3000 } });
  const corpus = Corpus.open(path);
  t.teardown(() => corpus.close());
  const batch = readValidationWindows(corpus, T, 100);
  t.equal(batch.rows, 100);
  t.equal(batch.cols, T + 1);
  const row = (r: number) => Array.from(batch.data.subarray(r * (T + 1), (r + 1) * (T + 1)));
  const window = (shard: number, k: number) => Array.from(corpus.shard('validation', shard).subarray(k * T, k * T + T + 1));
  t.same(row(0), window(0, 0));
  t.same(row(62), window(0, 62), 'the last window of a shard');
  t.same(row(63), window(1, 0), 'then the next shard');
  t.same(row(99), window(1, 36));
  t.same(readValidationWindows(corpus, T, 100), batch, 'deterministic');

  const all = readValidationWindows(corpus, T, 1000);
  t.equal(all.rows, 63 + 63 + 59, 'fewer than asked when the split holds fewer');
  t.same(Array.from(all.data.subarray(184 * (T + 1))), window(2, 58));
  t.throws(() => readValidationWindows(corpus, 1024, 4), { name: 'CorpusError', message: /no window of 1025 tokens/ });
  t.throws(() => readValidationWindows(corpus, T, 0), /count must be a positive integer/);
});
