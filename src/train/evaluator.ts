/**
 * Validation off the training threads' critical path: a teacher actor of its own evaluates every group's model and
 * their ensemble on the held-out examples once all groups have reached an evaluation step. Groups hand their weights
 * over and carry on training; results arrive later as `eval` events, in step order.
 *
 * An evaluation whose actor fails (its worker throws or dies: `isActorFault`, src/util/actor.ts) runs again on a
 * fresh actor, up to `placement.restarts` times in the run, each time reported through `onRestart`; the run's
 * evaluations are then the same as if nothing had happened. Past that, or for an error that is not the actor's,
 * `drain` rethrows the first failure, an ActorError naming the evaluator ("evaluator: exited (code 1)").
 */
import type { Config } from '../config/schema.js';
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { Batch, MetricName, WorkloadData } from '../workloads/workload.js';
import type { EvalEvent } from './events.js';
import type { WorkerFaultKind } from './faults.js';
import { isActorFault } from '../util/actor.js';
import { StepGather } from './step-gather.js';
import { startTeacherActor, type TeacherClient } from './teachers.js';

/**
 * Rows per forward pass of an evaluation: at least 32, and as many as keep a chunk's probabilities near 2^17
 * values (rows x positions per row x classes), so that a 2-class workload is not evaluated 32 rows at a time.
 */
export const evalChunkRows = (positionsPerRow: number, classes: number): number =>
  Math.max(32, Math.floor(2 ** 17 / (positionsPerRow * classes)));

export class Evaluator {
  private readonly gather: StepGather<Float32Array>;
  /** The first evaluation that failed since the start (or the last restart). */
  private failure: Error | undefined;
  /** Bumped by `restart`: a failure of an evaluation that ran on an actor replaced since is not kept. */
  private generation = 0;
  private closed = false;
  /** Times the actor was replaced after a failure. */
  private restarts = 0;
  /** Called when a failed evaluation runs again on a fresh actor: the step, the restart's number, the failure. */
  onRestart: ((step: number, attempt: number, reason: string) => void) | undefined;

  private constructor(
    private actor: TeacherClient,
    private readonly config: Config,
    private readonly classes: number,
    /** The groups evaluated, undefined: all of the run's. */
    private readonly only: readonly number[] | undefined,
    groups: number,
    private readonly examples: Batch,
    private readonly metrics: readonly MetricName[],
    private readonly chunkRows: number,
    private readonly emit: (e: EvalEvent) => void,
  ) {
    this.gather = new StepGather(groups, async (step, weights) => {
      for (;;) {
        const generation = this.generation;
        try {
          // A copy goes to the actor: the weights stay here for a retry.
          await this.evaluate(step, weights.map((w) => w.slice()));
          return;
        } catch (err) {
          if (generation !== this.generation) continue; // the actor was replaced meanwhile: run it on the new one
          if (this.closed || !isActorFault(err) || this.restarts >= this.config.placement.restarts) {
            this.failure ??= err as Error;
            return;
          }
          this.restarts++;
          this.onRestart?.(step, this.restarts, (err as Error).message);
          await this.restart();
        }
      }
    });
  }

  /**
   * Evaluates on the workload data's validation set: cross-entropy, and the workload's `metrics`. `only` names
   * the groups evaluated when this process does not see them all (a group alone on its machine evaluates itself).
   */
  static async start(
    config: Config,
    data: Pick<WorkloadData, 'classes' | 'positionsPerRow' | 'validation'>,
    metrics: readonly MetricName[],
    emit: (e: EvalEvent) => void,
    only?: readonly number[],
  ): Promise<Evaluator> {
    const actor = await startTeacherActor('evaluator', config, data.classes);
    const chunkRows = evalChunkRows(data.positionsPerRow, data.classes);
    return new Evaluator(actor, config, data.classes, only, only?.length ?? config.groups, data.validation, metrics, chunkRows, emit);
  }

  /** Group `group`'s weights after `step` updates; evaluation starts when every group has submitted that step. */
  submit(group: number, step: number, weights: Float32Array): void {
    this.gather.submit(this.only ? this.only.indexOf(group) : group, step, weights);
  }

  /** Waits for every evaluation submitted so far; rethrows the first failure (since the start or the last restart). */
  async drain(): Promise<void> {
    await this.gather.drain();
    if (this.failure) throw this.failure;
  }

  /**
   * Replaces the actor with a fresh one (after a failure, `drain` having said so) and forgets the failure. The
   * evaluations that failed are lost; those queued behind them, and the steps not every group has submitted yet,
   * run on the new actor. Injected faults are not carried over.
   */
  async restart(): Promise<void> {
    if (this.closed) throw new Error('the evaluator is closed');
    const old = this.actor;
    this.actor = await startTeacherActor('evaluator', this.config, this.classes);
    this.generation++;
    this.failure = undefined;
    await old.close();
  }

  /**
   * Fault injection: the evaluation of step `atStep` throws in the evaluator's worker ("evaluator: injected fault at
   * step N"), or the worker exits ("evaluator: exited (code 1)").
   */
  async injectFault(atStep: number, kind: WorkerFaultKind = 'throw'): Promise<void> {
    await this.actor.request({ type: 'injectFault', id: 0, atStep, kind }, 'ok');
  }

  private async evaluate(step: number, weights: Float32Array[]): Promise<void> {
    const actor = this.actor;
    const slots = weights.map((_, g) => `g${g}`);
    await Promise.all(weights.map((w, g) => actor.request({ type: 'load', id: 0, slot: slots[g], weights: w }, 'ok', [w.buffer])));
    const batch = rowCopy(this.examples);
    const r = await actor.request(
      { type: 'evaluate', id: 0, slots, batch, chunkRows: this.chunkRows, metrics: this.metrics, step },
      'evaluated',
      batchBuffers(batch),
    );
    const metrics = Object.keys(r.metrics).length ? { metrics: r.metrics } : {};
    const groups = this.only ? { groups: [...this.only] } : {};
    this.emit({ type: 'eval', step, ...groups, losses: r.losses, ensembleLoss: r.ensembleLoss, positions: r.positions, ...metrics, time: Date.now() });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.actor.close();
  }
}
