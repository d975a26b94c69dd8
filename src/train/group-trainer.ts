/**
 * One group's training loop (Algorithm 1 of Anil et al. 2018, for group i), the unit a supervisor places in a thread
 * of its own process, in a child process, or alone on a machine:
 *
 *   every step s:
 *     batch    <- the next batch of group i's shards             (the data stream, pulled one step ahead)
 *     teacher  <- mean over j != i of F(theta_j at its exchanged snapshot, batch)   (the group's teacher actor)
 *     alpha    <- 0 during burn-in, then distill.alpha (optionally ramped)
 *     theta_i  <- theta_i - lr * grad[ task(y, F(theta_i, x)) + alpha * distill(teacher, F(theta_i, x)) ]
 *     every distill.exchangeEvery steps: publish theta_i to the exchange
 *     every eval.every steps: hand theta_i to the evaluator (off the critical path)
 *     every checkpoint.every steps: write group i's checkpoint (off the critical path)
 *
 * The loop reads streams: batches come from the workload's stream through `pullEach` (one batch per demand, so
 * the readers never run ahead of training by more than the step prepared in advance), and each batch's teacher
 * target comes from the other groups' snapshots on the exchange's `published$`, chosen by the exchange rule.
 */
import { filter, firstValueFrom, map, startWith, Subject, take } from 'rxjs';
import type { Config } from '../config/schema.js';
import type { Exchange, Published } from '../exchange/exchange.js';
import { Group } from '../group/group.js';
import type { SnapshotStore } from '../store/snapshot.js';
import type { TrainBatch, TrainStream, WorkloadData } from '../workloads/workload.js';
import type { FaultKind } from './faults.js';
import { eachValue } from '../../streams/each-value.js';
import { pullEach } from '../../streams/pull-each.js';
import { CheckpointWriter, loadCheckpoint } from './checkpoints.js';
import type { CheckpointEvent, ExchangeEvent, StepEvent, WarningEvent } from './events.js';
import { initialOuterState, type OuterState, outerStep } from './outer.js';
import { averageDue, distillWeight, exchangeDue, learningRate, periodicDue } from './schedule.js';
import { GroupTeacher, type TeacherResult } from './teachers.js';
import { killPoint } from '../util/kill-point.js';

/** The seed of group `group`'s initialisation: codistilled groups start from their own. */
export const groupSeed = (seed: number, group: number): number => (seed * 7919 + group * 104729) >>> 0;

/** The seed a group's model is initialised from: its own, or group 0's for every group when they average weights. */
export const initSeed = (config: Config, group: number): number => groupSeed(config.seed, config.distill.method === 'average' ? 0 : group);

/** Whether a run's groups teach each other at all (codistillation, more than one group, alpha > 0, steps after burn-in). */
export const distilling = (config: Config): boolean =>
  config.distill.method === 'codistill' && config.groups > 1 && config.distill.alpha > 0 && config.distill.burnIn < config.steps;

export interface GroupTrainerOptions {
  config: Config;
  group: number;
  /** Stamped into the checkpoints' headers. */
  runId: string;
  /** The workload's data, opened by the host (one per process). */
  data: WorkloadData;
  exchange: Exchange;
  /** The run's checkpoint store (shared by the groups of one process). */
  checkpoints: SnapshotStore;
  /** The step of this group's checkpoint to continue from; undefined starts from the initialisation. */
  from?: number;
  emit: (e: StepEvent | ExchangeEvent | CheckpointEvent | WarningEvent) => void;
  /** Receives the group's weights at each evaluation step (the evaluator gathers every group's). */
  evaluate: (group: number, step: number, weights: Float32Array) => void;
  /** Fault injection (tests, the fault-injection suite): actors of this group that fail at a step. */
  faults?: InjectedFault[];
}

/**
 * A fault to inject into one of a group's actors at step `atStep` (0-based: the step that makes `atStep + 1`
 * updates): a replica, the reader serving that step's batch, or the group's teacher throws, or its worker exits, or
 * (a replica) computes a NaN loss. It happens once, or on every attempt when `repeat` is set.
 */
export interface InjectedFault {
  actor?: 'replica' | 'reader' | 'teacher';
  /** The replica, for actor 'replica' (default 0). */
  replica?: number;
  atStep: number;
  kind?: FaultKind;
  repeat?: boolean;
}

interface PreparedStep {
  step: number;
  batch: TrainBatch;
  /** Started as soon as the batch arrives, awaited when the step begins. */
  teacher?: Promise<TeacherResult>;
}

const STOPPED = Symbol('stopped');

export class GroupTrainer {
  /** The step after which the loop checkpoints and returns (`stop`); Infinity: it trains to config.steps. */
  private stopAt = Infinity;
  private wakeStop: () => void = () => undefined;
  /** Settles when `stop` is called: a step waiting for its teacher target (a group that died) gives up then. */
  private readonly stopped = new Promise<typeof STOPPED>((resolve) => (this.wakeStop = () => resolve(STOPPED)));
  /** Woken by the next `stop` call (a wait that outlives one stop request sees the next). */
  private readonly stopWaiters: (() => void)[] = [];

