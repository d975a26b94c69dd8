/**
 * Bad input wherever a user gives it: each error names the file, line, key or flag, and the CLI prints it as one
 * line `codistill: ...` with exit code 2 (no stack). Library functions are called directly where they decide;
 * the CLI's own parsing through `main` in this process, and twice through bin/codistill.mjs as a user runs it.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli.js';
import { ensureData } from '../src/commands/ingest.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { loadBudget } from '../src/experiments/budget.js';
import { loadServeOptions } from '../src/serve/options.js';
import { findSyntaxError, parseJsonFile } from '../src/util/json-file.js';
import { clickDataSchema } from '../src/workloads/click/config.js';
import { ingestClick } from '../src/workloads/click/ingest.js';
import { imageDataSchema } from '../src/workloads/image/config.js';
import { ingestImages } from '../src/workloads/image/ingest.js';
import { MNIST_FILES } from '../src/workloads/image/idx.js';
import { lmConfig } from '../src/workloads/lm/config.js';
import { ingest } from '../src/workloads/lm/corpus/ingest.js';
import { listInputs } from '../src/workloads/lm/corpus/inputs.js';
import { lmModelParts } from '../src/workloads/lm/index.js';
import { modelSizeProblems } from '../src/workloads/lm/model-size.js';
import { loadWorkload } from '../src/workloads/registry.js';
import { criteoFile, idxSet } from './helpers/workload-data.js';

const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));
const codistill = (args: string[], cwd: string) => spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });

/** `codistill ARGS` in this process: the exit code and what it wrote to stderr. */
async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'codistill', ...args]), stderr };
  } finally {
    process.stderr.write = write;
  }
}

/** A JSON file with `x` where a comma should be, at line 3 column 15. */
const BAD_JSON = '{\n  "groups": 2,\n  "steps": 20 x\n}\n';

// --- 1. JSON files a user passes ---------------------------------------------------------------------------------

t.test('a preset with a JSON syntax error names its file, line and column', async (t) => {
  const file = join(t.testdir(), 'bad.json');
  writeFileSync(file, BAD_JSON);
  t.throws(() => loadConfig({ preset: file }), {
    name: 'ConfigError',
    message: `preset ${file}:3:15: not valid JSON: unexpected 'x': expected ',' or '}' after the property value`,
  });
});

t.test('a JSON error Node gives no position for still gets its line and column', async (t) => {
  // Node 20 says `Unexpected token 'x', "{...whole text...}" is not valid JSON` here: no position, the text quoted.
  t.throws(() => parseJsonFile('p.json', '{\n  "steps": x\n}'), { message: "p.json:2:12: not valid JSON: unexpected 'x': expected a value" });
  t.throws(() => parseJsonFile('p.json', '{\n  "a": 1,\n}'), { message: /^p\.json:2:9: not valid JSON: a comma before '}'/ });
  t.throws(() => parseJsonFile('p.json', '{\n  "a": "open\n}'), { message: /^p\.json:2:13: not valid JSON: a line break inside a string/ });
  t.throws(() => parseJsonFile('p.json', '{"a": [1, 2'), { message: /^p\.json:1:12: not valid JSON: the file ends inside the array opened at 1:7/ });
  t.throws(() => parseJsonFile('p.json', '{\n  // note\n  "a": 1\n}'), { message: 'p.json:2:3: not valid JSON: JSON has no comments' });
  t.throws(() => parseJsonFile('p.json', ''), { message: 'p.json:1:1: not valid JSON: the file is empty' });
  t.same(parseJsonFile('p.json', '\ufeff{"a": [1, {"b": null}]}'), { a: [1, { b: null }] }, 'a byte-order mark is ignored');
  for (const good of ['{}', '[]', '"x"', '-0.5e+3', '{"a": "\\u00e9\\n"}', ' true ']) t.equal(findSyntaxError(good), undefined, good);
});

t.test('a preset that extends itself is refused, naming the circle', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'a.json'), JSON.stringify({ extends: join(dir, 'b.json') }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ extends: join(dir, 'a.json') }));
  t.throws(() => loadConfig({ preset: join(dir, 'a.json') }), { name: 'ConfigError', message: /"extends" goes round in a circle \(.*a\.json -> .*b\.json -> .*a\.json\)/ });
  t.throws(() => loadConfig({ preset: dir }), { message: `preset ${dir}: is a folder, not a JSON file` });
});

