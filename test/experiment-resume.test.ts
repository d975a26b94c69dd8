import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { loadConfig } from '../src/config/load.js';
import { armDir, runArms, type Arm } from '../src/experiments/arms.js';
import { readMetrics } from '../src/train/metrics.js';
import { startRun } from '../src/train/run.js';

const dir = mkdtempSync(join(tmpdir(), 'codistill-experiment-resume-'));
const corpus = join(dir, 'corpus');
t.before(() => writeSyntheticCorpus(corpus, { shardTokens: 1024, vocabSize: 256, tokens: { train: 32 * 1024, validation: 4096 } }));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('an arm cut short resumes from its newest checkpoint; a finished arm is skipped; a changed arm is refused', async (t) => {
  const out = join(dir, 'exp');
  const config = loadConfig({
    preset: 'tiny',
    overrides: { groups: 1, steps: 20, seed: 3, runDir: join(out, 'arms'), name: 'a-s3', corpus: { path: corpus }, eval: { every: 5, examples: 8 }, checkpoint: { every: 10 }, placement: { restarts: 0 } },
  });
  const arm: Arm = { id: 'a-s3', label: 'a', seed: 3, config };
  // A replica failure at step 15 stops the run after its checkpoint at step 10.
  const crashed = startRun({ config, faults: [{ group: 0, replica: 0, atStep: 15 }] });
  await t.rejects(crashed.done);

  const lines: string[] = [];
  const [result] = await runArms([arm], { out, write: (l) => lines.push(l) });
  t.match(lines[0], /resuming from its newest checkpoint/);
  const starts = readMetrics(join(armDir(out, 'a-s3'), 'metrics.jsonl')).filter((e) => e.type === 'start');
  t.same(starts.map((e) => e.type === 'start' && e.fromStep), [0, 10], 'the second run started at the checkpoint');
  t.ok(result.curve.finished);
  t.same(result.curve.points.map((p) => p.step), [5, 10, 15, 20], 'one evaluation per step, the lost ones replaced');

  const again: string[] = [];
  await runArms([arm], { out, write: (l) => again.push(l) });
  t.match(again[0], /finished earlier, skipped/);

  // A fresh clone of a results folder holds only the compressed log (and the config): the arm is still finished.
  const log = join(armDir(out, 'a-s3'), 'metrics.jsonl');
  t.ok(existsSync(`${log}.gz`), 'a finished arm keeps its log compressed too');
  const plain = readFileSync(log);
  t.ok(statSync(`${log}.gz`).size < plain.length / 3, 'at under a third of its size');
  rmSync(log);
  const cloned: string[] = [];
  const [fromGz] = await runArms([arm], { out, write: (l) => cloned.push(l) });
  t.match(cloned[0], /finished earlier, skipped/);
  t.same(fromGz.curve, result.curve, 'the same curve, read from metrics.jsonl.gz');
  writeFileSync(log, plain);

  const changed: Arm = { ...arm, config: { ...config, steps: 30 } };
  await t.rejects(runArms([changed], { out, write: () => undefined }), /another config/);
  t.equal(JSON.parse(readFileSync(join(armDir(out, 'a-s3'), 'config.json'), 'utf8')).steps, 20, 'the old arm is left alone');
});
