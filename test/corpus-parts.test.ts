/** A corpus built in parts: dealt whole files, read as one corpus, a failed part re-run alone, foreign parts refused. */
import t from 'tap';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type CorpusConfig, LM_DEFAULTS } from '../src/workloads/lm/config.js';
import { type IngestResult, ingest } from '../src/workloads/lm/corpus/ingest.js';
import { listInputs } from '../src/workloads/lm/corpus/inputs.js';
import { partName, type PartRef, readManifest } from '../src/workloads/lm/corpus/parts-folder.js';
import { PartsLayout } from '../src/workloads/lm/corpus/parts-layout.js';
import { filesOfPart } from '../src/workloads/lm/corpus/parts.js';
import { Corpus, type CorpusMeta, CorpusWriter, readCorpusMeta, type TokenArray } from '../src/workloads/lm/corpus/store.js';
import { TOKENIZER_FILE_FORMAT, TOKENIZER_FILE_VERSION, writeTokenizerFile } from '../src/workloads/lm/corpus/tokenizer-file.js';
import { learnFromInputs } from '../src/workloads/lm/corpus/tokenizer-learn.js';
import { createReaderPool, openBatchStream } from '../src/workloads/lm/data/batches.js';
import { groupOrder } from '../src/workloads/lm/data/order.js';
import { writeTextCorpus } from './helpers/text-corpus.js';

const SEED = 4;
const root = t.testdir();
const inputs = writeTextCorpus(join(root, 'text'), { files: 12, bytes: 12_000, seed: 11 });
const base: CorpusConfig = {
  ...LM_DEFAULTS.corpus,
  inputs: [inputs],
  vocabSize: 300,
  minFrequency: 2,
  shardTokens: 1024,
  validationFraction: 0.1,
  maxDocumentBytes: 8 << 10,
};

/** Learns a tokenizer from the inputs into a tokenizer file, as `codistill tokenizer learn` does. */
async function tokenizerFile(path: string, over: Partial<CorpusConfig> = {}): Promise<string> {
  const { meta, learnedFrom } = await learnFromInputs({ ...base, ...over }, SEED);
  writeTokenizerFile(path, { format: TOKENIZER_FILE_FORMAT, version: TOKENIZER_FILE_VERSION, tokenizer: meta, learnedFrom, createdAt: '' });
  return path;
}

const tokenizer = join(root, 'tokenizer.json');
const partOf = (dir: string, index: number, count = 3, over: Partial<CorpusConfig> = {}, onProgress?: Parameters<typeof ingest>[0]['onProgress']): Promise<IngestResult> =>
  ingest({ corpus: { ...base, path: dir, tokenizer, ...over }, seed: SEED, threads: 1, part: { index, count }, onProgress });
const clean = join(root, 'clean');

t.before(async () => {
  await tokenizerFile(tokenizer);
  for (const index of [0, 1, 2]) await partOf(clean, index);
});

/** A copy of the clean 3-part corpus to spoil, in `dir`. */
function copyOfClean(dir: string): string {
  const copy = join(dir, 'corpus');
  cpSync(clean, copy, { recursive: true });
  return copy;
}

t.test('the input files are dealt to the parts whole: disjoint, covering the list, balanced to within a file', async (t) => {
  const files = listInputs([inputs]);
  const parts = [0, 1, 2].map((index) => filesOfPart(files, { index, count: 3 }));
  const names = parts.flat().map((f) => f.name);
  t.same([...names].sort(), files.map((f) => f.name).sort(), 'every file in exactly one part');
  t.equal(new Set(names).size, files.length);
  const bytes = parts.map((p) => p.reduce((sum, f) => sum + f.bytes, 0));
  const largest = Math.max(...files.map((f) => f.bytes));
  t.ok(Math.max(...bytes) - Math.min(...bytes) <= largest, `part bytes ${bytes.join(', ')} within one file (${largest})`);
  t.same(parts[0].slice(0, 1).map((f) => f.name), [files[0].name], 'neighbouring files go to different parts');
  t.throws(() => filesOfPart(files, { index: 12, count: 13 }), /part 12\/13 gets no input files: 12 file\(s\) cannot fill 13 parts/);
});