t.test('a serve options file with a JSON syntax error names its file, line and column', async (t) => {
  const file = join(t.testdir(), 'serve.json');
  writeFileSync(file, BAD_JSON);
  t.throws(() => loadServeOptions(file), { name: 'ConfigError', message: new RegExp(`^serve config ${file}:3:15: not valid JSON`) });
  writeFileSync(file, 'null');
  t.throws(() => loadServeOptions(file, { port: 0 }), { name: 'ConfigError', message: /serve\.json must hold a JSON object of options \(host, port/ });
});

t.test('an experiment budget file with a JSON syntax error names its file, line and column', async (t) => {
  const file = join(t.testdir(), 'budget.json');
  writeFileSync(file, BAD_JSON);
  t.throws(() => loadBudget(file), { name: 'ConfigError', message: new RegExp(`^experiment budget ${file}:3:15: not valid JSON`) });
});

// --- 2. Store paths -----------------------------------------------------------------------------------------------

/** A few small text documents, one per file. */
function writeTexts(dir: string, texts: Record<string, string | Buffer>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(texts)) writeFileSync(join(dir, name), text);
  return dir;
}

const PROSE = 'The quick brown fox jumps over the lazy dog, and the dog sleeps on in the sun.\n'.repeat(20);

t.test('a corpus.path of the user\'s own that does not exist is an error naming it, not an ingest of the bundled books', async (t) => {
  const path = join(t.testdir(), 'no-such-corpus');
  const config = loadConfig({ preset: 'tiny', set: [`corpus.path=${path}`] });
  await t.rejects(ensureData(config), {
    name: 'ConfigError',
    message: `corpus.path ${path} does not exist: no store there to train on. Build it with \`codistill ingest -s corpus.path=${path}\``,
  });
  t.notOk(existsSync(path), 'nothing was ingested there');
  const click = loadConfig({ preset: 'criteo-small', set: [`data.path=${path}`] });
  await t.rejects(ensureData(click), { message: new RegExp(`^data\\.path ${path} does not exist`) });
});

t.test('a missing store is still ingested when the config names its inputs, or sits at a preset\'s own path', async (t) => {
  const dir = t.testdir();
  const texts = writeTexts(join(dir, 'texts'), { 'a.txt': PROSE, 'b.txt': PROSE.toUpperCase(), 'c.txt': PROSE.replace(/o/g, '0') });
  const path = join(dir, 'corpus');
  await ensureData(loadConfig({ preset: 'tiny', set: [`corpus.path=${path}`, `corpus.inputs=["${texts}"]`] }));
  t.ok(existsSync(join(path, 'data.mdb')), 'corpus.inputs named: ingested');

  // mnist-small keeps the bundled digits at data/mnist (from the working directory): `npm start`'s kind of path.
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    await ensureData(loadConfig({ preset: 'mnist-small' }));
  } finally {
    process.chdir(cwd);
  }
  t.ok(existsSync(join(dir, 'data', 'mnist', 'data.mdb')), 'the preset\'s own path: the bundled data ingested');
});

t.test('a folder that is not a store, or a file, is refused naming the path, for every workload', async (t) => {
  const dir = t.testdir();
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const texts = writeTexts(join(dir, 'texts'), { 'a.txt': PROSE });
  const file = join(texts, 'a.txt');
  const lm = (path: string) => loadWorkload('lm').open(loadConfig({ preset: 'tiny', set: [`corpus.path=${path}`] }));
  await t.rejects(lm(empty), { name: 'CorpusError', message: `${empty} (corpus.path) is not a codistill corpus store (no data.mdb: the folder is empty)` });
  await t.rejects(lm(texts), { name: 'CorpusError', message: new RegExp(`^${texts} \\(corpus\\.path\\) is not a codistill corpus store \\(no data\\.mdb in it\\): .*codistill ingest`) });
  await t.rejects(lm(file), { name: 'CorpusError', message: `${file} (corpus.path) is a file, not a codistill corpus store` });
  for (const preset of ['criteo-small', 'mnist-small']) {
    const open = (path: string) => loadWorkload(preset === 'criteo-small' ? 'click' : 'image').open(loadConfig({ preset, set: [`data.path=${path}`] }));
    await t.rejects(open(texts), { name: 'RecordError', message: new RegExp(`^${texts} \\(data\\.path\\) is not a codistill record store \\(no data\\.mdb in it\\)`) }, preset);
    await t.rejects(open(join(dir, 'nowhere')), { name: 'RecordError', message: new RegExp(`^no record store at ${dir}/nowhere \\(data\\.path\\): build one with \`codistill ingest`) }, preset);
  }
});

