/** `codistill ingest --format criteo FILE…` as a user runs it: the click workload, its table, and clear errors. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { criteoFile } from './helpers/workload-data.js';

const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));
const codistill = (args: string[], cwd: string) => spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1' } });

t.test('--format criteo picks the click workload and prints the split table', async (t) => {
  const dir = t.testdir();
  criteoFile(join(dir, 'day_0.txt'), 400, 3);
  const r = codistill(['ingest', '--format', 'criteo', 'day_0.txt', '-s', 'data.path=store', '-s', 'data.shardRows=64'], dir);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /split\s+rows\s+shards\s+positive rate/);
  t.match(r.stdout, /validation\s+\d+/, 'a seeded share of the rows validates');
});

t.test('a malformed row is an error naming the file and line, with exit code 2', async (t) => {
  const dir = t.testdir();
  const good = `0${'\t1'.repeat(13)}${'\tdeadbeef'.repeat(26)}`;
  writeFileSync(join(dir, 'bad.txt'), `${good}\n1\t2\t3\n${good}\n`);
  const r = codistill(['ingest', '--format', 'criteo', 'bad.txt', '-s', 'data.path=store'], dir);
  t.equal(r.status, 2);
  t.match(r.stderr, /bad\.txt line 2: 3 fields, expected 40/);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('an unknown format names the known ones', async (t) => {
  const r = codistill(['ingest', '--format', 'parquet'], t.testdir());
  t.equal(r.status, 2);
  t.match(r.stderr, /unknown --format "parquet" \(known: text, criteo, idx\)/);
});
