/**
 * An Observable as an async iterable: `for await (const v of eachValue(source$))` reads a stream top to bottom.
 *
 * Values that arrive while the loop body runs wait in order (a pull-driven source, like `pullEach`, never sends
 * more than was asked for, so this queue stays short). An error of the source is thrown at the loop; leaving the
 * loop early (break, return, throw) unsubscribes from the source.
 */
import type { Observable } from 'rxjs';

export async function* eachValue<T>(source: Observable<T>): AsyncGenerator<T, void, undefined> {
  const queue: T[] = [];
  let ended = false;
  let failed = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const signal = () => {
    wake?.();
    wake = undefined;
  };
  const subscription = source.subscribe({
    next(v) {
      queue.push(v);
      signal();
    },
    error(e: unknown) {
      failed = true;
      failure = e;
      signal();
    },
    complete() {
      ended = true;
      signal();
    },
  });
  try {
    for (;;) {
      if (queue.length > 0) yield queue.shift() as T;
      else if (failed) throw failure;
      else if (ended) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    subscription.unsubscribe();
  }
}