  private constructor(
    private readonly o: GroupTrainerOptions,
    private readonly model: Group,
    private readonly teacher: GroupTeacher | undefined,
    private readonly stream: TrainStream,
    private readonly checkpoints: CheckpointWriter,
    private readonly from: number,
    /** The snapshot of this group the others' teachers use now (recorded in each checkpoint). */
    private published: Published,
    /** distill.method = average: the outer optimizer's state (the same in every group). */
    private outer: OuterState | undefined,
  ) {}

  /** Starts the group's replicas and teacher, restores its checkpoint, and publishes the snapshot it serves. */
  static async start(o: GroupTrainerOptions): Promise<GroupTrainer> {
    const { config, group: g, data } = o;
    const resumed = o.from !== undefined ? await loadCheckpoint(o.checkpoints, g, o.from) : undefined;
    const { classes, positionsPerRow } = data;
    const model = await Group.start({ group: g, replicas: config.replicas, config, classes, seed: initSeed(config, g) });
    const closers: (() => Promise<void>)[] = [() => model.close()];
    try {
      const faults = o.faults ?? [];
      for (const f of faults.filter((f) => (f.actor ?? 'replica') === 'replica')) await model.injectFault(f.replica ?? 0, f.atStep, f.kind ?? 'throw');
      if (resumed) await model.setState(resumed.state);
      const published = resumed?.published ?? { group: g, step: 0, weights: (await model.state(false)).weights };
      await o.exchange.publish(g, published.step, published.weights);
      let outer: OuterState | undefined;
      if (config.distill.method === 'average') {
        if (resumed && !resumed.outer) throw new Error(`group ${g}'s checkpoint of step ${o.from} has no outer optimizer state (distill.method = average)`);
        outer = resumed?.outer ?? initialOuterState(published.weights);
      }
      const teacher = distilling(config) ? await GroupTeacher.start(g, config, classes, positionsPerRow, o.exchange) : undefined;
      if (teacher) closers.push(() => teacher.close());
      for (const f of faults.filter((f) => f.actor === 'teacher')) {
        if (!teacher) throw new Error(`group ${g} has no teacher to inject a fault into (distillation is off)`);
        await teacher.injectFault(f.atStep, f.kind === 'exit' ? 'exit' : 'throw');
      }
      const readerFault = faults.find((f) => f.actor === 'reader' && f.atStep >= (o.from ?? 0));
      const stream = data.openStream({
        group: g,
        groups: config.groups,
        sameData: config.distill.sameData,
        batch: config.optim.batch,
        seed: config.seed,
        cursor: resumed?.cursor,
        fault: readerFault && { atBatch: readerFault.atStep - (o.from ?? 0), kind: readerFault.kind === 'exit' ? 'exit' : 'throw' },
      });
      const checkpoints = new CheckpointWriter(o.checkpoints, config, o.runId, g, o.emit);
      return new GroupTrainer(o, model, teacher, stream, checkpoints, o.from ?? 0, published, outer);
    } catch (err) {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      throw err;
    }
  }

  get backend(): string {
    return this.model.backend;
  }

  get parameters(): number {
    return this.model.parameters;
  }

  /**
   * Asks the loop to end early with a checkpoint: after step `at` (the supervisor's common stopping point, so every
   * group checkpoints the same step), or, without `at`, after the step it is in, or at once when it is waiting for a
   * teacher target (whose snapshot may never come, when the group that owes it has died).
   */
  stop(at = 0): void {
    this.stopAt = Math.min(this.stopAt, at);
    this.wakeStop();
    for (const wake of this.stopWaiters.splice(0)) wake();
  }

