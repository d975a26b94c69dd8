import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CorpusConfig, LM_DEFAULTS } from '../src/workloads/lm/config.js';
import { ingest } from '../src/workloads/lm/corpus/ingest.js';
import { Corpus, type CorpusMeta, CorpusWriter, readCorpusMeta, type Split, SPLITS } from '../src/workloads/lm/corpus/store.js';
import { loadTokenizer } from '../src/workloads/lm/corpus/tokenizer.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'text');
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** A corpus config over a copy of the fixtures in a fresh temp dir (tests may change the copy). */
function setup(t: Test, over: Partial<CorpusConfig> = {}): { dir: string; inputs: string; corpus: CorpusConfig } {
  const dir = t.testdir();
  const inputs = join(dir, 'text');
  cpSync(fixtures, inputs, { recursive: true });
  const corpus: CorpusConfig = {
    ...LM_DEFAULTS.corpus,
    path: join(dir, 'corpus'),
    inputs: [inputs],
    vocabSize: 300,
    minFrequency: 1,
    shardTokens: 1024,
    validationFraction: 0.3,
    maxDocumentBytes: 1024,
    ...over,
  };
  return { dir, inputs, corpus };
}

/** The documents of the fixtures as ingestion should cut them: whole lines, at most `max` bytes each. */
function expectedDocuments(inputs: string, max: number): string[] {
  const docs: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(join(dir, e.name));
      else {
        let doc = '';
        for (const line of readFileSync(join(dir, e.name), 'utf8').split(/(?<=\n)/)) {
          if (Buffer.byteLength(doc + line) > max) {
            docs.push(doc);
            doc = '';
          }
          doc += line;
        }
        docs.push(doc);
      }
    }
  };
  walk(inputs);
  return docs;
}

/** Each split's tokens, read back from the store, checking shard sizes on the way. */
function readSplits(t: Test, path: string): Record<Split, number[]> {
  const corpus = Corpus.open(path);
  try {
    const out = {} as Record<Split, number[]>;
    for (const split of SPLITS) {
      out[split] = [];
      const n = corpus.shardCount(split);
      for (let i = 0; i < n; i++) {
        const shard = corpus.shard(split, i);
        t.equal(shard.length, corpus.shardLength(split, i));
        if (i < n - 1) t.equal(shard.length, corpus.meta.shardTokens, `${split} shard ${i} is full`);
        out[split].push(...shard);
      }
    }
    return out;
  } finally {
    corpus.close();
  }
}

/** The documents of a token stream (split at <|eod|>), decoded. */
function documentsOf(meta: CorpusMeta, tokens: number[]): string[] {
  const tok = loadTokenizer(meta.tokenizer);
  const docs: string[] = [];
  let start = 0;
  tokens.forEach((id, i) => {
    if (id === tok.eod) {
      docs.push(tok.decode(tokens.slice(start, i)));
      start = i + 1;
    }
  });
  return docs;
}

t.test('ingesting a folder writes every document, encoded and followed by <|eod|>, into full shards', async (t) => {
  const { inputs, corpus } = setup(t);
  const result = await ingest({ corpus, seed: 7 });
  t.equal(result.skipped, false);
  const { meta } = result;
  t.equal(meta.tokenizer.vocabSize, 300);
  t.equal(meta.tokenDtype, 'uint16');
  t.equal(meta.inputs.files.length, 6);

  const expected = expectedDocuments(inputs, corpus.maxDocumentBytes);
  t.equal(expected.length, 8, 'the two essays are cut in two');
  const tokens = readSplits(t, corpus.path);
  const tok = loadTokenizer(meta.tokenizer);
  let total = 0;
  for (const doc of expected) total += tok.encode(doc).length + 1;
  t.equal(tokens.train.length + tokens.validation.length, total, 'tokens = encoded documents + one <|eod|> each');

  const docs = { train: documentsOf(meta, tokens.train), validation: documentsOf(meta, tokens.validation) };
  t.equal(docs.validation.length, 2, 'round(0.3 * 8) documents held out');
  t.same([...docs.train, ...docs.validation].sort(), [...expected].sort(), 'each document in exactly one split');
  for (const split of SPLITS) {
    t.equal(meta.splits[split].documents, docs[split].length);
    t.equal(meta.splits[split].tokens, tokens[split].length);
    t.equal(meta.splits[split].shards, Math.ceil(tokens[split].length / corpus.shardTokens));
    const order = docs[split].map((d) => expected.indexOf(d));
    t.same(order, [...order].sort((a, b) => a - b), `${split} keeps the input order`);
  }
});

