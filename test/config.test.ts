import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, describeKeys, loadConfig } from '../src/config/load.js';
import { DEFAULTS } from '../src/config/schema.js';

t.test('a preset merges over the defaults and --set overrides it', async (t) => {
  const c = loadConfig({ preset: 'tiny', set: ['model.hidden=48', 'distill.mode=async', 'name=abc'] });
  t.equal(c.model.hidden, 48);
  t.equal(c.model.layers, 1, 'from the preset');
  t.equal(c.distill.mode, 'async');
  t.equal(c.name, 'abc', 'a value that is not JSON is a string');
  t.equal(c.optim.beta2, DEFAULTS.optim.beta2, 'untouched keys keep their defaults');
});

t.test('every shipped preset is valid', async (t) => {
  for (const p of ['tiny', 'lm-small', 'lm-paper']) t.doesNotThrow(() => loadConfig({ preset: p }), p);
});

t.test('an unknown key is an error naming the key and what is allowed', async (t) => {
  t.throws(() => loadConfig({ set: ['model.hiden=3'] }), { name: 'ConfigError', message: /"model\.hiden".*allowed here: kind, embedding, hidden/ });
  t.throws(() => loadConfig({ set: ['bogus=1'] }), { message: /unknown config key "bogus"/ });
});

t.test('a wrong type or an impossible value names the key', async (t) => {
  t.throws(() => loadConfig({ set: ['model.hidden=abc'] }), { message: /"model\.hidden".*expected number/ });
  t.throws(() => loadConfig({ set: ['model.hidden=1.5'] }), { message: /"model\.hidden"/ });
  t.throws(() => loadConfig({ set: ['distill.mode=sometimes'] }), { message: /"distill\.mode".*"sync"\|"async"/ });
  t.throws(() => loadConfig({ set: ['corpus.validationFraction=2'] }), { message: /"corpus\.validationFraction"/ });
});

t.test('more replicas than the batch can split is refused', async (t) => {
  t.throws(() => loadConfig({ preset: 'tiny', set: ['replicas=3'] }), { message: /"replicas".*optim\.batch = 8/ });
  t.throws(() => loadConfig({ set: ['optim.batch=2', 'replicas=4'] }), ConfigError);
});

t.test('a preset file can extend another and bad preset files are named', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'mine.json');
  writeFileSync(file, JSON.stringify({ extends: 'tiny', steps: 7 }));
  const c = loadConfig({ preset: file });
  t.equal(c.steps, 7);
  t.equal(c.model.hidden, 32);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{ nope');
  t.throws(() => loadConfig({ preset: bad }), { message: new RegExp(`${bad}.*not valid JSON`) });
  t.throws(() => loadConfig({ preset: 'no-such-preset' }), { message: /preset "no-such-preset" not found/ });
});

t.test('every key is documented', async (t) => {
  const keys = describeKeys();
  t.ok(keys.length > 40);
  for (const k of keys) t.ok(k.doc.length > 5, `${k.key} has a description`);
  t.ok(keys.some((k) => k.key === 'distill.exchangeEvery'));
});