  /** Trains from the start step to `config.steps` (or until `stop`); resolves with the steps done by then. */
  async run(): Promise<number> {
    const { config, group: g, data } = this.o;
    const { positionsPerRow, classes } = data;
    const demand$ = new Subject<void>();
    const steps$ = demand$.pipe(
      startWith(undefined),
      pullEach(() => this.stream.next()),
      take(config.steps - this.from),
      map((batch, i): PreparedStep => this.prepare(this.from + i, batch)),
    );
    let done = this.from;
    let checkpointed = this.from;
    let unsettled = false;
    let last: TrainBatch | undefined;
    let t0 = performance.now();
    for await (const { step: s, batch, teacher } of eachValue(steps$)) {
      if (done >= this.stopAt) break; // a stop that came while this batch was on its way
      // The next step's batch and teacher target are made while this step trains.
      if (s + 1 < Math.min(config.steps, this.stopAt)) demand$.next();
      const tw = performance.now();
      let target = teacher ? await Promise.race([teacher, this.stopped]) : undefined;
      if (target === STOPPED) {
        if (done >= this.stopAt) break;
        target = await teacher; // stopping later than this step: its target will come
      }
      const teacherWaitMs = performance.now() - tw;
      const alpha = target ? distillWeight(s, config.distill) : 0;
      const lr = learningRate(config.optim, s, config.steps);

      const continues = batch.continues && s > this.from;
      const r = await this.model.step({ step: s, lr, alpha, batch, continues, positionsPerRow, classes, teacher: target?.target });
      target?.release();

      done = s + 1;
      last = batch;
      if (r.skipped) {
        const what = r.skipped.what === 'loss' ? `the loss was ${r.skipped.value}` : `the gradient norm was ${r.skipped.value}`;
        this.o.emit({ type: 'warning', kind: 'non-finite', group: g, step: done, message: `group ${g} skipped step ${done}: ${what} (guard.nonFinite = skip)`, time: Date.now() });
      }
      this.o.emit({
        type: 'step',
        group: g,
        step: done,
        loss: r.loss,
        taskLoss: r.taskLoss,
        distillLoss: r.distillLoss,
        alpha,
        lr,
        gradNorm: r.gradNorm,
        positions: batch.rows * positionsPerRow,
        ms: performance.now() - t0,
        computeMs: r.computeMs,
        reduceMs: r.reduceMs,
        teacherWaitMs,
        staleness: target ? s - Math.min(...target.snapshotSteps) : undefined,
        ...(r.gradientStaleness !== undefined ? { gradientStaleness: r.gradientStaleness } : {}),
        ...(r.skipped ? { skipped: true } : {}),
        time: Date.now(),
      });
      t0 = performance.now();
      killPoint('step', done);

      const codistill = config.distill.method === 'codistill';
      const publish = codistill && config.groups > 1 && exchangeDue(done, config.distill.exchangeEvery, config.distill.burnIn);
      const average = !codistill && averageDue(done, config.groups, config.distill.exchangeEvery);
      const evaluate = periodicDue(done, config.eval.every, config.steps);
      const checkpoint = periodicDue(done, config.checkpoint.every, config.steps) || done >= this.stopAt;
      if (average && !(await this.average(done))) {
        // Stopped at the barrier (a group that died never came): this step's weights are not the run's, and the
        // newest checkpoint before it is where the group resumes.
        unsettled = true;
        break;
      }
      if (publish || evaluate || checkpoint) await this.afterStep(done, batch, { publish, evaluate, checkpoint });
      if (checkpoint) checkpointed = done;
      if (done >= this.stopAt) break;
    }
    if (last && checkpointed !== done && !unsettled) await this.afterStep(done, last, { publish: false, evaluate: false, checkpoint: true });
    await this.checkpoints.drain();
    return done;
  }

  async close(): Promise<void> {
    await this.checkpoints.settled();
    await this.stream.close().catch(() => undefined);
    await this.teacher?.close().catch(() => undefined);
    await this.model.close();
  }

  /** A step's batch and, when distillation is on at that step, its teacher target (already on its way). */
  private prepare(step: number, batch: TrainBatch): PreparedStep {
    const teacher = this.teacher && distillWeight(step, this.o.config.distill) > 0 ? this.teacher.predict(step, batch) : undefined;
    // A target that is never awaited (the run failed or stopped first) must not become an unhandled rejection.
    teacher?.catch(() => undefined);
    return { step, batch, teacher };
  }

  private async afterStep(done: number, batch: TrainBatch, due: { publish: boolean; evaluate: boolean; checkpoint: boolean }): Promise<void> {
    const g = this.o.group;
    const state = await this.model.state(due.checkpoint);
    if (due.publish) {
      await this.o.exchange.publish(g, done, state.weights);
      this.published = { group: g, step: done, weights: state.weights };
      this.o.emit({ type: 'exchange', group: g, step: done, time: Date.now() });
    }
    if (due.evaluate) this.o.evaluate(g, done, state.weights.slice());
    if (due.checkpoint) this.checkpoints.submit(done, { state, cursor: batch.cursor, published: this.published, outer: this.outer });
  }

  /**
   * The outer step of exchange by averaging, after `done` updates: publish this group's weights, wait for every
   * other group's of the same step (the barrier), and continue from the new anchor. False when the group was stopped
   * while waiting (a group that died never publishes).
   */
  private async average(done: number): Promise<boolean> {
    const { config, group: g, exchange } = this.o;
    const own = (await this.model.state(false)).weights;
    await exchange.publish(g, done, own);
    const arrived = Promise.all(
      [...Array(config.groups).keys()].map((j) =>
        j === g ? own : firstValueFrom(exchange.published$(j).pipe(filter((p) => p.step === done), map((p) => p.weights))),
      ),
    );
    arrived.catch(() => undefined);
    // A stop at a later step (every group stops at the same one) waits here with the others; a stop for now (a group
    // failed, and may never come) gives up.
    let all: Float32Array[] | typeof STOPPED = STOPPED;
    while (all === STOPPED) {
      if (this.stopAt < done) return false;
      const next: Promise<typeof STOPPED> = new Promise((resolve) => this.stopWaiters.push(() => resolve(STOPPED)));
      all = await Promise.race([arrived, next]);
    }
    this.outer = outerStep(this.outer!, all, config.distill.outerLr, config.distill.outerMomentum);
    await this.model.setState({ weights: this.outer.anchor.slice(), optimizer: [] });
    this.o.emit({ type: 'exchange', group: g, step: done, time: Date.now() });
    return true;
  }
}
