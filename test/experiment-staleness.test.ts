import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { experimentCommand } from '../src/commands/experiment.js';

const dir = mkdtempSync(join(tmpdir(), 'codistill-experiment-staleness-'));
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
  const config = JSON.parse(readFileSync(join(out, 'arms', 'exchange-never-s1', 'config.json'), 'utf8'));
  t.equal(config.distill.exchangeEvery, 0, 'never = an exchange interval of 0');
  t.equal(config.groups, 2);
});
