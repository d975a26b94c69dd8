/**
 * The one place a workload is named: everything else holds a `Model` (src/model/workload.ts).
 * A new workload adds its kind to the config schema and one case here; the switch is exhaustive.
 */
import { LstmLanguageModel } from './lstm.js';
import type { Model, ModelSpec } from './workload.js';

export function buildModel(spec: ModelSpec): Model {
  const kind = spec.config.kind;
  switch (kind) {
    case 'lstm-lm':
      return new LstmLanguageModel(spec);
    default: {
      const unknown: never = kind;
      throw new Error(`unknown model.kind '${String(unknown)}'`);
    }
  }
}
