/**
 * Fault injection: what tests and the fault-injection suite make an actor do at a chosen step (or batch), so that
 * the failure paths (a worker that throws, a worker that dies, a step whose numbers blow up) can be exercised on
 * purpose, deterministically.
 *
 *   throw  the actor's handler throws, as a bug would: the request fails with the actor's error; the worker lives on
 *   exit   the actor's worker thread ends abruptly (`process.exit(1)` inside a worker thread ends only that thread),
 *          as a crash would: every request pending on it fails with "<actor>: exited (code 1)"
 *   nan    (replicas only) the replica's loss and gradient are NaN at that step, as a numerical blow-up would be:
 *          what happens then is the `guard.nonFinite` policy's business
 *
 * This module is imported by the actors as well as by the supervisor's side: it stays free of heavy imports.
 */

export type FaultKind = 'throw' | 'exit' | 'nan';

/** The faults an actor that computes no loss (a teacher, the evaluator, a reader) can be made to have. */
export type WorkerFaultKind = Exclude<FaultKind, 'nan'>;

const KINDS: readonly FaultKind[] = ['throw', 'exit', 'nan'];

/** Checks a fault kind coming from a message or an option; throws naming what is allowed. */
export function checkFaultKind<K extends FaultKind>(kind: unknown, allowed: readonly K[] = KINDS as readonly K[]): K {
  if (!allowed.includes(kind as K)) throw new Error(`fault kind must be one of ${allowed.join(', ')}, not ${JSON.stringify(kind)}`);
  return kind as K;
}

/**
 * Inside an actor's worker: carries out a 'throw' or 'exit' fault. 'exit' ends the worker thread at once (nothing
 * after it runs, no reply is sent); 'throw' throws an Error with `message`.
 */
export function enactFault(kind: WorkerFaultKind, message: string): never {
  if (kind === 'exit') process.exit(1);
  throw new Error(message);
}
