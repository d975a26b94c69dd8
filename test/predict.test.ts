/**
 * Predictions from a trained run, for every workload: one tiny run each, shared by its subtests; the encoders'
 * checks of bad input; the click encoder reads rows exactly as the Criteo ingest does.
 */
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, workloadOf } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { openPredictor, predict, type RunPredictor } from '../src/train/predict.js';
import { train } from '../src/train/run.js';
import { clickPredictor } from '../src/workloads/click/predict.js';
import { readCriteo } from '../src/workloads/click/criteo.js';
import { tinyConfig } from './helpers/run.js';
import { clickConfig, imageConfig } from './helpers/tiny-runs.js';

/** Two groups, four steps, checkpoints at 2 and 4: enough for trained weights that differ between groups. */
const short = ['steps=4', 'distill.burnIn=2', 'distill.exchangeEvery=2', 'checkpoint.every=2', 'eval.every=4'];

type Next = { next: { token: string; id: number; p: number }[] };
type Classes = { probs: number[][]; classes: number[] };

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

async function trained(config: Config, ingest = false): Promise<string> {
  if (ingest) await workloadOf(config).ingest(config);
  return (await train({ config })).runDir;
}

async function opened(t: Test, o: Parameters<typeof openPredictor>[0]): Promise<RunPredictor> {
  const p = await openPredictor(o);
  t.teardown(() => p.close());
  return p;
}

t.test('the language model answers the next tokens of a prompt', async (t) => {
  const dir = t.testdir();
  const config = await tinyConfig(dir, 'lm', short);
  const runDir = await trained(config);
  const p = await opened(t, { config, runDir });
  t.equal(p.step, 4, 'the newest checkpoint');
  t.same(p.groups, [0, 1], 'every group: the ensemble');

  const a = (await p.predict('The letters of')) as Next;
  t.equal(a.next.length, 5, 'top 5 by default');
  t.ok(a.next.every((e, i) => i === 0 || e.p <= a.next[i - 1].p), 'most likely first');
  t.ok(a.next.every((e) => e.p > 0 && e.p <= 1 && typeof e.token === 'string' && Number.isInteger(e.id)), 'probabilities in (0, 1], tokens');
  t.same(await p.predict({ text: 'The letters of' }), a, '{ text } is the same input, and the same input gives the same answer');
  const [b, c] = await Promise.all([p.predict('The letters of'), p.predict('verse')]);
  t.same(b, a, 'concurrent requests are answered each in turn');
  t.notSame(c, a, 'another prompt, another answer');

  const all = (await p.predict('The letters of', { topK: 100_000 })) as Next;
  t.equal(all.next.length, await vocabulary(config), 'topK beyond the vocabulary lists every token');
  t.ok(Math.abs(sum(all.next.map((e) => e.p)) - 1) < 1e-4, `the probabilities of all tokens sum to 1 (${sum(all.next.map((e) => e.p))})`);
  t.same(new Set(all.next.map((e) => e.id)).size, all.next.length, 'each token once');
  t.ok(((await p.predict('x'.repeat(2000))) as Next).next.length === 5, 'a prompt longer than the window keeps its last window of tokens');

  const one = await opened(t, { config, runDir, groups: [0] });
  t.notSame(await one.predict('The letters of'), a, "one group's prediction differs from the ensemble's");
  const earlier = await opened(t, { config, runDir, step: 2, groups: [0] });
  t.equal(earlier.step, 2);
  t.notSame(await earlier.predict('The letters of'), await one.predict('The letters of'), 'the same group at an earlier step answers otherwise');

  await t.rejects(p.predict(42), /pass a string or \{ text: string \}, not a number \(42\)/);
  await t.rejects(p.predict({ txt: 'hi' }), /pass a string or \{ text: string \}, not an object/);
  await t.rejects(p.predict(''), /the text is empty/);
  await t.rejects(p.predict('ok', { topK: 0 }), /topK must be a positive integer, got 0/);
  await t.rejects(openPredictor({ config, runDir, step: 3 }), /no checkpoint at step 3 \(there are: 2, 4\)/);
  await t.rejects(openPredictor({ config, runDir, groups: [2] }), /groups: 2 is not a group of the run \(its groups are 0\.\.1\)/);
  await t.rejects(openPredictor({ config, runDir, groups: [] }), /name at least one group/);

  const before = await p.tensors();
  for (let i = 0; i < 5; i++) await p.predict(`The verse ${i}`, { topK: 3 });
  t.equal(await p.tensors(), before, "the actor's tensor count stays flat over predictions");
  await p.close();
  await t.rejects(p.predict('again'), /the predictor is closed/);
});

