import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { openSnapshotStore } from '../src/store/index.js';
import { fixtureCorpus } from './helpers/run.js';

const run = promisify(execFile);
const example = fileURLToPath(new URL('../examples/embed/watch-a-run.mjs', import.meta.url));
const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));
const settings = async (dir: string, name: string) =>
  [`corpus.path=${await fixtureCorpus()}`, `runDir=${dir}`, `name=${name}`, 'backend=wasm', 'steps=6', 'eval.every=3', 'checkpoint.every=3'];

t.test('importing the package starts nothing: no actor, no timer keeps the process alive', async (t) => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('codistill'); console.log(typeof m.startRun)"]);
  t.equal(stdout.trim(), 'function', 'it loaded and the process ended by itself');
});

t.test('the embedding example prints validation losses as they come, and SIGTERM stops it with a checkpoint of every group', async (t) => {
  const dir = t.testdir();
  const child = spawn(process.execPath, [example, ...(await settings(dir, 'signalled')), 'steps=400'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ended = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.stdout.setEncoding('utf8');
  let signalled = false;
  child.stdout.on('data', (d: string) => {
    out += d;
    if (!signalled && /^step 3:/m.test(out)) {
      signalled = true;
      child.kill('SIGTERM'); // the run is under way: stop it (once: a second signal would end the program at once)
    }
  });
  t.equal(await ended, 0, 'the program ended normally');
  t.match(out, /^step 3: validation loss \d\.\d{3} \/ \d\.\d{3}, ensemble \d\.\d{3}$/m, 'each evaluation as a line');
  const [, at] = /^stopped at step (\d+)/m.exec(out) ?? [];
  t.ok(Number(at) >= 3 && Number(at) < 400, `it stopped early, at step ${at}`);
  const store = openSnapshotStore(join(dir, 'signalled', 'checkpoints'));
  t.equal(await store.latestCommonStep(2), Number(at), 'both groups have a checkpoint of that step');
  await store.close();

  // The stopped run's models, asked from the command line.
  const runDir = join(dir, 'signalled');
  const evaluated = await run(process.execPath, [cli, 'evaluate', runDir]);
  t.match(evaluated.stdout, new RegExp(`^checkpoint of step ${at}, `), 'evaluate: the newest checkpoint every group has');
  t.match(evaluated.stdout, /^group 0 +\d\.\d{4} +\d+\.\d$/m);
  t.match(evaluated.stdout, /^ensemble +\d\.\d{4}/m);
  const predicted = await run(process.execPath, [cli, 'predict', runDir, 'The ', '--groups', '1', '-k', '3']);
  const answer = JSON.parse(predicted.stdout) as { next: { token: string; p: number }[] };
  t.equal(answer.next.length, 3, 'predict: the 3 most likely next tokens');
  t.ok(answer.next.every((n, i) => n.p > 0 && n.p <= 1 && (i === 0 || n.p <= answer.next[i - 1].p)), 'most likely first');
  const refused = await run(process.execPath, [cli, 'predict', runDir, '[1, 2', '--json']).then(() => '', (e: { stderr: string }) => e.stderr);
  t.match(refused, /--json: the input is not JSON/);
});