// --- 3. Invalid UTF-8 in text for the language model ---------------------------------------------------------------

/** Three documents; a.txt's byte 0xff sits at byte offset 22, line 3, byte 5 of that line. */
function utf8Inputs(dir: string): string {
  return writeTexts(join(dir, 'in'), {
    'a.txt': Buffer.concat([Buffer.from('line one\nline two\nbad '), Buffer.from([0xff]), Buffer.from(` byte here\n${PROSE}`)]),
    'b.txt': PROSE,
    'c.txt': PROSE.toUpperCase(),
  });
}

const lmCorpus = (dir: string, set: string[] = []) =>
  lmConfig(loadConfig({ preset: 'tiny', set: [`corpus.path=${join(dir, 'corpus')}`, `corpus.inputs=["${utf8Inputs(dir)}"]`, ...set] })).corpus;

t.test('invalid UTF-8 under corpus.invalidUtf8=fail (the default) names the file, line and byte offset, and the key', async (t) => {
  const dir = t.testdir();
  const corpus = lmCorpus(dir);
  t.equal(corpus.invalidUtf8, 'fail', 'fail is the default');
  await t.rejects(ingest({ corpus, seed: 1 }), {
    name: 'CorpusError',
    message:
      `input file ${join(dir, 'in', 'a.txt')} is not valid UTF-8 at byte offset 22 (line 3, byte 5 of the line): ` +
      'set corpus.invalidUtf8=replace (U+FFFD for each bad byte) or skip (leave the file out)',
  });
  t.notOk(existsSync(corpus.path), 'no store');
});

t.test('corpus.invalidUtf8=replace keeps the file, reads U+FFFD for the bad byte, and the summary counts it', async (t) => {
  const dir = t.testdir();
  const corpus = lmCorpus(dir, ['corpus.invalidUtf8=replace']);
  const result = await ingest({ corpus, seed: 1 });
  t.same(result.invalidUtf8, { replaced: 1, skipped: 0, files: [{ name: 'in/a.txt', offset: 22, line: 3, action: 'replaced' }] });
  t.equal(result.meta.splits.train.documents + result.meta.splits.validation.documents, 3, 'every document is in');

  // What `codistill ingest` prints, and the same again from the store when there is nothing to do.
  const config = loadConfig({ preset: 'tiny', set: [`corpus.path=${corpus.path}`, `corpus.inputs=["${join(dir, 'in')}"]`, 'corpus.invalidUtf8=replace'] });
  const report = await loadWorkload('lm').ingest(config, {});
  t.ok(report.upToDate);
  t.ok(report.notes.includes('invalid UTF-8 in 1 file(s), read with U+FFFD for each bad byte (corpus.invalidUtf8=replace): in/a.txt (line 3, byte offset 22)'), report.notes.join('\n'));

  // The policy counts as an ingest setting once it changed what was built: another policy is refused without --force.
  await t.rejects(ingest({ corpus: { ...corpus, invalidUtf8: 'skip' }, seed: 1 }), /not replacing the corpus .*invalidUtf8 replace -> skip\. Pass --force/);
});