/** Tokens of the fixture corpus' vocabulary (what the model predicts over). */
async function vocabulary(config: Config): Promise<number> {
  const data = await workloadOf(config).open(config);
  await data.close();
  return data.classes;
}

t.test('click prediction answers p(click) of Criteo rows, with or without the label', async (t) => {
  const dir = t.testdir();
  const config = clickConfig(dir, 'click', short);
  const runDir = await trained(config, true);
  const p = await opened(t, { config, runDir });
  const lines = readFileSync(join(dir, 'valid.txt'), 'utf8').trim().split('\n').slice(0, 8);
  const { p: probs } = (await p.predict(lines)) as { p: number[] };
  t.equal(probs.length, 8, 'one probability per row');
  t.ok(probs.every((x) => x > 0 && x < 1), `each in (0, 1): ${probs}`);
  const unlabelled = lines[3].split('\t').slice(1).join('\t');
  t.same(await p.predict(unlabelled), { p: [probs[3]] }, 'the row without its label column: the same p');
  t.same(await p.predict(`${lines[3]}\r\n`), { p: [probs[3]] }, 'a line end is dropped as in a file');

  await t.rejects(p.predict(7), /pass a line of text or an array of lines, not a number \(7\)/);
  await t.rejects(p.predict([]), /no rows to predict/);
  await t.rejects(p.predict([lines[0], 'a\tb']), /rows\[1\]: 2 fields, expected 40 .* or 39/);
  await t.rejects(p.predict(`${lines[0]}\n${lines[1]}`), /holds a line break/);
  const badHex = lines[0].split('\t');
  badHex[16] = 'xyz';
  await t.rejects(p.predict(badHex.join('\t')), /the row: categorical feature 3 \(field 17\) is "xyz", not hexadecimal/);
  await t.rejects(p.predict(badHex.slice(1).join('\t')), /the row: categorical feature 3 \(field 16\) is "xyz", not hexadecimal/);
});

t.test('the click encoder reads a row exactly as `codistill ingest --format criteo` does', async (t) => {
  const dir = t.testdir();
  const hashing = { buckets: 1000, hashSeed: 5 };
  const cats = Array.from({ length: 26 }, (_, f) => ['', '0A1b', 'DEADbeef', '7'][f % 4]);
  const good = [
    ['1', '-3', '0', '', '12345678901', ...Array(9).fill('2'), ...cats].join('\t'),
    ['0', ...Array(13).fill(''), ...Array(26).fill('')].join('\t'),
  ];
  const rows: { dense: number[]; categorical: number[] }[] = [];
  const file = join(dir, 'rows.txt');
  writeFileSync(file, `${good.join('\n')}\n`);
  await readCriteo(file, { ...hashing, malformed: 'fail' }, (r) => rows.push({ dense: Array.from(r.dense), categorical: Array.from(r.categorical) }));
  const { batch } = clickPredictor(hashing).encode(good);
  t.same(Array.from(batch.fields.dense), rows.flatMap((r) => r.dense), 'the same integer features');
  t.same(Array.from(batch.fields.categorical), rows.flatMap((r) => r.categorical), 'the same hash buckets');

  // Each malformed row: the ingest's reason, in the same words.
  const bad = [
    ['2', ...good[0].split('\t').slice(1)],
    [...good[0].split('\t').slice(0, 3), '1.5', ...good[0].split('\t').slice(4)],
    [...good[0].split('\t').slice(0, 5), '-', ...good[0].split('\t').slice(6)],
    [...good[0].split('\t').slice(0, 20), 'g0', ...good[0].split('\t').slice(21)],
  ].map((f) => f.join('\t'));
  for (const line of bad) {
    writeFileSync(file, `${line}\n`);
    const ingest = await readCriteo(file, { ...hashing, malformed: 'fail' }, () => undefined).then(
      () => 'accepted',
      (e: Error) => e.message.replace(`${file} line 1: `, ''),
    );
    const ours = (() => {
      try {
        clickPredictor(hashing).encode(line);
        return 'accepted';
      } catch (e) {
        return (e as Error).message.replace('the row: ', '');
      }
    })();
    t.equal(ours, ingest, `${ingest}`);
  }
});

