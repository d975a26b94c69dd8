/**
 * The main-thread end of a stateful actor: one worker thread, typed requests in, typed replies out.
 *
 * Every request carries an id; the worker answers each with a reply of the same id, or an `error` reply carrying the
 * message as data (errors never cross threads as exceptions). If the worker dies (a crash, `terminate()`, an
 * out-of-memory kill), every pending request is rejected with an ActorError naming the actor, so a failure is a run
 * error and never a hang. Typed arrays listed in `transfer` move to the worker without a copy.
 *
 * Errors say whether the actor is at fault: a worker that threw or died is a fault of the actor (a fresh actor, from
 * a checkpoint, may well do better), while a request the worker refused with a RequestError (bad input, a loss
 * that is not finite under `guard.nonFinite = fail`) would fail the same way on any actor. `isActorFault` tells them
 * apart, through any wrapping that keeps the ActorError as its `cause`.
 */
import { Worker } from 'node:worker_threads';

/** How an actor's request failed: its worker threw, died (exited, crashed), was closed, or replied out of protocol. */
export type ActorFailure = 'threw' | 'exited' | 'crashed' | 'closed' | 'protocol';

export interface ActorErrorOptions {
  workerStack?: string;
  /** Default 'threw'. */
  reason?: ActorFailure;
  /**
   * Whether the actor is at fault (default: true when it threw, exited or crashed). False for a RequestError thrown
   * by the worker, for a closed actor and for a protocol mismatch.
   */
  fault?: boolean;
}

export class ActorError extends Error {
  override name = 'ActorError';
  readonly workerStack: string | undefined;
  readonly reason: ActorFailure;
  /** The actor threw or died: restarting it (from a checkpoint) may help; see `isActorFault`. */
  readonly fault: boolean;

  constructor(
    readonly actor: string,
    message: string,
    opts: ActorErrorOptions = {},
  ) {
    super(`${actor}: ${message}`);
    this.workerStack = opts.workerStack;
    this.reason = opts.reason ?? 'threw';
    this.fault = opts.fault ?? (this.reason === 'threw' || this.reason === 'exited' || this.reason === 'crashed');
  }
}

/**
 * Thrown inside a worker for a request that would fail the same way on any actor (bad input, a numerical failure the
 * config says to fail on): it reaches the caller as an ActorError whose `fault` is false.
 */
export class RequestError extends Error {
  override name = 'RequestError';
}

/**
 * Whether `err` is an actor fault: an ActorError (or an error whose `cause` chain holds one) of a worker that threw
 * or died, as opposed to bad input, a closed actor, or an error that never came from an actor.
 */
export function isActorFault(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 16 && e instanceof Error; depth++) {
    if (e instanceof ActorError) return e.fault;
    e = e.cause;
  }
  return false;
}

export interface ErrorReply {
  type: 'error';
  id: number;
  message: string;
  stack?: string;
  /** False when the worker threw a RequestError (not the actor's fault); absent or true otherwise. */
  fault?: boolean;
}

interface Pending {
  resolve(reply: unknown): void;
  reject(err: Error): void;
}

export class ActorClient<Req extends { type: string }, Rep extends { type: string; id: number }> {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;
  /** Called once if the worker dies or reports an error outside any request. */
  onFailure: ((err: ActorError) => void) | undefined;

  constructor(
    readonly name: string,
    file: string,
    workerData?: unknown,
  ) {
    this.worker = new Worker(file, { workerData });
    this.worker.on('message', (reply: Rep | ErrorReply) => this.receive(reply));
    this.worker.on('error', (err) => this.fail(new ActorError(name, `crashed: ${err.message}`, { workerStack: err.stack, reason: 'crashed' })));
    this.worker.on('exit', (code) => this.fail(new ActorError(name, `exited (code ${code})`, { reason: 'exited' })));
  }

  /** Sends a request and resolves with the reply of the expected type. */
  request<T extends Rep['type']>(
    request: Req,
    expect: T,
    transfer: readonly ArrayBufferLike[] = [],
  ): Promise<Extract<Rep, { type: T }>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (reply) => {
          const r = reply as Rep;
          if (r.type !== expect) reject(new ActorError(this.name, `expected a "${expect}" reply, got "${r.type}"`, { reason: 'protocol' }));
          else resolve(r as Extract<Rep, { type: T }>);
        },
        reject,
      });
      this.worker.postMessage({ ...request, id }, transfer as ArrayBuffer[]);
    });
  }

  private receive(reply: Rep | ErrorReply): void {
    const p = this.pending.get(reply.id);
    const error = (e: ErrorReply) => new ActorError(this.name, e.message, { workerStack: e.stack, fault: e.fault !== false });
    if (!p) {
      if (reply.type === 'error') this.fail(error(reply as ErrorReply));
      return;
    }
    this.pending.delete(reply.id);
    if (reply.type === 'error') p.reject(error(reply as ErrorReply));
    else p.resolve(reply);
  }

  private fail(err: ActorError): void {
    if (this.dead) return;
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.onFailure?.(err);
  }

  /** Fault injection: ends the worker the way a crash would (pending and later requests fail with "exited"). */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  /** Stops the worker; pending requests are rejected. Terminating also hands the worker's wasm memory back. */
  async close(): Promise<void> {
    if (!this.dead) this.dead = new ActorError(this.name, 'closed', { reason: 'closed' });
    await this.worker.terminate();
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }
}

/**
 * The worker-thread end: serves requests one at a time, in arrival order (a stateful actor must never interleave two
 * steps), and turns thrown errors into `error` replies.
 */
export function serveActor<Req extends { type: string; id: number }>(
  port: { on(event: 'message', fn: (msg: Req) => void): void; postMessage(msg: unknown, transfer?: ArrayBuffer[]): void },
  handle: (req: Req) => Promise<{ reply: { type: string }; transfer?: ArrayBufferLike[] }> | { reply: { type: string }; transfer?: ArrayBufferLike[] },
  onError?: (err: Error) => void,
): void {
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (req: Req) => {
    queue = queue.then(async () => {
      try {
        const { reply, transfer } = await handle(req);
        port.postMessage({ ...reply, id: req.id }, (transfer ?? []) as ArrayBuffer[]);
      } catch (err) {
        const e = err as Error;
        onError?.(e);
        const reply: ErrorReply = { type: 'error', id: req.id, message: e.message, stack: e.stack };
        // By name, not instanceof: a workload module may bring its own copy of this module.
        if (e?.name === 'RequestError') reply.fault = false;
        port.postMessage(reply);
      }
    });
  });
}
