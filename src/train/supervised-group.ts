/**
 * A group's loop under supervision: when one of its actors fails (a replica, reader or teacher worker throws or
 * dies) or a non-finite step asks for a rollback (`guard.nonFinite = rollback`), the group is closed and started
 * again from its newest intact checkpoint, up to `placement.restarts` times. Restarted from a checkpoint, a group in
 * sync mode replays the same steps on the same batches against the same teacher snapshots, so the run ends bitwise
 * as if nothing had happened; the events it repeats while catching up are dropped, so the run's log reads the same.
 *
 * A failure that would only repeat (bad data, a config the model cannot take) is not restarted: it fails the group
 * at once, as does one more failure than the restarts allow; the error says how many restarts were tried.
 */
import { NonFiniteError, RunError } from '../group/group.js';
import { isActorFault } from '../util/actor.js';
import type { CheckpointEvent, ExchangeEvent, RestartEvent, StepEvent, WarningEvent } from './events.js';
import { newestIntactCheckpoint } from './checkpoints.js';
import { GroupTrainer, type GroupTrainerOptions, type InjectedFault } from './group-trainer.js';

/** Whether a group that failed with `err` is worth starting again from its checkpoint. */
export const restartable = (err: unknown): boolean => isActorFault(err) || err instanceof NonFiniteError;

/**
 * Drops the events and evaluations a restarted group repeats: each kind passes only for steps past the newest one
 * already passed on.
 */
export class ReplayFilter {
  private readonly passed = { step: 0, exchange: -1, checkpoint: -1, evaluate: -1, warning: -1 };

  constructor(from = 0) {
    this.passed.step = from;
  }

  /** Whether an event (or, with kind 'evaluate', an evaluation) of this kind at this step is new. */
  fresh(kind: keyof ReplayFilter['passed'], step: number): boolean {
    if (step <= this.passed[kind]) return false;
    this.passed[kind] = step;
    return true;
  }
}

export type SupervisedOptions = Omit<GroupTrainerOptions, 'emit'> & {
  emit: (e: StepEvent | ExchangeEvent | CheckpointEvent | RestartEvent | WarningEvent) => void;
};

export class SupervisedGroup {
  private restarts = 0;
  private stopAt: number | undefined;
  private readonly filter: ReplayFilter;

  private constructor(
    private readonly o: SupervisedOptions,
    private trainer: GroupTrainer,
  ) {
    this.filter = new ReplayFilter(o.from ?? 0);
  }

  static async start(o: SupervisedOptions): Promise<SupervisedGroup> {
    let self: SupervisedGroup | undefined;
    const trainer = await GroupTrainer.start(SupervisedGroup.attemptOptions(o, () => self, o.from, o.faults));
    self = new SupervisedGroup(o, trainer);
    return self;
  }

  /** The options of one attempt: its events pass through the replay filter once the group exists. */
  private static attemptOptions(
    o: SupervisedOptions,
    self: () => SupervisedGroup | undefined,
    from: number | undefined,
    faults: InjectedFault[] | undefined,
  ): GroupTrainerOptions {
    return {
      ...o,
      from,
      faults,
      emit: (e) => {
        const s = self();
        if (!s || s.filter.fresh(e.type === 'step' ? 'step' : e.type, e.step)) o.emit(e);
      },
      evaluate: (g, step, weights) => {
        const s = self();
        if (!s || s.filter.fresh('evaluate', step)) o.evaluate(g, step, weights);
      },
    };
  }

  get backend(): string {
    return this.trainer.backend;
  }

  get parameters(): number {
    return this.trainer.parameters;
  }

  stop(at = 0): void {
    this.stopAt = Math.min(this.stopAt ?? Infinity, at);
    this.trainer.stop(at);
  }

  /** Trains to the end (or to `stop`), restarting the group from its checkpoint after an actor fault. */
  async run(): Promise<number> {
    const limit = this.o.config.placement.restarts;
    for (;;) {
      try {
        return await this.trainer.run();
      } catch (err) {
        if (!restartable(err) || this.stopAt !== undefined || this.restarts >= limit) {
          if (!restartable(err) || this.restarts === 0) throw err;
          throw new RunError(`${(err as Error).message} (after ${this.restarts} restart${this.restarts === 1 ? '' : 's'}; placement.restarts = ${limit})`);
        }
        this.restarts++;
        await this.trainer.close().catch(() => undefined);
        const from = await newestIntactCheckpoint(this.o.checkpoints, this.o.group, (w) => this.o.emit(w));
        const reason = (err as Error).message;
        this.o.emit({ type: 'restart', group: this.o.group, fromStep: from ?? 0, attempt: this.restarts, reason, time: Date.now() });
        // An injected fault happens once, unless it is meant to repeat (the test of a fault that keeps coming).
        const faults = this.o.faults?.filter((f) => f.repeat);
        this.trainer = await GroupTrainer.start(SupervisedGroup.attemptOptions(this.o, () => this, from, faults));
        if (this.stopAt !== undefined) this.trainer.stop(this.stopAt);
      }
    }
  }

  close(): Promise<void> {
    return this.trainer.close();
  }
}