t.test('the split is seeded: the same seed gives the same split, another seed another one', async (t) => {
  const { dir, corpus } = setup(t);
  const validationOf = async (seed: number, path: string) => {
    const { meta } = await ingest({ corpus: { ...corpus, path }, seed });
    return documentsOf(meta, readSplits(t, path).validation);
  };
  const a = await validationOf(1, join(dir, 'a'));
  t.same(await validationOf(1, join(dir, 'b')), a);
  t.notSame(await validationOf(2, join(dir, 'c')), a);
  t.equal(readCorpusMeta(join(dir, 'a')).tokenizer.json, readCorpusMeta(join(dir, 'b')).tokenizer.json, 'same tokenizer');
});

t.test('re-running on the same inputs and settings is a no-op', async (t) => {
  const { inputs, corpus } = setup(t);
  const first = await ingest({ corpus, seed: 1 });
  const again = await ingest({ corpus, seed: 1 });
  t.equal(again.skipped, true);
  t.equal(again.meta.createdAt, first.meta.createdAt, 'the store was not rewritten');
  const phases = new Set<string>();
  await ingest({ corpus, seed: 1, onProgress: (p) => phases.add(p.phase) });
  t.same([...phases], [], 'unchanged files are not even read again');

  const touched = join(inputs, 'verse', 'counting.txt');
  writeFileSync(touched, readFileSync(touched)); // same bytes, new modification time
  const rescanned = await ingest({ corpus, seed: 1, onProgress: (p) => phases.add(p.phase) });
  t.equal(rescanned.skipped, true, 'same content after a touch');
  t.same([...phases], ['scan'], 'a touched file is hashed again, nothing more');
});

t.test('other inputs or settings are refused without --force and rebuilt with it', async (t) => {
  const { inputs, corpus } = setup(t);
  const first = await ingest({ corpus, seed: 1 });
  writeFileSync(join(inputs, 'letters', 'postscript.txt'), 'P.S. The cat sends her regards.\n');
  await t.rejects(ingest({ corpus, seed: 1 }), /not replacing the corpus .*1 file\(s\) added.*--force/);
  t.equal(readCorpusMeta(corpus.path).createdAt, first.meta.createdAt, 'the old store is untouched');
  await t.rejects(ingest({ corpus: { ...corpus, vocabSize: 280 }, seed: 1 }), /vocabSize 300 -> 280/);

  const forced = await ingest({ corpus, seed: 1, force: true });
  t.equal(forced.skipped, false);
  t.equal(forced.meta.splits.train.documents + forced.meta.splits.validation.documents, 9);
  t.equal((await ingest({ corpus, seed: 1 })).skipped, true, 'and the rebuilt store is current');
});

