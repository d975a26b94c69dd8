import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { experimentCommand } from '../src/commands/experiment.js';
import { csv, experimentFolder, finite } from './helpers/experiment.js';

const { dir, corpus } = experimentFolder(t, 'scaling');

t.test('scaling writes its report, tables and plots with finite numbers, and a re-run skips every arm', async (t) => {
  const out = join(dir, 'scaling');
  const lines: string[] = [];
  const flags = { budget: 'test', out, set: [`corpus.path=${corpus}`], write: (l: string) => lines.push(l) };
  const outcome = await experimentCommand('scaling', flags);

  const md = readFileSync(outcome.report, 'utf8');
  for (const heading of ['# Experiment', '## Where sync SGD stops gaining', '## All arms', '## What it shows, and what it does not']) {
    t.match(md, heading);
  }
  for (const plot of ['loss-vs-steps', 'loss-vs-time']) {
    t.same([...readFileSync(join(out, `${plot}.png`)).subarray(1, 4)], [...Buffer.from('PNG')], `${plot}.png is a PNG`);
    t.match(readFileSync(join(out, `${plot}.svg`), 'utf8'), /^<svg/);
    t.match(md, `](${plot}.png)`, `${plot} is embedded`);
  }
  const final = csv(join(out, 'final.csv'));
  t.same(
    final.slice(1).map((r) => r[0].split(',')[0]),
    ['sync SGD', 'sync SGD', 'sync SGD', 'async SGD', 'async SGD', 'codistillation', 'independent model (1 of 2)', 'ensemble of 2 independent', 'label smoothing 0.1', 'local SGD', 'DiLoCo'],
    'sync at 3 batches, async at the 2 bigger ones, and at the limit codistillation, independent, their ensemble, label smoothing, local SGD and DiLoCo',
  );
  for (const row of final.slice(1)) t.ok(finite(row[2]) && finite(row[3]), `final loss and time of ${row[0]}`);
  for (const row of csv(join(out, 'steps-to-target.csv')).slice(1)) {
    for (const c of row.slice(1)) t.ok(c === 'not reached' || finite(c), `steps to target: ${c}`);
  }
  t.equal(csv(join(out, 'sync-scaling.csv')).length, 1 + 2, 'two doublings');
  t.equal(csv(join(out, 'async-scaling.csv')).length, 1 + 2, 'two doublings of the async workers');
  const bytes = csv(join(out, 'bytes.csv'));
  t.equal(bytes.length, 1 + 10, 'bytes for every arm');
  const row = (prefix: string) => bytes.find((r) => r[0].startsWith(prefix))!;
  t.equal(row('sync SGD, batch 4')[3], '0', 'one worker exchanges nothing within its group');
  t.not(row('async SGD, batch 16')[3], '0', 'async workers send gradients and read weights');
  t.not(row('DiLoCo')[4], '0', 'DiLoCo averages between groups');
  t.equal(row('DiLoCo')[4], row('local SGD')[4], 'local SGD and DiLoCo send the same bytes');
  const arm = (id: string) => JSON.parse(readFileSync(join(out, 'arms', id, 'config.json'), 'utf8'));
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  t.ok([4, 8, 16].includes(results.limit.batch), 'the limit is one of the swept batches');
  t.equal(lines.filter((l) => /: starting/.test(l)).length, 13, '6 tuning runs (3 batches x 2 rates), 2 async arms and 5 at the limit, 1 seed');
  const tuning = csv(join(out, 'lr-tuning.csv'));
  t.same(tuning[0], ['batch', 'rate × 1', 'rate × 2', 'chosen']);
  t.same(tuning.slice(1).map((r) => r[0]), ['4', '8', '16']);
  for (const r of tuning.slice(1)) {
    const pick = Number(r[3].match(/^× (\d+)/)![1]);
    t.equal(Number(r[pick]), Math.min(Number(r[1]), Number(r[2])), `batch ${r[0]}: the lower final loss wins`);
    t.ok(existsSync(join(out, 'arms', `${pick === 1 ? `sync-b${r[0]}` : `sync-b${r[0]}-x${pick}`}-s1`, 'metrics.jsonl')), 'its run is the sweep\'s arm');
  }
  const base = Number(tuning[1][3].match(/= ([\d.]+)/)![1]);
  t.same([arm('async-b16-s1').replicas, arm('async-b16-s1').sgd.mode, arm('async-b16-s1').optim.lr], [4, 'delayed', base], '4 workers, delayed, the (tuned) rate of one worker\'s batch');
  t.ok(existsSync(join(out, 'arms', 'codistill-b' + results.limit.batch + '-s1', 'metrics.jsonl')), 'raw metrics stay in the folder');

  const again: string[] = [];
  await experimentCommand('scaling', { ...flags, write: (l: string) => again.push(l) });
  t.equal(again.filter((l) => /finished earlier, skipped/.test(l)).length, 13, 'a re-run trains nothing');
});
