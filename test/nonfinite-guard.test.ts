import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { Group, NonFiniteError, type GroupOptions } from '../src/group/group.js';
import type { ModelState } from '../src/protocol.js';
import { isActorFault } from '../src/util/actor.js';
import { groupStepInput } from './helpers/batches.js';
import { sameBits } from './helpers/run.js';

const classes = 64;
const T = 8;
const configWith = (...set: string[]) =>
  loadConfig({
    set: ['backend=wasm', 'model.embedding=8', 'model.hidden=16', 'model.layers=1', `model.window=${T}`, 'optim.lr=0.01', 'optim.batch=64', ...set],
  });
const options = (replicas: number, ...set: string[]): GroupOptions => ({ group: 0, replicas, config: configWith(...set), classes, seed: 7 });

const stepInput = (step: number, rows = 8) => groupStepInput(step, rows, T, classes);

/** Weights and every optimizer slot bitwise equal. */
function sameState(a: ModelState, b: ModelState): boolean {
  return (
    sameBits(a.weights, b.weights) &&
    a.optimizer.length === b.optimizer.length &&
    a.optimizer.every((s, i) => s.name === b.optimizer[i].name && sameBits(s.data, b.optimizer[i].data))
  );
}

t.test('skip: a NaN step leaves weights and optimizer state bitwise as they were, and training goes on as if it never happened', async (t) => {
  const group = await Group.start(options(2, 'guard.nonFinite=skip'));
  const reference = await Group.start(options(2, 'guard.nonFinite=skip'));
  t.teardown(() => Promise.all([group.close(), reference.close()]));
  await group.injectFault(1, 3, 'nan');
  for (let s = 0; s < 3; s++) {
    await group.step(stepInput(s));
    await reference.step(stepInput(s));
  }
  const before = await group.state(true);
  t.ok(before.optimizer.length > 0, 'the optimizer has state to compare');
  const tensors = await group.tensors();

  const r = await group.step(stepInput(3));
  t.same(r.skipped?.what, 'loss', 'the result says the step was skipped for its loss');
  t.ok(Number.isNaN(r.skipped?.value), 'with the loss value');
  t.ok(Number.isNaN(r.loss), 'the loss is reported as computed');
  t.ok(sameState(await group.state(true), before), 'weights and optimizer state bitwise unchanged');
  t.same(await group.tensors(), tensors, 'no tensor leaked by the skipped step');

  const next = await group.step(stepInput(4));
  t.notOk(next.skipped, 'step 4 is applied');
  t.ok(Number.isFinite(next.loss) && Number.isFinite(next.gradNorm));
  await reference.step(stepInput(4));
  t.ok(sameState(await group.state(true), await reference.state(true)), 'the same state as a group that never saw step 3');
  const [a, b] = await group.replicaWeights();
  t.ok(sameBits(a, b), 'the replicas stay bitwise identical');
  for (let s = 5; s < 8; s++) await group.step(stepInput(s));
  t.same(await group.tensors(), tensors, 'the tensor count stays flat');
});

t.test('fail: a NaN loss fails the step with the error as it always was, not an actor fault', async (t) => {
  const group = await Group.start({ ...options(2), group: 2 });
  t.teardown(() => group.close());
  await group.injectFault(1, 1, 'nan');
  await group.step(stepInput(0));
  const err = await group.step(stepInput(1)).catch((e: unknown) => e as Error);
  t.match(err, { name: 'RunError', message: /^group 2 replica 1: loss is NaN at step 1 \(task NaN, distillation 0\): lower optim.lr or set optim.clipNorm$/ });
  t.notOk(isActorFault(err), 'restarting would not help');
});

t.test('rollback: a NaN loss is a NonFiniteError from Group.step, with nothing applied', async (t) => {
  const group = await Group.start({ ...options(2, 'guard.nonFinite=rollback'), group: 1 });
  t.teardown(() => group.close());
  await group.injectFault(0, 2, 'nan');
  await group.step(stepInput(0));
  await group.step(stepInput(1));
  const before = await group.state(true);
  const err = (await group.step(stepInput(2)).catch((e: unknown) => e)) as NonFiniteError;
  t.ok(err instanceof NonFiniteError, 'a NonFiniteError');
  t.match(err, { name: 'NonFiniteError', group: 1, step: 2, what: 'loss', message: /^group 1: the loss is NaN at step 2; nothing was applied \(guard.nonFinite = rollback/ });
  t.ok(Number.isNaN(err.value));
  t.notOk(isActorFault(err), 'not an actor fault: the replicas are fine');
  t.ok(sameState(await group.state(true), before), 'weights and optimizer state bitwise unchanged');
  t.notOk((await group.step(stepInput(3))).skipped, 'the replicas are still usable');
});

t.test('skip: more than guard.maxSkips non-finite steps in a row fail the group; an applied step resets the count', async (t) => {
  const group = await Group.start({ ...options(1, 'guard.nonFinite=skip', 'guard.maxSkips=2'), group: 4 });
  t.teardown(() => group.close());
  for (const s of [1, 2, 4, 5, 6]) await group.injectFault(0, s, 'nan');
  const skipped = [];
  for (let s = 0; s < 6; s++) skipped.push(Boolean((await group.step(stepInput(s))).skipped));
  t.same(skipped, [false, true, true, false, true, true]);
  await t.rejects(group.step(stepInput(6)), {
    name: 'RunError',
    message: 'group 4: 3 consecutive steps had a non-finite loss or gradient (last at step 6): lower optim.lr or set optim.clipNorm',
  });
});
