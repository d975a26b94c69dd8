/**
 * Pull-based backpressure: every notification of the source (a demand signal) pulls exactly one value, in order,
 * and the next pull starts only when the previous one has delivered. The producer therefore never runs ahead of the
 * consumer's demand, however slow the consumer is; demand signals that arrive during a pull wait their turn.
 *
 *   // one batch per finished training step, never more than asked for:
 *   const batches$ = stepDone$.pipe(startWith(null), pullEach(() => stream.next()));
 *
 * `pull` gives a promise or an observable, of which only the first value is taken. An error of a pull ends the
 * output; completing the source completes it once the pulls already asked for have delivered.
 */
import { type ObservableInput, type OperatorFunction, concatMap, from, take } from 'rxjs';

export function pullEach<T>(pull: () => ObservableInput<T>): OperatorFunction<unknown, T> {
  // concatMap runs one pull at a time and queues the demand signals (cheap) rather than produced values.
  return concatMap(() => from(pull()).pipe(take(1)));
}
