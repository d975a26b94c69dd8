import t from 'tap';
import { TestScheduler } from 'rxjs/testing';
import { pullEach } from '../streams/pull-each.js';

const scheduler = (t: { same(found: unknown, wanted: unknown): unknown }) =>
  new TestScheduler((actual, expected) => {
    t.same(actual, expected);
  });

t.test('each demand pulls one value; the next pull waits for the previous one', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable, expectSubscriptions }) => {
    const values = ['a', 'b', 'c'];
    let n = 0;
    // A pull takes 2 frames. Demands at 1 and 2 overlap: the second pull starts when the first delivers (frame 3).
    const pulls = values.map((v) => cold(`--(${v}|)`));
    const demand = hot('-xx----x--|');
    expectObservable(demand.pipe(pullEach(() => pulls[n++]))).toBe('---a-b---c|');
    expectSubscriptions(pulls[0].subscriptions).toBe('-^-!');
    expectSubscriptions(pulls[1].subscriptions).toBe('---^-!');
    expectSubscriptions(pulls[2].subscriptions).toBe('-------^-!');
  });
});

t.test('without demand nothing is pulled', async (t) => {
  let pulled = 0;
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    const out = hot('------|').pipe(pullEach(() => (pulled++, cold('(a|)'))));
    expectObservable(out).toBe('------|');
  });
  t.equal(pulled, 0, 'no pull without a demand signal');
});

t.test('only the first value of a pull is taken, and a pull error ends the output', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    const pulls = [cold('-ab|'), cold('-#', undefined, new Error('no shard'))];
    let n = 0;
    expectObservable(hot('x--x--x|').pipe(pullEach(() => pulls[n++]))).toBe('-a--#', undefined, new Error('no shard'));
  });
});

t.test('completion of the demand waits for the pulls already asked for', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    expectObservable(hot('xx|').pipe(pullEach(() => cold('---(v|)')))).toBe('---v--(v|)');
  });
});
