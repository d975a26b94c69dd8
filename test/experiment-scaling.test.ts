import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { experimentCommand } from '../src/commands/experiment.js';

const dir = mkdtempSync(join(tmpdir(), 'codistill-experiment-scaling-'));
const corpus = join(dir, 'corpus');
t.before(() => writeSyntheticCorpus(corpus, { shardTokens: 1024, vocabSize: 256, tokens: { train: 64 * 1024, validation: 4096 } }));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A report table as header + rows (from results.json), after checking that its CSV file is there too. */
function csv(file: string): string[][] {
  const name = basename(file, '.csv');
  const header = readFileSync(file, 'utf8').split('\n')[0];
  const table = JSON.parse(readFileSync(join(dirname(file), 'results.json'), 'utf8')).tables[name] as { header: string[]; rows: string[][] };
  if (!header.startsWith(table.header[0])) throw new Error(`${file} does not start with the table's header`);
  return [table.header, ...table.rows];
}
/** A cell holding a finite number, with or without a spread ("4.51 ± 0.02"). */
const finite = (cell: string) => Number.isFinite(Number(cell.split(' ± ')[0]));

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
  t.equal(final.length, 1 + 7, 'sync at 3 batches, codistillation, independent, their ensemble, label smoothing');
  for (const row of final.slice(1)) t.ok(finite(row[2]) && finite(row[3]), `final loss and time of ${row[0]}`);
  for (const row of csv(join(out, 'steps-to-target.csv')).slice(1)) {
    for (const c of row.slice(1)) t.ok(c === 'not reached' || finite(c), `steps to target: ${c}`);
  }
  t.equal(csv(join(out, 'sync-scaling.csv')).length, 1 + 2, 'two doublings');
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  t.ok([4, 8, 16].includes(results.limit.batch), 'the limit is one of the swept batches');
  t.equal(lines.filter((l) => /: starting/.test(l)).length, 6, '6 arms x 1 seed trained');
  t.ok(existsSync(join(out, 'arms', 'codistill-b' + results.limit.batch + '-s1', 'metrics.jsonl')), 'raw metrics stay in the folder');

  const again: string[] = [];
  await experimentCommand('scaling', { ...flags, write: (l: string) => again.push(l) });
  t.equal(again.filter((l) => /finished earlier, skipped/.test(l)).length, 6, 'a re-run trains nothing');
});
