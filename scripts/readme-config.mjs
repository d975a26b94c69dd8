// Writes the config key table (from the schema, via the built CLI) into README.md between its markers:
//   npm run build && node scripts/readme-config.mjs
// test/readme.test.ts fails when the README's table and the schema disagree.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const readme = new URL('../README.md', import.meta.url);
const table = execFileSync(process.execPath, [new URL('../bin/codistill.mjs', import.meta.url).pathname, 'config', '--keys', '--markdown'], {
  encoding: 'utf8',
});
const text = readFileSync(readme, 'utf8');
const start = '<!-- config-table:start -->';
const end = '<!-- config-table:end -->';
const [before, rest] = text.split(start);
if (rest === undefined) throw new Error(`README.md has no ${start} marker`);
const after = rest.slice(rest.indexOf(end));
writeFileSync(readme, `${before}${start}\n${table}${after}`);
console.log('README.md: config table updated');
