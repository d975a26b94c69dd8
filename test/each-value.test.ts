import t from 'tap';
import { Subject, finalize, of, throwError, concat } from 'rxjs';
import { eachValue } from '../streams/each-value.js';

t.test('a stream read as an async iterable gives every value in order, then ends when it completes', async (t) => {
  const source = new Subject<number>();
  const seen: number[] = [];
  const reading = (async () => {
    for await (const v of eachValue(source)) seen.push(v);
  })();
  source.next(1);
  source.next(2); // arrives while the loop has not yet taken 1: it waits its turn
  await Promise.resolve();
  source.next(3);
  source.complete();
  await reading;
  t.same(seen, [1, 2, 3]);
});

t.test("the source's error is thrown at the loop, after the values before it", async (t) => {
  const seen: string[] = [];
  const read = async () => {
    for await (const v of eachValue(concat(of('a', 'b'), throwError(() => new Error('the reader failed'))))) seen.push(v);
  };
  await t.rejects(read(), /the reader failed/);
  t.same(seen, ['a', 'b']);
});

t.test('leaving the loop early unsubscribes from the source', async (t) => {
  const source = new Subject<number>();
  let unsubscribed = false;
  const reading = (async () => {
    for await (const v of eachValue(source.pipe(finalize(() => (unsubscribed = true))))) if (v === 2) break;
  })();
  source.next(1);
  source.next(2);
  await reading;
  t.ok(unsubscribed, 'the subscription ended with the loop');
  t.notOk(source.observed, 'nobody listens to the source any more');
});
