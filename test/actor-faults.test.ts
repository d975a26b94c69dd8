import t from 'tap';
import { join } from 'node:path';
import { writeSyntheticCorpus } from '../bench/synthetic-corpus.js';
import { loadConfig } from '../src/config/load.js';
import { MemoryExchange } from '../src/exchange/exchange.js';
import { Group } from '../src/group/group.js';
import { RecordWriter } from '../src/records/store.js';
import type { EvalEvent } from '../src/train/events.js';
import { Evaluator } from '../src/train/evaluator.js';
import { GroupTeacher } from '../src/train/teachers.js';
import { isActorFault } from '../src/util/actor.js';
import { createReaderPool, openBatchStream } from '../src/workloads/lm/data/batches.js';
import { recordData } from '../src/workloads/records-data.js';
import { randomBatch } from './helpers/batches.js';

const classes = 64;
const T = 8;
const config = loadConfig({
  set: [
    'backend=wasm', 'model.embedding=8', 'model.hidden=16', 'model.layers=1', `model.window=${T}`, 'optim.batch=8',
    'distill.exchangeEvery=0', 'distill.burnIn=0',
  ],
});
const kinds = ['throw', 'exit'] as const;

// Whatever fails, no rejection may go unhandled (the last test checks).
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);
process.on('unhandledRejection', onUnhandled);

const stepInput = (step: number) => ({ step, lr: 0.01, alpha: 0, batch: randomBatch(100 + step, 8, T + 1, classes), positionsPerRow: T, classes });

/** The weights of one freshly initialised model (for teachers and the evaluator to load). */
let weights: Float32Array;
t.before(async () => {
  const group = await Group.start({ group: 0, replicas: 1, config, classes, seed: 3 });
  weights = (await group.state(false)).weights;
  await group.close();
});

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

for (const kind of kinds) {
  t.test(`a replica that is made to ${kind} fails Group.step with an actor fault naming it`, async (t) => {
    const group = await Group.start({ group: 1, replicas: 2, config, classes, seed: 7 });
    t.teardown(() => group.close());
    await group.injectFault(0, 1, kind);
    await group.step(stepInput(0));
    const err = await rejection(group.step(stepInput(1)));
    const message = kind === 'throw' ? /^group 1 replica 0: injected fault at step 1$/ : /^group 1 replica 0: exited \(code 1\)$/;
    t.match(err, { name: 'RunError', message });
    t.ok(isActorFault(err), 'an actor fault');
    await group.close();
  });

  t.test(`a teacher that is made to ${kind} fails GroupTeacher.predict with an actor fault naming it`, async (t) => {
    const exchange = new MemoryExchange(2);
    for (const g of [0, 1]) await exchange.publish(g, 0, weights.slice());
    const teacher = await GroupTeacher.start(0, config, classes, T, exchange);
    t.teardown(() => Promise.all([teacher.close(), exchange.close()]));
    await teacher.injectFault(2, kind);
    for (const s of [0, 1]) t.equal((await teacher.predict(s, randomBatch(s, 4, T + 1, classes))).target.kind, 'dense');
    const err = await rejection(teacher.predict(2, randomBatch(2, 4, T + 1, classes)));
    const message = kind === 'throw' ? /^teacher of group 0: injected fault at step 2$/ : /^teacher of group 0: exited \(code 1\)$/;
    t.match(err, { name: 'ActorError', message });
    t.ok(isActorFault(err), 'an actor fault');
    const later = teacher.predict(3, randomBatch(3, 4, T + 1, classes));
    if (kind === 'throw') t.equal((await later).target.kind, 'dense', 'a teacher that threw serves the next step');
    else await t.rejects(later, { message: /^teacher of group 0: exited/ }, 'a dead teacher fails every later step');
    await teacher.close();
  });

  t.test(`the evaluator made to ${kind}, with no restarts allowed, fails drain with an actor fault naming it; restart() goes on`, async (t) => {
    const events: EvalEvent[] = [];
    const validation = randomBatch(9, 4, T + 1, classes);
    const noRestarts = { ...config, groups: 2, placement: { ...config.placement, restarts: 0 } };
    const evaluator = await Evaluator.start(noRestarts, { classes, positionsPerRow: T, validation }, [], (e) => events.push(e));
    t.teardown(() => evaluator.close());
    await evaluator.injectFault(2, kind);
    for (const step of [1, 2]) for (const g of [0, 1]) evaluator.submit(g, step, weights.slice());
    const err = await rejection(evaluator.drain());
    const message = kind === 'throw' ? /^evaluator: injected fault at step 2$/ : /^evaluator: exited \(code 1\)$/;
    t.match(err, { name: 'ActorError', message });
    t.ok(isActorFault(err), 'an actor fault');
    t.same(events.map((e) => e.step), [1], 'the step before the fault was evaluated');
    await evaluator.restart();
    for (const g of [0, 1]) evaluator.submit(g, 3, weights.slice());
    await evaluator.drain();
    t.same(events.map((e) => e.step), [1, 3], 'after restart() evaluations go on, and drain forgets the old failure');
    await evaluator.close();
  });

  t.test(`the evaluator made to ${kind} runs the failed evaluation again on a fresh actor, within placement.restarts`, async (t) => {
    const events: EvalEvent[] = [];
    const validation = randomBatch(9, 4, T + 1, classes);
    const evaluator = await Evaluator.start({ ...config, groups: 2 }, { classes, positionsPerRow: T, validation }, [], (e) => events.push(e));
    t.teardown(() => evaluator.close());
    const restarts: [number, number, string][] = [];
    evaluator.onRestart = (step, attempt, reason) => restarts.push([step, attempt, reason]);
    await evaluator.injectFault(2, kind);
    for (const step of [1, 2, 3]) for (const g of [0, 1]) evaluator.submit(g, step, weights.slice());
    await evaluator.drain();
    t.same(events.map((e) => e.step), [1, 2, 3], 'every step evaluated, the failed one on the new actor');
    t.same(restarts.map(([s, a]) => [s, a]), [[2, 1]]);
    t.match(restarts[0][2], kind === 'throw' ? /^evaluator: injected fault at step 2$/ : /^evaluator: exited \(code 1\)$/);
    await evaluator.close();
  });
}

