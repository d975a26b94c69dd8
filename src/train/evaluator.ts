/**
 * Validation off the training threads' critical path: a teacher actor of its own evaluates every group's model and
 * their ensemble on the held-out examples once all groups have reached an evaluation step. Groups hand their weights
 * over and carry on training; results arrive later as `eval` events, in step order.
 */
import type { Config } from '../config/schema.js';
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { Batch, MetricName, WorkloadData } from '../workloads/workload.js';
import type { EvalEvent } from './events.js';
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

  private constructor(
    private readonly actor: TeacherClient,
    /** The groups evaluated, undefined: all of the run's. */
    private readonly only: readonly number[] | undefined,
    groups: number,
    private readonly examples: Batch,
    private readonly metrics: readonly MetricName[],
    private readonly chunkRows: number,
    private readonly emit: (e: EvalEvent) => void,
  ) {
    this.gather = new StepGather(groups, (step, weights) => this.evaluate(step, weights));
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
    return new Evaluator(actor, only, only?.length ?? config.groups, data.validation, metrics, chunkRows, emit);
  }

  /** Group `group`'s weights after `step` updates; evaluation starts when every group has submitted that step. */
  submit(group: number, step: number, weights: Float32Array): void {
    this.gather.submit(this.only ? this.only.indexOf(group) : group, step, weights);
  }

  /** Waits for every evaluation submitted so far; rethrows the first failure. */
  drain(): Promise<void> {
    return this.gather.drain();
  }

  private async evaluate(step: number, weights: Float32Array[]): Promise<void> {
    const slots = weights.map((_, g) => `g${g}`);
    await Promise.all(weights.map((w, g) => this.actor.request({ type: 'load', id: 0, slot: slots[g], weights: w }, 'ok', [w.buffer])));
    const batch = rowCopy(this.examples);
    const r = await this.actor.request(
      { type: 'evaluate', id: 0, slots, batch, chunkRows: this.chunkRows, metrics: this.metrics },
      'evaluated',
      batchBuffers(batch),
    );
    const metrics = Object.keys(r.metrics).length ? { metrics: r.metrics } : {};
    const groups = this.only ? { groups: [...this.only] } : {};
    this.emit({ type: 'eval', step, ...groups, losses: r.losses, ensembleLoss: r.ensembleLoss, positions: r.positions, ...metrics, time: Date.now() });
  }

  async close(): Promise<void> {
    await this.actor.close();
  }
}
