/** What the experiment tests share: a small synthetic corpus in a temp folder, and readers for a report's tables. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Test } from 'tap';
import { writeSyntheticCorpus } from '../../bench/synthetic-corpus.js';

/** A temp folder with a corpus in it, built before the file's tests and removed after them. */
export function experimentFolder(t: Test, name: string): { dir: string; corpus: string } {
  const dir = mkdtempSync(join(tmpdir(), `codistill-experiment-${name}-`));
  const corpus = join(dir, 'corpus');
  t.before(() => writeSyntheticCorpus(corpus, { shardTokens: 1024, vocabSize: 256, tokens: { train: 64 * 1024, validation: 4096 } }));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, corpus };
}

/** A report table as header + rows (from results.json), after checking that its CSV file is there too. */
export function csv(file: string): string[][] {
  const name = basename(file, '.csv');
  const header = readFileSync(file, 'utf8').split('\n')[0];
  const table = JSON.parse(readFileSync(join(dirname(file), 'results.json'), 'utf8')).tables[name] as { header: string[]; rows: string[][] };
  if (!header.startsWith(table.header[0])) throw new Error(`${file} does not start with the table's header`);
  return [table.header, ...table.rows];
}

/** A cell holding a finite number, with or without a spread ("4.51 ± 0.02"). */
export const finite = (cell: string): boolean => Number.isFinite(Number(cell.split(' ± ')[0]));