t.test('the language model reader serving a batch, made to throw or exit, fails that pull with an actor fault naming it', async (t) => {
  const corpusPath = join(t.testdir(), 'corpus');
  await writeSyntheticCorpus(corpusPath, { shardTokens: 1024, tokens: { train: 8 * 1024, validation: 1024 } });
  const pool = createReaderPool(2);
  t.teardown(() => pool.destroy());
  const open = (fault?: { atBatch: number; kind: 'throw' | 'exit' }) =>
    openBatchStream({ corpusPath, group: 0, groups: 1, sameData: false, batch: 4, window: T, seed: 5, pool, shuffleShards: 2, spanWindows: 3, prefetch: 4, fault });
  for (const kind of kinds) {
    const stream = open({ atBatch: 7, kind });
    for (let b = 0; b < 7; b++) await stream.next();
    const err = await rejection(stream.next());
    const message = kind === 'throw' ? /^reader [01]: injected fault at batch 7$/ : /^reader [01]: exited \(code 1\)$/;
    t.match(err, { name: 'ReaderError', message }, `${kind}: the pull of batch 7 rejects`);
    t.ok(isActorFault(err), `${kind}: an actor fault`);
    await t.rejects(stream.next(), { message }, `${kind}: the stream stays failed`);
    await stream.close();
    // A group started again opens a new stream on the same pool: its readers serve it (a dead one started anew).
    const again = open();
    t.equal((await again.next()).rows, 4, `${kind}: a stream opened afterwards reads`);
    await again.close();
  }
  t.equal(pool.restarts, 1, 'only the reader that exited was started again');
  await pool.destroy();
});

t.test('a record stream made to throw or exit at a batch fails that pull with an actor fault naming its reader', async (t) => {
  const path = join(t.testdir(), 'records');
  const writer = RecordWriter.create(path, {
    kind: 'test',
    fields: [{ name: 'x', dtype: 'float32', width: 1 }, { name: 'label', dtype: 'int32', width: 1 }],
    shardRows: 16,
    source: {},
  });
  for (let i = 0; i < 64; i++) writer.append('train', { x: [i], label: [i % 2] });
  for (let j = 0; j < 4; j++) writer.append('validation', { x: [j], label: [j % 2] });
  await writer.commit();
  const data = recordData(path, 2, 4);
  t.teardown(() => data.close());
  for (const kind of kinds) {
    const stream = data.openStream({ group: 1, groups: 2, sameData: false, batch: 4, seed: 1, fault: { atBatch: 2, kind } });
    for (let b = 0; b < 2; b++) await stream.next();
    const err = await rejection(stream.next());
    const message = kind === 'throw' ? /^record reader of group 1: injected fault at batch 2$/ : /^record reader of group 1: injected exit at batch 2 \(records are read on the calling thread/;
    t.match(err, { name: 'ActorError', message });
    t.ok(isActorFault(err), `${kind}: an actor fault`);
    await t.rejects(stream.next(), { message }, `${kind}: the stream stays failed`);
    await stream.close();
  }
});

t.test('no rejection went unhandled', async (t) => {
  // Give late rejections a turn of the event loop to surface.
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  t.same(unhandled, []);
});