t.test('corpus.invalidUtf8=skip leaves the file out, and the summary counts it', async (t) => {
  const dir = t.testdir();
  const corpus = lmCorpus(dir, ['corpus.invalidUtf8=skip']);
  const result = await ingest({ corpus, seed: 1 });
  t.same(result.invalidUtf8, { replaced: 0, skipped: 1, files: [{ name: 'in/a.txt', offset: 22, line: 3, action: 'skipped' }] });
  t.equal(result.meta.splits.train.documents + result.meta.splits.validation.documents, 2, 'a.txt is left out');
  t.match(result.meta.inputs.files.find((f) => f.path === 'in/a.txt'), { documents: 0, invalidUtf8: { action: 'skipped' } });
  const report = await loadWorkload('lm').ingest(loadConfig({ preset: 'tiny', set: [`corpus.path=${corpus.path}`, `corpus.inputs=["${join(dir, 'in')}"]`, 'corpus.invalidUtf8=skip'] }), {});
  t.ok(report.notes.includes('left out 1 file(s) of invalid UTF-8 (corpus.invalidUtf8=skip): in/a.txt (line 3, byte offset 22)'), report.notes.join('\n'));
});

t.test('a store of valid text is up to date under any corpus.invalidUtf8', async (t) => {
  const dir = t.testdir();
  const inputs = writeTexts(join(dir, 'in'), { 'b.txt': PROSE, 'c.txt': PROSE.toUpperCase() });
  const corpus = lmConfig(loadConfig({ preset: 'tiny', set: [`corpus.path=${join(dir, 'corpus')}`, `corpus.inputs=["${inputs}"]`] })).corpus;
  t.notOk((await ingest({ corpus, seed: 1 })).skipped);
  for (const invalidUtf8 of ['replace', 'skip'] as const) t.ok((await ingest({ corpus: { ...corpus, invalidUtf8 }, seed: 1 })).skipped, invalidUtf8);
});

// --- 4. Models too large to allocate -------------------------------------------------------------------------------

