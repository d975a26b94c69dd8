/** The experiments run on every workload: `-p criteo-small` and `-p mnist-small` with their own test budgets. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { experimentCommand } from '../src/commands/experiment.js';
import { csv, finite } from './helpers/experiment.js';
import { criteoFile, idxSet } from './helpers/workload-data.js';

t.test('churn on click data reports the paper\'s mean absolute difference beside log loss and AUC', async (t) => {
  const dir = t.testdir();
  criteoFile(join(dir, 'train.txt'), 1500, 1);
  criteoFile(join(dir, 'valid.txt'), 200, 2);
  const set = [`data.path=${join(dir, 'store')}`, `data.inputs=["${join(dir, 'train.txt')}"]`, `data.validationInputs=["${join(dir, 'valid.txt')}"]`, 'data.buckets=512', 'data.shardRows=128'];
  const out = join(dir, 'churn');
  const outcome = await experimentCommand('churn', { preset: 'criteo-small', budget: 'test', out, set, write: () => undefined });
  const table = csv(join(out, 'churn.csv'));
  t.same(table[0], ['kind', 'val loss (nats/row)', 'val auc', 'pairs', 'total variation', 'top-1 disagreement', 'mean abs diff p(class 1)']);
  for (const row of table.slice(1)) {
    if (row[0].startsWith('always')) continue;
    t.ok([1, 2, 4, 5, 6].every((c) => finite(row[c])), `loss, AUC and churn of ${row[0]}: ${row.join(' | ')}`);
    t.equal(row[6], row[4], 'for two classes the mean absolute difference is the total variation');
  }
  t.ok(table.some((r) => r[0].startsWith('always the training base rate') && finite(r[1])), 'the base rate\'s log loss is beside the models\'');
  const md = readFileSync(outcome.report, 'utf8');
  t.match(md, 'codistill experiment churn -p criteo-small --budget test', 'the report says how to reproduce it');
  t.match(md, 'Model: click prediction');
  t.match(md, 'This is the paper\'s measure of churn');
});

// Staleness shares scaling's arms and reports (test/experiment-staleness.test.ts runs it on the language model).
t.test('scaling runs on images, its tables in the workload\'s unit', async (t) => {
  const dir = t.testdir();
  idxSet(join(dir, 'idx'), 320, 64);
  const set = [`data.path=${join(dir, 'store')}`, `data.source=${join(dir, 'idx')}`, 'data.shardRows=32'];
  const out = join(dir, 'scaling');
  await experimentCommand('scaling', { preset: 'mnist-small', budget: 'test', out, set, write: () => undefined });
  const final = csv(join(out, 'final.csv'));
  t.match(final[0][2], 'nats/image', 'losses are per image');
  t.ok(final.slice(1).every((r) => finite(r[2])), 'every arm has a final loss');
});

t.test('a preset without budgets of its own is refused, naming where they would be', async (t) => {
  await t.rejects(experimentCommand('churn', { preset: 'lm-small', budget: 'test', write: () => undefined }), {
    message: /budget "test" for preset lm-small not found .*no budgets exist for preset lm-small/,
  });
});
