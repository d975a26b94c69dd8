/**
 * Validation off the training threads' critical path: a teacher actor of its own evaluates every group's model and
 * their ensemble on the held-out windows once all groups have reached an evaluation step. Groups hand their weights
 * over and carry on training; results arrive later as `eval` events, in step order.
 */
import type { Config } from '../config/schema.js';
import type { Batch } from '../model/workload.js';
import type { EvalEvent } from './events.js';
import { StepGather } from './step-gather.js';
import { startTeacherActor, type TeacherClient } from './teachers.js';

export class Evaluator {
  private readonly gather: StepGather<Float32Array>;

  private constructor(
    private readonly actor: TeacherClient,
    groups: number,
    private readonly windows: Batch,
    private readonly emit: (e: EvalEvent) => void,
  ) {
    this.gather = new StepGather(groups, (step, weights) => this.evaluate(step, weights));
  }

  static async start(config: Config, classes: number, windows: Batch, emit: (e: EvalEvent) => void): Promise<Evaluator> {
    return new Evaluator(await startTeacherActor('evaluator', config, classes), config.groups, windows, emit);
  }

  /** Group `group`'s weights after `step` updates; evaluation starts when every group has submitted that step. */
  submit(group: number, step: number, weights: Float32Array): void {
    this.gather.submit(group, step, weights);
  }

  /** Waits for every evaluation submitted so far; rethrows the first failure. */
  drain(): Promise<void> {
    return this.gather.drain();
  }

  private async evaluate(step: number, weights: Float32Array[]): Promise<void> {
    const slots = weights.map((_, g) => `g${g}`);
    await Promise.all(weights.map((w, g) => this.actor.request({ type: 'load', id: 0, slot: slots[g], weights: w }, 'ok', [w.buffer])));
    const data = this.windows.data.slice();
    const r = await this.actor.request(
      { type: 'evaluate', id: 0, slots, batch: { data, rows: this.windows.rows, cols: this.windows.cols }, chunkRows: 32 },
      'evaluated',
      [data.buffer],
    );
    this.emit({ type: 'eval', step, losses: r.losses, ensembleLoss: r.ensembleLoss, positions: r.positions, time: Date.now() });
  }

  async close(): Promise<void> {
    await this.actor.close();
  }
}