t.test('bad input fails before any store is written and leaves the old store intact', async (t) => {
  const cases: [string, (inputs: string) => void, RegExp][] = [
    ['missing', () => {}, /input .*missing\.txt does not exist/],
    ['empty', (dir) => writeFileSync(join(dir, 'empty.txt'), ''), /empty\.txt is empty/],
    ['binary', (dir) => writeFileSync(join(dir, 'img.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])),
      /img\.png looks binary: it holds a NUL byte at byte offset 8 \(line 3, byte 1/],
    ['utf-8', (dir) => writeFileSync(join(dir, 'old.txt'), Buffer.from('caf\xe9 au lait\n', 'latin1')),
      /old\.txt is not valid UTF-8 at byte offset 3 \(line 1, byte 4/],
  ];
  for (const [name, spoil, error] of cases) {
    await t.test(name, async (t) => {
      const { dir, inputs, corpus } = setup(t);
      spoil(inputs);
      const bad = { ...corpus, inputs: name === 'missing' ? [join(dir, 'missing.txt')] : [inputs] };
      await t.rejects(ingest({ corpus: bad, seed: 1 }), error);
      t.notOk(existsSync(corpus.path), 'no store');
      t.same(readdirSync(dir).sort(), ['text'], 'no partial store either');

      const old = await ingest({ corpus: { ...corpus, inputs: [join(inputs, 'essays')] }, seed: 1 });
      await t.rejects(ingest({ corpus: bad, seed: 1, force: true }), error);
      t.equal(readCorpusMeta(corpus.path).createdAt, old.meta.createdAt, 'the old store is intact');
    });
  }
});

t.test('a failure while encoding removes the partial store and keeps the old one', async (t) => {
  const { dir, corpus } = setup(t);
  const old = await ingest({ corpus, seed: 1 });
  const failing = ingest({
    corpus: { ...corpus, shardTokens: 2048 },
    seed: 1,
    force: true,
    onProgress(p) {
      if (p.phase === 'encode' && p.documents === 3) throw new Error('disk on fire');
    },
  });
  await t.rejects(failing, /disk on fire/);
  t.equal(readCorpusMeta(corpus.path).createdAt, old.meta.createdAt);
  t.same(readdirSync(dir).sort(), ['corpus', 'text'], 'nothing half-written next to it');
});

t.test('a store in another format version or from another tokenizer library is refused clearly', async (t) => {
  const { corpus } = setup(t);
  const { meta } = await ingest({ corpus, seed: 1 });
  const rewrite = async (changed: CorpusMeta) => {
    const writer = new CorpusWriter(corpus.path);
    await writer.commit(changed);
  };

  await rewrite({ ...meta, version: 99 });
  t.throws(() => Corpus.open(corpus.path), /corpus format version 99; this codistill reads version 1: re-run `codistill ingest --force`/);
  await t.rejects(ingest({ corpus, seed: 1 }), /not replacing the corpus .*format version 99.*--force/);
  t.equal((await ingest({ corpus, seed: 1, force: true })).skipped, false, '--force rebuilds it');

  await rewrite({ ...meta, tokenizer: { ...meta.tokenizer, library: 'sentencepiece@0.2.0' } });
  const stored = readCorpusMeta(corpus.path);
  t.throws(() => loadTokenizer(stored.tokenizer), /from sentencepiece@0\.2\.0; this codistill reads codistill-bpe@1/);
  await t.rejects(ingest({ corpus, seed: 1 }), /not replacing the corpus .*tokenizer .*sentencepiece@0\.2\.0/);
});

t.test('a path that is not a corpus store is never replaced, even with --force', async (t) => {
  const { dir, corpus } = setup(t);
  const precious = join(dir, 'precious');
  cpSync(fixtures, precious, { recursive: true });
  await t.rejects(ingest({ corpus: { ...corpus, path: precious }, seed: 1, force: true }), /exists and is not a corpus store/);
  t.ok(existsSync(join(precious, 'essays', 'bees.txt')));
});

t.test('settings that cannot work are refused before any input is read', async (t) => {
  const { corpus } = setup(t);
  let progress = 0;
  await t.rejects(
    ingest({ corpus: { ...corpus, vocabSize: 200 }, seed: 1, onProgress: () => progress++ }),
    /corpus\.vocabSize = 200 is too small/,
  );
  t.equal(progress, 0);
});

t.test('the tokenizer learns from a bounded sample of the training split', async (t) => {
  const { inputs, corpus } = setup(t, { tokenizerSampleBytes: 2048 });
  let sampled = 0;
  let sampledDocs = 0;
  const { meta } = await ingest({
    corpus,
    seed: 1,
    onProgress(p) {
      if (p.phase === 'tokenizer') [sampled, sampledDocs] = [p.bytesTotal, p.documents];
    },
  });
  t.ok(sampled > 0 && sampled <= 2048, `${sampled} bytes sampled`);
  t.ok(sampledDocs < meta.splits.train.documents, `${sampledDocs} of ${meta.splits.train.documents} documents`);
  const tokens = readSplits(t, corpus.path);
  const all = [...documentsOf(meta, tokens.train), ...documentsOf(meta, tokens.validation)];
  t.same(all.sort(), expectedDocuments(inputs, corpus.maxDocumentBytes).sort(), 'every document still encodes losslessly');
});

t.test('leftovers of a killed ingest are cleaned up, and a store it was replacing is put back', async (t) => {
  const { dir, corpus } = setup(t);
  const dead = spawnSync(process.execPath, ['-e', '']).pid; // a process id that has exited
  await ingest({ corpus, seed: 1 });
  renameSync(corpus.path, `${corpus.path}.old-${dead}`); // killed between its two renames
  mkdirSync(`${corpus.path}.partial-${dead}`);
  t.equal((await ingest({ corpus, seed: 1 })).skipped, true, 'the old store is back and current');
  t.same(readdirSync(dir).sort(), ['corpus', 'text']);
});
