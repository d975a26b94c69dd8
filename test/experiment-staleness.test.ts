import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { experimentCommand } from '../src/commands/experiment.js';
import { csv, experimentFolder, finite } from './helpers/experiment.js';

const { dir, corpus } = experimentFolder(t, 'staleness');

t.test('staleness reports loss and steps to target against the exchange interval, with plots', async (t) => {
  const out = join(dir, 'staleness');
  const outcome = await experimentCommand('staleness', { budget: 'test', out, set: [`corpus.path=${corpus}`], write: () => undefined });

  const md = readFileSync(outcome.report, 'utf8');
  t.match(md, '## What it shows, and what it does not');
  for (const plot of ['staleness', 'loss-vs-steps', 'loss-vs-time']) {
    t.ok(existsSync(join(out, `${plot}.png`)) && existsSync(join(out, `${plot}.svg`)), `${plot} plot written`);
    t.match(md, `](${plot}.png)`);
  }
  const table = csv(join(out, 'staleness.csv'));
  t.same(table.map((r) => r[0]), ['exchange every', '1', 'never', 'no distillation (alpha = 0)']);
  for (const row of table.slice(1)) {
    t.ok(finite(row[1]), `final loss at ${row[0]}`);
    t.ok(row[2] === 'not reached' || finite(row[2]), `steps to target at ${row[0]}`);
    t.ok(finite(row[3]), `wall time at ${row[0]}`);
  }
  const diloco = csv(join(out, 'diloco-interval.csv'));
  t.same(diloco.map((r) => r[0]), ['every (steps)', '1'], 'DiLoCo beside codistillation at every interval but never');
  t.ok(finite(diloco[1][1]) && finite(diloco[1][3]), 'both final losses');
  const averaged = JSON.parse(readFileSync(join(out, 'arms', 'diloco-every-1-s1', 'config.json'), 'utf8'));
  t.same([averaged.distill.method, averaged.distill.exchangeEvery, averaged.groups], ['average', 1, 2]);
  const config = JSON.parse(readFileSync(join(out, 'arms', 'exchange-never-s1', 'config.json'), 'utf8'));
  t.equal(config.distill.exchangeEvery, 0, 'never = an exchange interval of 0');
  t.equal(config.groups, 2);
});
