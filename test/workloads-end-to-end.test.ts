/**
 * Every built-in workload, and a user's own module, codistills end to end through the same run: ingest of real
 * formats (Criteo rows, IDX images), 2 groups with teachers and exchanges, evaluation with the workload's measures,
 * checkpoints and a bitwise resume.
 */
import t from 'tap';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, workloadOf } from '../src/config/load.js';
import { startRun, train } from '../src/train/run.js';
import type { StepEvent } from '../src/train/events.js';
import { finalWeights, sameBits } from './helpers/run.js';
import { criteoFile, idxSet } from './helpers/workload-data.js';

const run = ['backend=wasm', 'groups=2', 'distill.burnIn=4', 'distill.exchangeEvery=4', 'checkpoint.every=6', 'eval.every=6', 'steps=12'];

t.test('click prediction codistills on Criteo-format rows and reports log loss and AUC', async (t) => {
  const dir = t.testdir();
  criteoFile(join(dir, 'train.txt'), 3000, 1);
  criteoFile(join(dir, 'valid.txt'), 500, 2);
  const config = loadConfig({
    preset: 'criteo-small',
    set: [
      ...run, `runDir=${dir}`, 'name=click', `data.path=${join(dir, 'store')}`, `data.inputs=["${join(dir, 'train.txt')}"]`,
      `data.validationInputs=["${join(dir, 'valid.txt')}"]`, 'data.buckets=1024', 'data.shardRows=256', 'model.hidden=[16]',
      'optim.batch=64', 'eval.examples=500',
    ],
  });
  const report = await workloadOf(config).ingest(config);
  t.same(report.rows.map((r) => r[0]), ['train', 'validation']);
  const summary = await train({ config });
  const last = summary.evals[summary.evals.length - 1];
  t.equal(summary.unit, 'rows');
  t.ok(summary.losses.every((l) => Number.isFinite(l) && l < Math.log(2) + 0.2), `log losses ${summary.losses}`);
  t.equal(last.metrics?.auc?.length, 3, 'an AUC for each group and for the ensemble');
  t.ok(last.metrics!.auc!.every((a) => a > 0.5 && a <= 1), `AUCs ${last.metrics!.auc}`);
});

t.test('image classification codistills on IDX images and reports accuracy', async (t) => {
  const dir = t.testdir();
  idxSet(join(dir, 'idx'), 640, 100);
  const config = loadConfig({
    preset: 'mnist-small',
    set: [...run, `runDir=${dir}`, 'name=image', `data.path=${join(dir, 'store')}`, `data.source=${join(dir, 'idx')}`, 'data.shardRows=64',
      'model.filters=[4]', 'model.dense=16', 'optim.batch=32', 'optim.warmupSteps=0', 'eval.examples=100'],
  });
  await workloadOf(config).ingest(config);
  const summary = await train({ config });
  const last = summary.evals[summary.evals.length - 1];
  t.equal(summary.unit, 'images');
  t.ok(summary.losses.every(Number.isFinite));
  t.equal(last.metrics?.accuracy?.length, 3, 'an accuracy for each group and for the ensemble');
  t.ok(last.metrics!.accuracy!.every((a) => a >= 0 && a <= 1));
});

t.test('a user\'s own workload module trains, codistills and resumes bitwise (the own-model example)', async (t) => {
  const dir = t.testdir();
  const preset = fileURLToPath(new URL('../examples/own-model/config.json', import.meta.url));
  const set = ['backend=wasm', `runDir=${dir}`, 'steps=40', 'checkpoint.every=20', 'eval.every=20', 'distill.burnIn=10', 'distill.exchangeEvery=10'];
  const config = loadConfig({ preset, set: [...set, 'name=whole'] });
  t.match(config.workload, /examples\/own-model\/workload\.mjs$/, 'the module path is resolved from the preset\'s folder');
  const steps: StepEvent[] = [];
  const whole = startRun({ config });
  whole.events$.subscribe((e) => e.type === 'step' && steps.push(e));
  const summary = await whole.done;
  t.ok(summary.evals[0].losses[0] > summary.losses[0], 'the validation loss falls');
  t.ok(steps.some((s) => s.distillLoss > 0), 'the groups distil toward each other');
  t.ok(summary.evals[summary.evals.length - 1].metrics!.accuracy![2] > 0.5, 'the ensemble classifies the spirals');

  // Crash at step 30 (after the step-20 checkpoint), resume, and end where the uninterrupted run ended.
  const cut = loadConfig({ preset, set: [...set, 'name=cut', 'placement.restarts=0'] });
  await t.rejects(train({ config: cut, faults: [{ group: 1, replica: 0, atStep: 30 }] }), /injected fault/);
  const resumed = await train({ config: cut, resume: join(dir, 'cut') });
  const [a, b] = [await finalWeights(summary.runDir, config), await finalWeights(resumed.runDir, cut)];
  t.ok(a.every((w, g) => sameBits(w, b[g])), 'the resumed run ends bitwise equal to the uninterrupted one');
});