t.test('a 3-part corpus read as one visits every shard of every part exactly once an epoch', async (t) => {
  const manifest = readManifest(clean);
  t.equal(manifest.parts.length, 3);
  const parts = [0, 1, 2].map((index) => Corpus.open(join(clean, partName({ index, count: 3 }))));
  const corpus = Corpus.open(clean);
  t.teardown(() => [...parts, corpus].forEach((c) => c.close()));
  const S = base.shardTokens;
  const layout = new PartsLayout(S, parts.map((p) => p.meta.splits.train.tokens));
  const shards = corpus.shardCount('train');
  t.equal(shards, layout.shards);
  t.ok(parts.every((p) => p.meta.splits.train.tokens % S !== 0), 'every part ends its split with a short shard');
  t.ok(shards > 30, `${shards} training shards`);

  // The shards as one corpus: every part's full shards, part after part, then the parts' tails joined, all full but the last.
  const concat = (arrays: TokenArray[]) => arrays.flatMap((a) => Array.from(a));
  const fullOf = (p: Corpus) => Math.floor(p.meta.splits.train.tokens / S);
  const expected = [
    ...parts.flatMap((p) => concat(Array.from({ length: fullOf(p) }, (_, i) => p.shard('train', i)))),
    ...parts.flatMap((p) => Array.from(p.shard('train', fullOf(p)))),
  ];
  const read = Array.from({ length: shards }, (_, i) => corpus.shard('train', i));
  t.ok(read.slice(0, -1).every((s) => s.length === S), 'every shard but the last is full');
  t.same(concat(read), expected, 'the tokens of every part, each once');
  t.same(Array.from(corpus.shardBytesFast('train', shards - 1)), Array.from(corpus.shardBytes('train', shards - 1)), 'the fast read of a joined shard too');

  // Two groups' data orders deal the shards disjointly; an epoch visits each of a group's shards once.
  const spec = { corpusPath: clean, split: 'train' as const, groups: 2, sameData: false, window: 16, batch: 4, seed: 9, shuffleShards: 4 };
  const orders = [0, 1].map((group) => groupOrder({ ...spec, group }));
  const visited = orders.flatMap((o) => Array.from(o.shardOrder(0)));
  t.same([...visited].sort((a, b) => a - b), Array.from({ length: shards }, (_, i) => i), 'every shard of the corpus once an epoch');
  const covered = new Map<string, [number, number][]>();
  for (const shard of visited) {
    for (const piece of layout.locate(shard)) {
      const key = `${piece.part}/${piece.shard}`;
      covered.set(key, [...(covered.get(key) ?? []), [piece.from, piece.to]]);
    }
  }
  const partShards = parts.flatMap((p, part) => Array.from({ length: p.shardCount('train') }, (_, shard) => ({ part, shard, length: p.shardLength('train', shard) })));
  const exactlyOnce = partShards.every(({ part, shard, length }) => {
    const ranges = (covered.get(`${part}/${shard}`) ?? []).sort((a, b) => a[0] - b[0]);
    return ranges.length > 0 && ranges[0][0] === 0 && ranges.at(-1)![1] === length && ranges.every((r, i) => i === 0 || r[0] === ranges[i - 1][1]);
  });
  t.ok(exactlyOnce, `each of the parts' ${partShards.length} shards is covered exactly once`);
  t.equal(covered.size, partShards.length);

  // The reader pool reads them: every batch row of an epoch is the corpus' window the order names.
  const pool = createReaderPool(2);
  t.teardown(() => pool.destroy());
  for (const [group, order] of orders.entries()) {
    const stream = openBatchStream({ ...spec, group, pool, prefetch: 8 });
    const windows = [...order.epochWindows(0)];
    let wrong = 0;
    for (let i = 0; i < order.batchesPerEpoch; i++) {
      const b = await stream.next();
      for (let r = 0; r < b.rows; r++) {
        const { shard, offset } = windows[b.index * b.rows + r];
        const want = corpus.shard('train', shard).subarray(offset, offset + b.cols);
        if (Array.from(want).join() !== Array.from(b.data.subarray(r * b.cols, (r + 1) * b.cols)).join()) wrong++;
      }
    }
    await stream.close();
    t.equal(wrong, 0, `group ${group}: ${order.batchesPerEpoch} batches of an epoch read right`);
  }
});

t.test('a part that failed is re-run alone, and the corpus is then the one built without the failure', async (t) => {
  const dir = join(t.testdir(), 'corpus');
  await partOf(dir, 0);
  const failing = partOf(dir, 1, 3, {}, (p) => {
    if (p.phase === 'encode') throw new Error('the machine went away');
  });
  await t.rejects(failing, /the machine went away/);
  const last = await partOf(dir, 2);
  t.same(last.parts && [last.parts.built, last.parts.missing, last.parts.manifest], [[0, 2], [1], undefined], 'part 1 is missing: no manifest');
  t.same(readdirSync(dir).sort(), [partName({ index: 0, count: 3 }), partName({ index: 2, count: 3 })], 'nothing half-written');
  t.throws(() => Corpus.open(dir), /corpus .* is not finished: it holds 2 of its 3 parts and no manifest .*: build part 1\/3 with `codistill ingest --part 1\/3`/);

  const created = [0, 2].map((index) => readCorpusMeta(join(dir, partName({ index, count: 3 }))).createdAt);
  const rerun = await partOf(dir, 1);
  t.ok(rerun.parts?.manifest, 'the re-run part writes the manifest');
  t.same([0, 2].map((index) => readCorpusMeta(join(dir, partName({ index, count: 3 }))).createdAt), created, 'the other parts are left as they were');
  t.same((await partOf(dir, 0)).skipped, true, 'and are up to date');
  const [a, b] = [Corpus.open(dir), Corpus.open(clean)];
  t.teardown(() => [a, b].forEach((c) => c.close()));
  t.same(a.meta.splits, b.meta.splits);
  t.equal(a.meta.inputs.fingerprint, b.meta.inputs.fingerprint);
  const same = Array.from({ length: a.shardCount('train') }, (_, i) => Buffer.from(a.shardBytes('train', i)).equals(Buffer.from(b.shardBytes('train', i))));
  t.ok(same.every(Boolean), 'the same shards');
});