t.test('a model too large to allocate is a config error naming its keys and parameter count', async (t) => {
  t.throws(() => loadConfig({ preset: 'tiny', set: ['model.hidden=1e9'] }), {
    name: 'ConfigError',
    message: /^config keys model\.hidden, model\.layers: the model would have 4\.0e18 parameters \(16 EB of float32, 4\.0e18 of them in the LSTM layers .*over the 2\.1e9 \(2\^31-1\) one model can hold: lower model\.hidden \/ model\.layers$/,
  });
  t.throws(() => loadConfig({ preset: 'criteo-small', set: ['data.buckets=1000000000', 'model.embedding=100'] }), {
    message: /^config keys data\.buckets, model\.embedding: the model would have 1\.0e11 parameters \(400 GB of float32.*lower data\.buckets \/ model\.embedding$/,
  });
  t.throws(() => loadConfig({ preset: 'mnist-small', set: ['model.dense=100000000'] }), { message: /^config keys model\.dense, model\.filters: the model would have .* parameters/ });
  t.throws(() => loadConfig({ preset: 'mnist-small', set: ['model.filters=[4,4,4,4,4]'] }), {
    message: 'config key "model.filters": 5 layers, each with a 2x2 max-pool, shrink a 28x28 image to nothing: at most 4 layers',
  });
  t.ok(loadConfig({ preset: 'lm-paper' }), 'the largest preset passes');

  // Under the one-array limit, but more than the machine's memory once every replica holds a copy.
  const parts = lmModelParts({ embedding: 64, hidden: 4096, layers: 2, layerNorm: false, window: 32, carryState: false }, 8000);
  t.same(modelSizeProblems(parts, 1, 64e9), []);
  t.match(modelSizeProblems(parts, 8, 1e9), [/its 8 replicas' copies of the weights alone need .* GB, more than this machine's 1\.0 GB of memory: lower .*model\.hidden.* or replicas$/]);
});

// --- 5. Command-line arguments -------------------------------------------------------------------------------------

t.test('a bad command-line argument is one line naming the flag, with exit code 2', async (t) => {
  const dir = t.testdir();
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'run', 'config.json'), JSON.stringify(loadConfig({ preset: 'tiny' })));
  mkdirSync(join(dir, 'broken'));
  writeFileSync(join(dir, 'broken', 'config.json'), '{"steps": 20,,}');
  const cases: [string[], RegExp][] = [
    [['serve', '--port', 'abc'], /^codistill: option '--port <n>' argument 'abc' is invalid\. a port is a whole number from 0 to 65535/],
    [['serve', '--port', '70000'], /^codistill: option '--port <n>' argument '70000' is invalid/],
    [['serve', '--body-limit', '-5'], /^codistill: option '--body-limit <bytes>' argument '-5' is invalid\. a whole number of bytes, at least 1024/],
    [['predict', 'run', 'X', '-k', 'zero'], /^codistill: option '-k, --top-k <k>' argument 'zero' is invalid/],
    [['predict', 'run', 'X', '--step', 'abc'], /^codistill: option '--step <n>' argument 'abc' is invalid\. a step is a non-negative integer/],
    [['predict', 'run', 'X', '--groups', '0,x'], /^codistill: option '--groups <list>' argument '0,x' is invalid\. "x" is not a group index/],
    [['evaluate', 'run', '--step', '-1'], /^codistill: option '--step <n>' argument '-1' is invalid/],
    [['train', '--group', 'one'], /^codistill: option '--group \[index\]' argument 'one' is invalid\. a group index is a whole number/],
    [['train', '--resume', join(dir, 'nowhere')], /^codistill: option '--resume <runDir>' argument '.*nowhere' is invalid\. .*nowhere does not exist/],
    [['frobnicate'], /^codistill: unknown command 'frobnicate' \(see `codistill --help`\)\n$/],
    [['predict', join(dir, 'run')], /^codistill: missing required argument 'input' \(see `codistill predict --help`\)\n$/],
    [['train', '--bogus'], /^codistill: unknown option '--bogus' \(see `codistill train --help`\)\n$/],
    [['evaluate', dir], /^codistill: .* is not a run folder: it has no config\.json\n$/],
    [['evaluate', join(dir, 'broken')], /^codistill: run config .*broken\/config\.json:1:14: not valid JSON: unexpected ",": expected a property name/],
    [['predict', join(dir, 'run'), '[1, 2', '--json'], /^codistill: --json: the input is not JSON at column 6: the input ends inside the array opened at 1:1/],
    [['train', '-p', 'tiny', '-s', `corpus.path=${join(dir, 'typo')}`], /^codistill: corpus\.path .*typo does not exist/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
  }
  t.equal((await run(['train', '--help'])).code, 0, '--help still exits 0');
});

t.test('through bin/codistill.mjs: a bad preset file and an unknown command exit 2 with one line and no stack', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'bad.json'), BAD_JSON);
  const preset = codistill(['train', '-p', './bad.json'], dir);
  t.equal(preset.status, 2, preset.stderr);
  t.equal(preset.stderr, `codistill: preset ${join(dir, 'bad.json')}:3:15: not valid JSON: unexpected 'x': expected ',' or '}' after the property value\n`);
  const unknown = codistill(['frobnicate'], dir);
  t.equal(unknown.status, 2);
  t.equal(unknown.stderr, "codistill: unknown command 'frobnicate' (see `codistill --help`)\n");
});

t.test('a kernel set the backend cannot run is one error and exit 2, not a hang: its actors close', async (t) => {
  const dir = t.testdir();
  const args = ['train', '-p', 'tiny', '-s', 'steps=2', '-s', `runDir=${dir}`, '-s', 'name=k'];
  // A timeout, so that a process kept alive by a worker that failed to start fails the test instead of blocking it.
  const r = spawnSync(process.execPath, [cli, ...args, '-s', 'backend=cpu', '-s', 'kernels=native'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, CI: '1' } });
  t.equal(r.signal, null, 'ended by itself');
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /kernels = native runs under the wasm backend, not 'cpu'/);
});

// --- 6. Click rows and image files ---------------------------------------------------------------------------------

t.test('malformed click rows name the file and line, or are skipped and counted', async (t) => {
  const dir = t.testdir();
  const good = `0${'\t1'.repeat(13)}${'\tdeadbeef'.repeat(26)}`;
  criteoFile(join(dir, 'train.txt'), 200, 1);
  writeFileSync(join(dir, 'bad.txt'), `${good}\n${good}\n1\t2\t3\n${good}\n`);
  const data = (o: Record<string, unknown>) => clickDataSchema.parse({ path: join(dir, 'store'), shardRows: 64, ...o });
  const files = { inputs: [join(dir, 'train.txt'), join(dir, 'bad.txt')] };
  await t.rejects(ingestClick(data(files)), { name: 'CriteoRowError', message: `${join(dir, 'bad.txt')} line 3: 3 fields, expected 40` });
  const report = await ingestClick(data({ ...files, malformed: 'skip' }));
  t.ok(report.notes.includes('skipped 1 malformed row: 1 field count'), report.notes.join('\n'));
  writeFileSync(join(dir, 'all-bad.txt'), '1\t2\t3\n');
  await t.rejects(ingestClick(data({ inputs: [join(dir, 'all-bad.txt')], malformed: 'skip', path: join(dir, 'other') })), {
    message: `no training rows: ${join(dir, 'all-bad.txt')} holds no well-formed row (data.malformed=skip skipped 1 field count)`,
  });
});

