/**
 * Where a run's groups live (`placement.mode`), behind one handle per group that the supervisor drives the same way:
 *
 * - `thread`: every group's loop in this process (its replicas and teacher on worker threads), the exchange in
 *   memory, or through the run's store when `store.url` names one.
 * - `process`: a child process per group (tfjs-node-gpu drives one GPU per process), the group's GPU given through
 *   CUDA_VISIBLE_DEVICES from `placement.devices`, the exchange through the run's store. A child that dies is started
 *   again from its group's newest checkpoint, up to `placement.restarts` times; the events it repeats while it
 *   catches up are dropped, so the run's log reads as if it had never died.
 *
 * Either way a group whose actor fails (a replica, reader or teacher worker) is restarted from its newest checkpoint
 * where it runs (supervised-group.ts).
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { Config } from '../config/schema.js';
import { type Exchange, MemoryExchange } from '../exchange/exchange.js';
import { RunError } from '../group/group.js';
import type { FromGroupProcess, GroupEvent, ToGroupProcess } from '../protocol.js';
import type { SnapshotStore } from '../store/snapshot.js';
import { compiledFile } from '../util/paths.js';
import type { WorkloadData } from '../workloads/workload.js';
import type { RunEvent } from './events.js';
import { storeExchange } from './group-host.js';
import { newestIntactCheckpoint } from './checkpoints.js';
import type { InjectedFault } from './group-trainer.js';
import { exchangeKeep, runStoreOf } from './run-store.js';
import { ReplayFilter, SupervisedGroup } from './supervised-group.js';

/** One group as the supervisor sees it, wherever it runs. */
export interface PlacedGroup {
  readonly group: number;
  readonly backend: string;
  readonly parameters: number;
  /** Trains to the end (or to `stop`), resolving with the steps done; rejects with a RunError when the group fails for good. */
  run(): Promise<number>;
  /** Asks the group to end early with a checkpoint: after step `at`, or after the step it is in. */
  stop(at?: number): void;
  close(): Promise<void>;
}

export interface PlacementContext {
  config: Config;
  runDir: string;
  /** The checkpoint step the groups start from (a resumed run); undefined: from the initialisation. */
  from?: number;
  /** The supervisor's copy of the workload data (thread placement trains on it). */
  data: WorkloadData;
  /** The run's checkpoint store, opened by the supervisor. */
  checkpoints: SnapshotStore;
  emit: (e: RunEvent) => void;
  evaluate: (group: number, step: number, weights: Float32Array) => void;
  /** Fault injection: actors of a group fail at a step. */
  faults?: (InjectedFault & { group: number })[];
  /** Fault injection (process placement): the group's process is killed once it reports this step. */
  kills?: { group: number; atStep: number }[];
}

export interface Placement {
  groups: PlacedGroup[];
  close(): Promise<void>;
}

const faultsOf = (ctx: PlacementContext, g: number): InjectedFault[] =>
  (ctx.faults ?? []).filter((f) => f.group === g).map(({ group: _, ...f }) => f);

/** Starts every group; if any fails to start, the ones that did are closed and the first failure is thrown. */
async function startAll(ctx: PlacementContext, start: (g: number) => Promise<PlacedGroup>, after: () => Promise<void>): Promise<Placement> {
  const starting = await Promise.allSettled(Array.from({ length: ctx.config.groups }, (_, g) => start(g)));
  const groups = starting.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const close = async () => {
    await Promise.all(groups.map((g) => g.close().catch(() => undefined)));
    await after();
  };
  const failed = starting.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await close();
    throw failed.reason;
  }
  return { groups, close };
}

export async function placeGroups(ctx: PlacementContext): Promise<Placement> {
  if (ctx.config.placement.mode === 'process') {
    return startAll(ctx, (g) => GroupProcess.start(ctx, g), async () => undefined);
  }
  if (ctx.kills?.length) throw new Error('killing a group process needs placement.mode = process');
  const exchange: Exchange = runStoreOf(ctx.config, ctx.runDir).named
    ? storeExchange(ctx.config, ctx.runDir)
    : new MemoryExchange(ctx.config.groups, exchangeKeep(ctx.config));
  return startAll(ctx, (g) => threadGroup(ctx, g, exchange), () => exchange.close());
}

async function threadGroup(ctx: PlacementContext, g: number, exchange: Exchange): Promise<PlacedGroup> {
  const trainer = await SupervisedGroup.start({
    config: ctx.config,
    group: g,
    runId: runStoreOf(ctx.config, ctx.runDir).url,
    data: ctx.data,
    exchange,
    checkpoints: ctx.checkpoints,
    from: ctx.from,
    emit: ctx.emit,
    evaluate: ctx.evaluate,
    faults: faultsOf(ctx, g),
  });
  return {
    group: g,
    backend: trainer.backend,
    parameters: trainer.parameters,
    run: () => trainer.run(),
    stop: (at) => trainer.stop(at),
    close: () => trainer.close(),
  };
}

/** How a child process ended, in words. */
const ending = (code: number | null, signal: NodeJS.Signals | null): string =>
  signal ? `killed by ${signal}` : `exited with code ${code}`;

