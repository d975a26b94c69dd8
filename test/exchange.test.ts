import t from 'tap';
import { firstValueFrom, take, toArray } from 'rxjs';
import { join } from 'node:path';
import { MemoryExchange } from '../src/exchange/exchange.js';
import { StoreExchange } from '../src/exchange/store-exchange.js';
import { openSnapshotStore } from '../src/store/index.js';
import { differingKeys, exchangeKeep, recordedConfig, claimRunConfig, runStoreOf } from '../src/train/run-store.js';
import { groupIndexOf } from '../src/train/group-run.js';
import { loadConfig } from '../src/config/load.js';

const weights = (step: number) => Float32Array.from({ length: 4 }, (_, i) => step + i / 4);
const steps = (ps: { step: number }[]) => ps.map((p) => p.step);

t.test('the memory exchange replays the newest snapshots of a group to a late subscriber, then each new one', async (t) => {
  const exchange = new MemoryExchange(2, 2);
  for (const s of [0, 10, 20]) await exchange.publish(1, s, weights(s));
  const late = firstValueFrom(exchange.published$(1).pipe(take(3), toArray()));
  await exchange.publish(1, 30, weights(30));
  t.same(steps(await late), [10, 20, 30], 'the two kept, then the new one');
  t.same(steps(await firstValueFrom(exchange.published$(0).pipe(take(0), toArray()))), [], 'another group has its own');
  await exchange.close();
});

t.test("a store exchange carries one process's snapshots to another that watches the same store", async (t) => {
  const dir = t.testdir();
  const writer = new StoreExchange(openSnapshotStore(`file:${join(dir, 'x')}`), { runId: 'r', model: 'lm', keep: 2, pollMs: 1 });
  const reader = new StoreExchange(openSnapshotStore(`file:${join(dir, 'x')}`), { runId: 'r', model: 'lm', keep: 2, pollMs: 1 });
  t.teardown(() => Promise.all([writer.close(), reader.close()]));
  await writer.publish(0, 0, weights(0));
  const seen = firstValueFrom(reader.published$(0).pipe(take(3), toArray()));
  await writer.publish(0, 5, weights(5));
  await writer.publish(0, 5, weights(5)); // a restarted group publishes a step again: not passed on twice
  await writer.publish(0, 10, weights(10));
  const got = await seen;
  t.same(steps(got), [0, 5, 10], 'every step once, in order');
  t.same([...got[2].weights], [...weights(10)], 'with its weights');
  const store = openSnapshotStore(`file:${join(dir, 'x')}`);
  t.same((await store.list(0)).map((h) => h.step), [5, 10], 'the writer keeps only the newest `keep` in the store');
  await store.close();
});

t.test('the exchange keeps enough snapshots for a group restarted from its newest checkpoint', async (t) => {
  const at = (set: string[]) => exchangeKeep(loadConfig({ preset: 'tiny', set }));
  t.equal(at(['checkpoint.every=100', 'distill.exchangeEvery=50']), 3 + 2 + 1, 'two exchanges per checkpoint interval, plus the ones in flight');
  t.equal(at(['checkpoint.every=0', 'steps=1000', 'distill.exchangeEvery=100']), 3 + 10 + 1, 'no checkpoints: a restart goes back to step 0');
  t.equal(at(['distill.exchangeEvery=0']), 4, 'no periodic exchanges: the initial and the burn-in snapshot');
});

t.test('differing config keys are named by their dotted paths; where and how a run is placed does not count', async (t) => {
  const a = loadConfig({ preset: 'tiny' });
  const b = loadConfig({ preset: 'tiny', set: ['optim.lr=0.5', 'distill.mode=async', 'runDir=elsewhere', 'name=x', 'placement.mode=process'] });
  t.same(differingKeys(recordedConfig(a), recordedConfig(b)), ['distill.mode', 'optim.lr']);
  t.same(differingKeys({ x: [1, 2] }, { x: [1, 3], y: 1 }), ['x', 'y']);
});

t.test("a run's config is recorded in its store once; a group with another config is refused", async (t) => {
  const dir = t.testdir();
  const a = loadConfig({ preset: 'tiny', set: [`store.url=file:${join(dir, 's')}`] });
  const store = runStoreOf(a, dir);
  t.equal(store.checkpoints, `file:${join(dir, 's', 'checkpoints')}`);
  await claimRunConfig(store, a);
  await claimRunConfig(store, { ...a, name: 'another machine' });
  await t.rejects(claimRunConfig(store, { ...a, steps: 7, seed: 1 }), { name: 'RunError', message: /differing keys: seed, steps/ });
  await claimRunConfig(store, { ...a, steps: 7 }, true);
  await claimRunConfig(store, { ...a, steps: 7 });
  t.pass('the run\'s own supervisor, resuming, may record a changed config');
  t.equal(runStoreOf(loadConfig({ preset: 'tiny' }), '/runs/a').checkpoints, 'lmdb:/runs/a/checkpoints', 'by default: the run folder');
});

t.test('the group index comes from --group or from the launcher\'s environment, and must be in range', async (t) => {
  t.equal(groupIndexOf('1', 2), 1);
  t.equal(groupIndexOf(true, 4, { JOB_COMPLETION_INDEX: '3' }), 3);
  t.equal(groupIndexOf(true, 4, { SLURM_PROCID: '2' }), 2);
  t.throws(() => groupIndexOf(true, 2, {}), /needs JOB_COMPLETION_INDEX or SLURM_PROCID/);
  t.throws(() => groupIndexOf(true, 2, { SLURM_PROCID: '2' }), /SLURM_PROCID=2: a group index must be an integer from 0 to 1 \(the run has groups=2\)/);
  t.throws(() => groupIndexOf('x', 2), /--group=x/);
});
