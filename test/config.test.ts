import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, describeKeys, loadConfig } from '../src/config/load.js';
import { DEFAULTS } from '../src/config/schema.js';
import { lmConfig } from '../src/workloads/lm/config.js';

t.test('a preset merges over the defaults and --set overrides it', async (t) => {
  const c = lmConfig(loadConfig({ preset: 'tiny', set: ['model.hidden=48', 'distill.mode=async', 'name=abc'] }));
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
  t.throws(() => loadConfig({ set: ['model.hiden=3'] }), { name: 'ConfigError', message: /"model\.hiden".*allowed here: embedding, hidden/ });
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
  const c = lmConfig(loadConfig({ preset: file }));
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

t.test('the schema is a union keyed on the workload, strict per kind', async (t) => {
  const click = loadConfig({ preset: 'criteo-small' });
  t.equal(click.workload, 'click');
  t.equal((click.data as { buckets: number }).buckets, 65536, 'the preset sets its own section');
  t.throws(() => loadConfig({ preset: 'criteo-small', set: ['model.window=16'] }), {
    message: /unknown config key "model\.window" \(allowed here: embedding, hidden\)/,
  }, 'a key of another workload is refused, naming the keys this one allows');
  t.throws(() => loadConfig({ preset: 'criteo-small', set: ['corpus.path=x'] }), { message: /unknown config key "corpus"/ });
  t.throws(() => loadConfig({ preset: 'mnist-small', set: ['model.filters=[0]'] }), { message: /"model\.filters\.0"/ });
  t.doesNotThrow(() => loadConfig({ preset: 'mnist-small' }));
  t.throws(() => loadConfig({ set: ['workload=speech'] }), { name: 'ConfigError', message: /config key "workload": unknown workload "speech": use one of lm, click, image/ });
  t.throws(() => loadConfig({ set: ['workload=./no/such/module.mjs'] }), { message: /config key "workload": workload module .*no\/such\/module\.mjs could not be loaded/ });
});

t.test('a module that is not a workload is refused, naming what it lacks', async (t) => {
  const dir = t.testdir({ 'half.mjs': 'export default { sections: {}, open() {} };\n' });
  t.throws(() => loadConfig({ set: [`workload=${join(dir, 'half.mjs')}`] }), { message: /must export a Workload .*missing: buildModel, ingest, dataPath, describe/ });
});

t.test('the key table lists the common keys and each workload\'s own', async (t) => {
  const common = describeKeys(undefined, 'common').map((k) => k.key);
  t.ok(common.includes('optim.lr') && common.includes('workload'));
  t.notOk(common.some((k) => k.startsWith('corpus.')), 'the corpus belongs to the language model');
  t.ok(describeKeys(undefined, 'workload').every((k) => /^(corpus|ingest|model|reader)\./.test(k.key)));
});