/** A group in a child process of its own, restarted from its newest checkpoint when it dies. */
class GroupProcess implements PlacedGroup {
  backend = '';
  parameters = 0;
  private child: ChildProcess | undefined;
  private restarts = 0;
  /** A restarted child repeats older events, which are dropped. */
  private readonly filter: ReplayFilter;
  private readonly killsLeft: number[];
  /** The child now running (replaced on a restart). */
  private attempt!: Attempt;
  private stopping = false;
  private stopAt: number | undefined;
  private closed = false;

  private constructor(
    private readonly ctx: PlacementContext,
    readonly group: number,
  ) {
    this.killsLeft = (ctx.kills ?? []).filter((k) => k.group === group).map((k) => k.atStep);
    this.filter = new ReplayFilter(ctx.from ?? 0);
  }

  static async start(ctx: PlacementContext, group: number): Promise<GroupProcess> {
    const p = new GroupProcess(ctx, group);
    p.attempt = p.launch(ctx.from);
    const ready = await p.attempt.ready;
    p.backend = ready.backend;
    p.parameters = ready.parameters;
    return p;
  }

  async run(): Promise<number> {
    for (;;) {
      const end = await this.attempt.ended;
      if (end.done) return end.steps;
      if (this.closed) throw new RunError(`group ${this.group}'s process ${end.how}`);
      const limit = this.ctx.config.placement.restarts;
      // A group that reported its own failure (bad data, a NaN loss) would fail the same way again: only a process
      // that died without a word (killed, out of memory, a crash in native code) is restarted.
      if (this.stopping || end.message || this.restarts >= limit) {
        const tried = limit > 0 ? ` (restarted ${this.restarts} time${this.restarts === 1 ? '' : 's'})` : '';
        throw new RunError(`group ${this.group}'s process ${end.how}${end.message ? `: ${end.message}` : ''}${tried}`);
      }
      this.restarts++;
      const from = await newestIntactCheckpoint(this.ctx.checkpoints, this.group, this.ctx.emit);
      this.ctx.emit({ type: 'restart', group: this.group, fromStep: from ?? 0, attempt: this.restarts, reason: `process ${end.how}`, time: Date.now() });
      this.attempt = this.launch(from);
      await this.attempt.ready.catch(() => undefined); // a failed start shows as the attempt's end
    }
  }

  stop(at?: number): void {
    this.stopping = true;
    this.stopAt = Math.min(this.stopAt ?? Infinity, at ?? 0);
    this.send({ type: 'stop', at: this.stopAt });
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }

  private send(m: ToGroupProcess): void {
    if (this.child?.connected) this.child.send(m);
  }

  /** Forks the group's process and starts its group from checkpoint step `from`. */
  private launch(from: number | undefined): Attempt {
    const { config, runDir } = this.ctx;
    const devices = config.placement.devices;
    const env = { ...process.env };
    if (devices.length > 0) env.CUDA_VISIBLE_DEVICES = devices[this.group % devices.length];
    const child = fork(compiledFile('src', 'train', 'group-process'), [], {
      env,
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    let message = '';
    let done = false;
    let steps = 0;
    const ready = new Promise<{ backend: string; parameters: number }>((resolve, reject) => {
      child.on('message', (m: FromGroupProcess) => {
        switch (m.type) {
          case 'ready':
            resolve(m);
            break;
          case 'event':
            this.pass(m.event);
            break;
          case 'evaluate':
            if (this.filter.fresh('evaluate', m.step)) this.ctx.evaluate(this.group, m.step, m.weights);
            break;
          case 'done':
            done = true;
            steps = m.steps;
            break;
          case 'failed':
            message = m.message;
            break;
        }
      });
      child.once('exit', (code, signal) => reject(new RunError(`group ${this.group}'s process ${ending(code, signal)}${message ? `: ${message}` : ''}`)));
    });
    ready.catch(() => undefined);
    const ended = new Promise<AttemptEnd>((resolve) =>
      child.once('exit', (code, signal) => resolve({ done: done && code === 0, steps, how: ending(code, signal), message })),
    );
    // An injected fault happens in the first process only, unless it is meant to repeat.
    const faults = faultsOf(this.ctx, this.group).filter((f) => f.repeat || this.restarts === 0);
    child.send({ type: 'start', config, runDir, group: this.group, from, faults } satisfies ToGroupProcess);
    if (this.stopping) child.send({ type: 'stop', at: this.stopAt } satisfies ToGroupProcess);
    return { ready, ended };
  }

  private pass(e: GroupEvent): void {
    // A group's own restart events are its child's: they are new whenever they come.
    if (e.type !== 'restart' && !this.filter.fresh(e.type, e.step)) return;
    this.ctx.emit(e);
    if (e.type === 'step' && this.killsLeft.length > 0 && e.step >= this.killsLeft[0]) {
      this.killsLeft.shift();
      this.child?.kill('SIGKILL');
    }
  }
}

interface AttemptEnd {
  done: boolean;
  steps: number;
  how: string;
  message: string;
}

interface Attempt {
  ready: Promise<{ backend: string; parameters: number }>;
  ended: Promise<AttemptEnd>;
}
