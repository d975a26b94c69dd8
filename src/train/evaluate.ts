/**
 * The validation loss of a trained run's models, from its checkpoints, by a program that did not train them: each
 * group's model and their ensemble (averaged probabilities) on the workload's validation set, with the workload's
 * measures (AUC, accuracy), exactly as the run's own evaluations compute them.
 */
import { workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Evaluator } from './evaluator.js';
import type { EvalEvent } from './events.js';
import { loadRunModels } from './snapshots.js';

export interface EvaluateOptions {
  config: Config;
  runDir: string;
  /** A checkpoint step, or the newest that every group has (the default). */
  step?: number | 'newest';
}

export async function evaluate({ config, runDir, step = 'newest' }: EvaluateOptions): Promise<EvalEvent> {
  const workload = workloadOf(config);
  const models = await loadRunModels(config, runDir, step);
  const data = await workload.open(config);
  try {
    let result: EvalEvent | undefined;
    const evaluator = await Evaluator.start(config, data, workload.metrics, (e) => (result = e));
    try {
      models.weights.forEach((w, g) => evaluator.submit(g, models.step, w));
      await evaluator.drain();
    } finally {
      await evaluator.close();
    }
    return result!;
  } finally {
    await data.close();
  }
}
