/** `codistill tokenizer learn` and `codistill ingest --part` as a user runs them: a corpus in parts, then training on it. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePartFlag } from '../src/commands/ingest.js';
import { loadConfig } from '../src/config/load.js';
import { launchIndexOf } from '../src/util/launch-index.js';
import { learnTokenizerFile } from '../src/workloads/lm/data.js';
import { writeTextCorpus } from './helpers/text-corpus.js';

const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));
const { JOB_COMPLETION_INDEX: _k8s, SLURM_PROCID: _slurm, ...env } = process.env;
const codistill = (args: string[], cwd: string, launcher: Record<string, string> = {}) =>
  spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...env, CI: '1', ...launcher } });
const settings = ['-s', 'corpus.path=parts', '-s', 'corpus.tokenizer=tokenizer.json', '-s', 'corpus.vocabSize=300', '-s', 'corpus.shardTokens=1024'];

t.test('a corpus learned, ingested in 2 parts by launcher index and trained on as one', async (t) => {
  const dir = t.testdir();
  writeTextCorpus(join(dir, 'text'), { files: 8, bytes: 20_000, seed: 2 });
  const learn = codistill(['tokenizer', 'learn', 'text', ...settings], dir);
  t.equal(learn.status, 0, learn.stderr);
  t.match(learn.stdout, /wrote tokenizer\.json: a 300-token BPE \(codistill-bpe@1, sha256 [0-9a-f]{12}\)/);
  t.match(learn.stdout, /of 8 of the 8 input file\(s\)/);

  const first = codistill(['ingest', 'text', '--part', '/2', ...settings], dir, { JOB_COMPLETION_INDEX: '1' });
  t.equal(first.status, 0, first.stderr);
  t.match(first.stdout, /ingested 4 file\(s\) into part 1\/2 of the corpus in parts in [\d.]+ s, .* tokens\/s on \d encoder thread\(s\)/);
  t.match(first.stdout, /1 of 2 parts built; waiting for part\(s\) 0 \(the last part to finish writes the manifest\)/);
  t.notOk(existsSync(join(dir, 'parts', 'manifest.json')));
  const last = codistill(['ingest', 'text', '--part', '/2', ...settings], dir, { SLURM_PROCID: '0' });
  t.equal(last.status, 0, last.stderr);
  t.match(last.stdout, /all 2 parts are built: parts\/manifest\.json written, the corpus \(.* tokens\) is ready to train on/);

  const train = codistill(['train', '-p', 'tiny', ...settings, '-s', 'steps=2', '-s', 'eval.every=0', '-s', 'name=on-parts'], dir);
  t.equal(train.status, 0, train.stderr);
  t.match(train.stdout, /ensemble\s+\d/, 'both groups trained on the corpus in parts');
});

t.test('--part errors are one line naming the flag, with exit code 2', async (t) => {
  const dir = t.testdir();
  writeTextCorpus(join(dir, 'text'), { files: 2, bytes: 2_000, seed: 3 });
  const slurmArrayTask = { SLURM_ARRAY_TASK_ID: '1', SLURM_PROCID: '0' };
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--part', '/2'], {}, /--part without an index needs JOB_COMPLETION_INDEX or SLURM_PROCID in the environment/],
    [['--part', '/2'], slurmArrayTask, /in a Slurm job array every task is SLURM_PROCID 0: name the part with --part \$SLURM_ARRAY_TASK_ID\/2/],
    [['--part', 'x'], {}, /option '--part <i\/P>' argument 'x' is invalid\. expected i\/P/],
    [['--format', 'criteo', '--part', '0/2'], {}, /the click workload does not build its store in parts: drop --part/],
  ];
  for (const [args, launcher, error] of cases) {
    const r = codistill(['ingest', 'text', ...args], dir, launcher);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, error);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('--part i/P is a part of a count; /P takes the index from the launcher, which must fall inside the count', async (t) => {
  t.same(parsePartFlag('2/8'), { index: '2', count: 8 });
  t.same(parsePartFlag('/8'), { index: undefined, count: 8 });
  for (const bad of ['8', '1/0', 'a/b', '1/2/3']) t.throws(() => parsePartFlag(bad), /expected i\/P/, bad);
  const part = (given: string | undefined, launcher: NodeJS.ProcessEnv) =>
    launchIndexOf(given, { flag: '--part', what: 'part', count: 2, countSource: 'the corpus is built in 2 parts' }, launcher);
  t.equal(part(undefined, { SLURM_PROCID: '1' }), 1);
  t.equal(part(undefined, { JOB_COMPLETION_INDEX: '0', SLURM_PROCID: '1' }), 0, 'the Kubernetes index first');
  t.throws(() => part(undefined, { JOB_COMPLETION_INDEX: '2' }), /JOB_COMPLETION_INDEX=2: a part index must be an integer from 0 to 1 \(the corpus is built in 2 parts\)/);
  t.throws(() => part('3', {}), /--part=3: a part index must be an integer from 0 to 1/);
});

t.test('learning the tokenizer again leaves its file as it is; another tokenizer replaces it only with --force', async (t) => {
  const dir = t.testdir();
  const text = writeTextCorpus(join(dir, 'text'), { files: 3, bytes: 4_000, seed: 6 });
  const file = join(dir, 'tokenizer.json');
  const config = (vocabSize: number) => loadConfig({ set: [`corpus.tokenizer=${file}`, `corpus.vocabSize=${vocabSize}`, `corpus.inputs=${JSON.stringify([text])}`] });
  t.match((await learnTokenizerFile(config(280)))[0], /^wrote .*tokenizer\.json: a 280-token BPE/);
  const written = statSync(file).mtimeMs;
  t.match((await learnTokenizerFile(config(280)))[0], /^unchanged /);
  t.equal(statSync(file).mtimeMs, written);
  await t.rejects(learnTokenizerFile(config(300)), /not replacing the tokenizer in .*tokenizer\.json: these inputs and settings learn another one .* Pass --force/);
  t.match((await learnTokenizerFile(config(300), { force: true }))[0], /^wrote .*a 300-token BPE/);
  await t.rejects(learnTokenizerFile(loadConfig({ set: [`corpus.tokenizer=${dir}`] })), /corpus\.tokenizer .* is a folder: `codistill tokenizer learn` writes a file/);
});
