/** Ingest on several encoder threads: the same shards whatever the thread count, and its errors still name the file. */
import t from 'tap';
import { existsSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CorpusConfig, LM_DEFAULTS } from '../src/workloads/lm/config.js';
import { ingest } from '../src/workloads/lm/corpus/ingest.js';
import { Corpus, SPLITS } from '../src/workloads/lm/corpus/store.js';
import { writeTextCorpus } from './helpers/text-corpus.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** About 320 KB of seeded text in 8 files, cut into documents of at most 16 KB, and a config to ingest it. */
function setup(t: Test): { dir: string; inputs: string; corpus: CorpusConfig } {
  const dir = t.testdir();
  const inputs = writeTextCorpus(join(dir, 'text'), { files: 8, bytes: 40_000, seed: 5 });
  const corpus: CorpusConfig = {
    ...LM_DEFAULTS.corpus,
    path: join(dir, 'corpus'),
    inputs: [inputs],
    vocabSize: 300,
    minFrequency: 2,
    shardTokens: 2048,
    validationFraction: 0.1,
    maxDocumentBytes: 16 << 10,
  };
  return { dir, inputs, corpus };
}

/** Every shard of a store, split by split, and its metadata less the time it was written. */
function contents(path: string): { shards: Buffer[]; meta: unknown } {
  const corpus = Corpus.open(path);
  try {
    const shards = SPLITS.flatMap((split) => Array.from({ length: corpus.shardCount(split) }, (_, i) => Buffer.from(corpus.shardBytes(split, i))));
    const { createdAt: _, ...meta } = corpus.meta;
    return { shards, meta };
  } finally {
    corpus.close();
  }
}

t.test('1 and 2 encoder threads write byte-equal shards and metadata', async (t) => {
  const { dir, inputs, corpus } = setup(t);
  // One file of invalid UTF-8, read with U+FFFD for its bad bytes on whichever worker encodes it.
  writeFileSync(join(inputs, 'set-00', 'latin-1.txt'), Buffer.from('Caf\xe9 au lait, cr\xe8me br\xfbl\xe9e.\n'.repeat(200), 'latin1'));
  const one = await ingest({ corpus: { ...corpus, path: join(dir, 'one'), invalidUtf8: 'replace' }, seed: 3, threads: 1 });
  const two = await ingest({ corpus: { ...corpus, path: join(dir, 'two'), invalidUtf8: 'replace' }, seed: 3, threads: 2 });
  t.same([one.threads, two.threads], [1, 2]);
  t.ok(one.meta.splits.train.shards > 20, `${one.meta.splits.train.shards} training shards`);
  t.ok(one.meta.splits.train.documents > 16, `${one.meta.splits.train.documents} training documents`);
  t.equal(one.invalidUtf8.replaced, 1);
  const [a, b] = [contents(join(dir, 'one')), contents(join(dir, 'two'))];
  t.same(b.meta, a.meta, 'the same metadata: tokenizer, splits, fingerprint');
  t.equal(b.shards.length, a.shards.length);
  t.ok(a.shards.every((shard, i) => shard.equals(b.shards[i])), 'every shard byte-equal');
});

t.test('a file that changes while the workers encode is an error naming it, and leaves no store', async (t) => {
  const { dir, inputs, corpus } = setup(t);
  const tokenizer = join(dir, 'learned');
  await ingest({ corpus: { ...corpus, path: tokenizer }, seed: 3, threads: 1 });
  const victim = join(inputs, 'set-01', 'text-007.txt');
  const failing = ingest({
    corpus: { ...corpus, tokenizer },
    seed: 3,
    threads: 2,
    onProgress(p) {
      // The scan is done and the tokenizer given: the workers read the file next, shorter than the scan cut it.
      if (p.phase === 'scan' && p.bytesDone === p.bytesTotal && existsSync(victim)) truncateSync(victim, 10);
    },
  });
  await t.rejects(failing, { name: 'CorpusError', message: /input file .*text-007\.txt got shorter while being read/ });
  t.same(readdirSync(dir).sort(), ['learned', 'text'], 'no store, and no partial one');
});

t.test('with the scan on several threads, an input error is the first bad file in listing order', async (t) => {
  const { dir, inputs, corpus } = setup(t);
  writeFileSync(join(inputs, 'set-01', 'zz-binary.txt'), Buffer.from([0x61, 0x62, 0, 0x63]));
  writeFileSync(join(inputs, 'set-00', 'zz-latin-1.txt'), Buffer.from('caf\xe9\n', 'latin1'));
  const failing = ingest({ corpus, seed: 3, threads: 2 });
  await t.rejects(failing, { name: 'CorpusError', message: /input file .*set-00\/zz-latin-1\.txt is not valid UTF-8 at byte offset 3 \(line 1, byte 4/ });
  t.same(readdirSync(dir).sort(), ['text'], 'no store');
});