t.test('empty, missing and folder click inputs name the path', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'empty.txt'), '');
  const data = (inputs: string[]) => clickDataSchema.parse({ path: join(dir, 'store'), inputs });
  await t.rejects(ingestClick(data([join(dir, 'empty.txt')])), { message: `input file ${join(dir, 'empty.txt')} is empty (data.inputs)` });
  await t.rejects(ingestClick(data([join(dir, 'nope.txt')])), { message: `input file ${join(dir, 'nope.txt')} does not exist (data.inputs)` });
  await t.rejects(ingestClick(data([dir])), { message: `input ${dir} is not a regular file but a folder (data.inputs: list the files themselves, e.g. ${join(dir, '*')})` });
});

t.test('a truncated, wrong-magic or empty IDX file, and a source folder without them, are errors naming the file', async (t) => {
  const dir = t.testdir();
  const source = join(dir, 'idx');
  const data = (o: Record<string, unknown> = {}) => imageDataSchema.parse({ path: join(dir, 'store'), source, ...o });
  const images = join(source, MNIST_FILES.train.images);
  const fresh = () => idxSet(source, 20, 10);

  fresh();
  writeFileSync(images, readFileSync(images).subarray(0, 1000));
  await t.rejects(ingestImages(data()), { name: 'IdxError', message: `${images}: truncated: 15696 bytes expected, 1000 found (dimensions 20x28x28)` });
  fresh();
  writeFileSync(images, Buffer.from('PK\x03\x04 this is a zip file'));
  await t.rejects(ingestImages(data()), { name: 'IdxError', message: `${images}: not an IDX file: magic number 0x504b0304, expected 0x00000803` });
  writeFileSync(images, '');
  await t.rejects(ingestImages(data()), { name: 'IdxError', message: `${images}: empty file` });

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  writeFileSync(join(empty, `${MNIST_FILES.train.images}.gz`), 'gzip');
  await t.rejects(ingestImages(data({ source: empty })), { message: new RegExp(`^data\\.source ${empty} holds none of the four MNIST IDX files .*: they are gzipped there`) });
  await t.rejects(ingestImages(data({ source: join(dir, 'nowhere') })), { message: new RegExp(`^data\\.source ${dir}/nowhere does not exist`) });
  t.notOk(existsSync(join(dir, 'store')), 'no store was written');
});

// --- 7. Text inputs: empty files and folders, missing paths --------------------------------------------------------

t.test('an empty text file, an empty folder and a missing path are errors naming the path', async (t) => {
  const dir = t.testdir();
  mkdirSync(join(dir, 'empty'));
  writeTexts(join(dir, 'hidden'), { '.notes': PROSE });
  writeFileSync(join(dir, 'empty.txt'), '');
  t.throws(() => listInputs([join(dir, 'nope')]), { name: 'CorpusError', message: `input ${join(dir, 'nope')} does not exist (corpus.inputs)` });
  t.throws(() => listInputs([join(dir, 'empty')]), { message: `input folder ${join(dir, 'empty')} holds no files (hidden ones, named .*, are not read)` });
  t.throws(() => listInputs([join(dir, 'hidden')]), { message: /hidden holds no files \(hidden ones/ });
  const config: Config = loadConfig({ preset: 'tiny', set: [`corpus.path=${join(dir, 'corpus')}`] });
  await t.rejects(loadWorkload('lm').ingest(config, { inputs: [join(dir, 'empty.txt')] }), { message: `input file ${join(dir, 'empty.txt')} is empty` });
});