t.test('the manifest is refused when a part is missing or foreign, and a foreign part is not built', async (t) => {
  await t.test('missing', async (t) => {
    const dir = copyOfClean(t.testdir());
    rmSync(join(dir, partName({ index: 1, count: 3 })), { recursive: true });
    t.throws(() => Corpus.open(dir), /corpus .*: part 1\/3 of its manifest is missing: rebuild with `codistill ingest --part 1\/3`/);
  });

  const otherTokenizer = await tokenizerFile(join(t.testdir(), 'other.json'), { vocabSize: 280 });
  await t.test('another tokenizer', async (t) => {
    const scratch = t.testdir();
    const dir = copyOfClean(scratch);
    const other = join(scratch, 'other');
    await partOf(other, 2, 3, { tokenizer: otherTokenizer });
    const foreign: PartRef = { index: 2, count: 3 };
    rmSync(join(dir, partName(foreign)), { recursive: true });
    cpSync(join(other, partName(foreign)), join(dir, partName(foreign)), { recursive: true });
    t.throws(() => Corpus.open(dir), /corpus .*: part 2\/3 \(part-00002-of-00003\) was encoded with another tokenizer .* than the manifest's/);

    rmSync(join(dir, partName(foreign)), { recursive: true });
    await t.rejects(partOf(dir, 2, 3, { tokenizer: otherTokenizer }), /not building part 2\/3 into .*: it differs from part 0\/3 there in its tokenizer \(sha256/);
    t.notOk(existsSync(join(dir, partName(foreign))));
  });

  await t.test('another version', async (t) => {
    const dir = copyOfClean(t.testdir());
    const path = join(dir, partName({ index: 0, count: 3 }));
    const meta = readCorpusMeta(path);
    const rewrite = (changed: CorpusMeta) => new CorpusWriter(path).commit(changed);
    await rewrite({ ...meta, version: 99 });
    t.throws(() => Corpus.open(dir), /part-00000-of-00003 was written in corpus format version 99; this codistill reads version 1/);
    await rewrite({ ...meta, inputs: { ...meta.inputs, settings: { ...meta.inputs.settings, ingest: 99 } } });
    rmSync(join(dir, partName({ index: 1, count: 3 })), { recursive: true });
    await t.rejects(partOf(dir, 1), /not building part 1\/3 into .*: it differs from part 0\/3 there in its codistill ingest version \(1, not 99\)/);
  });
});

t.test('a corpus in one part, with the tokenizer learned beforehand, holds the shards of the same ingest in one piece', async (t) => {
  const dir = t.testdir();
  const whole = await ingest({ corpus: { ...base, path: join(dir, 'whole') }, seed: SEED, threads: 2 });
  const one = await partOf(join(dir, 'parts'), 0, 1);
  t.equal(one.meta.tokenizer.sha256, whole.meta.tokenizer.sha256, 'tokenizer learn learns what the ingest learns');
  const [a, b] = [Corpus.open(join(dir, 'whole')), Corpus.open(join(dir, 'parts'))];
  t.teardown(() => [a, b].forEach((c) => c.close()));
  t.same(b.meta.splits, a.meta.splits);
  for (const split of ['train', 'validation'] as const) {
    const same = Array.from({ length: a.shardCount(split) }, (_, i) => Buffer.from(a.shardBytes(split, i)).equals(Buffer.from(b.shardBytes(split, i))));
    t.ok(same.every(Boolean), `${split}: the same shards`);
  }
});

t.test('a part without a shared tokenizer, or into a corpus in one piece, is refused before anything is read', async (t) => {
  const dir = t.testdir();
  await t.rejects(
    ingest({ corpus: { ...base, path: join(dir, 'p') }, seed: SEED, part: { index: 0, count: 2 } }),
    /--part 0\/2 needs the tokenizer every part shares: learn it once with `codistill tokenizer learn -s corpus.tokenizer=FILE`/,
  );
  t.notOk(existsSync(join(dir, 'p')));
  await t.rejects(partOf(clean, 0, 4), /holds a corpus in 3 parts, not 4: run --part i\/3/);
  await ingest({ corpus: { ...base, path: join(dir, 'whole'), tokenizer }, seed: SEED, threads: 1 });
  await t.rejects(partOf(join(dir, 'whole'), 0, 2), /holds a corpus built in one piece; a corpus in parts needs a folder of its own/);
  await t.rejects(ingest({ corpus: { ...base, path: clean }, seed: SEED }), /holds a corpus in parts: add or rebuild its parts with `codistill ingest --part i\/P`/);
});