t.test('image classification answers class probabilities of 28x28 images', async (t) => {
  const dir = t.testdir();
  const config = imageConfig(dir, 'image', short);
  const runDir = await trained(config, true);
  // A digit as idxSet draws it: a bright band at row 2d + 4.
  const digit = (d: number) => Array.from({ length: 784 }, (_, k) => (Math.floor(k / 28) === 2 * d + 4 ? 230 : 0));
  const one = (await predict({ config, runDir, input: digit(3) })) as Classes;
  t.equal(one.probs.length, 1);
  t.equal(one.probs[0].length, 10, 'ten classes');
  t.ok(Math.abs(sum(one.probs[0]) - 1) < 1e-5, 'probabilities sum to 1');

  const p = await opened(t, { config, runDir });
  const many = (await p.predict([digit(3), Uint8Array.from(digit(7)), digit(0)])) as Classes;
  t.equal(many.probs.length, 3, 'one row per image');
  t.ok(many.probs.every((row) => Math.abs(sum(row) - 1) < 1e-5), 'each image sums to 1');
  t.ok(many.classes.every((c, i) => many.probs[i][c] === Math.max(...many.probs[i])), 'classes: the most likely of each');
  t.same(many.probs[0], one.probs[0], 'the same image, the same answer (one-shot predict() and openPredictor agree)');

  await t.rejects(p.predict('digit'), /an image is 784 pixel values .*got a string/);
  await t.rejects(p.predict([]), /no images to classify/);
  await t.rejects(p.predict(digit(1).slice(1)), /the image has 783 values, expected 784/);
  await t.rejects(p.predict([digit(1), digit(2).map((v) => v / 255)]), /images\[1\] pixel 224 \(row 8, column 0\) is 0\.9\d+: pixels are integers 0\.\.255 .*multiply 0\.\.1 values by 255/);
  await t.rejects(p.predict([digit(1), 'x']), /an array of images; got an array of 2 holding a string/);
});

t.test("a user's workload answers through its arrays predictor; one without a predictor is refused by name", async (t) => {
  const dir = t.testdir();
  const preset = fileURLToPath(new URL('../examples/own-model/config.json', import.meta.url));
  const module = fileURLToPath(new URL('./fixtures/workloads/spirals-predictor.mjs', import.meta.url));
  const set = ['backend=wasm', `runDir=${dir}`, 'steps=4', 'checkpoint.every=4', 'eval.every=4', 'distill.burnIn=2', 'distill.exchangeEvery=2', 'data.rows=600'];
  const config = loadConfig({ preset, set: [...set, `workload=${module}`, 'name=spirals'] });
  const runDir = await trained(config);
  const p = await opened(t, { config, runDir });
  const flat = (await p.predict({ fields: { x: [0.5, 0.5, -1, 2] } })) as Classes;
  t.equal(flat.probs.length, 2, 'two points');
  t.ok(flat.probs.every((row) => row.length === 3 && Math.abs(sum(row) - 1) < 1e-5), 'three classes summing to 1');
  t.same(await p.predict({ fields: { x: [[0.5, 0.5], [-1, 2]] } }), flat, 'rows as nested arrays: the same');
  await t.rejects(p.predict({ fields: {} }), /field "x" is missing: the fields are x, label/);
  await t.rejects(p.predict({ fields: { x: [1, 2], y: [3] } }), /unknown field "y": the fields are x, label/);
  await t.rejects(p.predict({ fields: { x: [1, 2, 3] } }), /field "x" has 3 values: a whole number of rows of 2/);
  await t.rejects(p.predict({ fields: { x: [1, 'a'] } }), /field "x" row 0 value 1: a string \("a"\) is not a finite number/);
  await t.rejects(p.predict([1, 2]), /pass \{ fields: \{ x, label \} \}/);

  const plain = loadConfig({ preset, set: [...set, 'name=plain'] });
  await t.rejects(openPredictor({ config: plain, runDir }), /the workload "spirals" \(.*workload\.mjs\) has no predictor/);
});
