import t from 'tap';
import { readFileSync } from 'node:fs';
import { describeKeys } from '../src/config/load.js';
import { builtInWorkloads, loadWorkload } from '../src/workloads/registry.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

t.test('the README documents every config key of every workload with its current default', async (t) => {
  const keys = [...describeKeys(loadWorkload('lm'), 'common'), ...builtInWorkloads().flatMap((kind) => describeKeys(loadWorkload(kind), 'workload'))];
  for (const k of keys) {
    t.match(readme, `| \`${k.key}\` |`, `${k.key} is in the README`);
    t.match(readme, `\`${JSON.stringify(k.default)}\``, `${k.key}'s default is shown`);
  }
});

t.test('the README starts with the two commands of a fresh clone', async (t) => {
  const firstScreen = readme.split('\n').slice(0, 30).join('\n');
  t.match(firstScreen, 'npm ci && npm start');
  t.match(firstScreen, 'npm test');
});
