import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { experimentCommand } from '../src/commands/experiment.js';
import { csv, experimentFolder, finite } from './helpers/experiment.js';

const { dir, corpus } = experimentFolder(t, 'churn');

t.test('churn compares every pair of retrains per kind, with loss beside it and bars plotted', async (t) => {
  const out = join(dir, 'churn');
  const outcome = await experimentCommand('churn', { budget: 'test', out, set: [`corpus.path=${corpus}`], write: () => undefined });

  const md = readFileSync(outcome.report, 'utf8');
  t.match(md, '## What it shows, and what it does not');
  for (const plot of ['churn', 'loss-vs-steps', 'loss-vs-time']) {
    t.ok(existsSync(join(out, `${plot}.png`)) && existsSync(join(out, `${plot}.svg`)), `${plot} plot written`);
  }
  const table = csv(join(out, 'churn.csv'));
  t.same(table.map((r) => [r[0], r[2]]).slice(1), [['single model', '1'], ['2-model ensemble', '1'], ['codistilled model', '2'], ['DiLoCo model', '1']], 'R = 2: one pair, two for the two codistilled groups');
  for (const row of table.slice(1)) {
    t.ok(finite(row[1]) && finite(row[3]) && finite(row[4]), `loss, total variation and top-1 disagreement of ${row[0]}`);
    t.equal(row[5], 'n/a', 'mean absolute difference applies to binary tasks only');
  }
  t.same(csv(join(out, 'bytes.csv')).map((r) => r[0]).slice(1), ['single model', '2-model ensemble', 'codistilled model', 'DiLoCo model'], 'bytes for every kind');
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  for (const kind of results.churn) {
    for (const p of kind.pairs) t.ok(p.totalVariation >= 0 && p.totalVariation <= 1 && p.top1Disagreement >= 0 && p.top1Disagreement <= 1);
  }
});
