/**
 * A model too large to allocate, refused by a workload's `check` while the config is validated, before anything is
 * built: its parameter count from the config's keys, against what one model can hold (all of a model's weights are
 * one Float32Array of at most 2^31-1 floats: gradients, all-reduce buffers, snapshots) and against this machine's
 * memory (every replica holds its own copy). Shared by every built-in workload (lm, click, image).
 */
import { totalmem } from 'node:os';

/** One part of a model: its parameter count and the config keys that size it. */
export interface ModelPart {
  what: string;
  params: number;
  keys: readonly string[];
}

/** The most floats one model may have: its weights, gradients and snapshots are each one Float32Array. */
export const MAX_MODEL_PARAMS = 2 ** 31 - 1;

const count = (n: number): string => (n >= 1e6 ? n.toExponential(1).replace('e+', 'e') : n.toLocaleString('en-US'));

/** Decimal bytes up to exabytes (16 EB), then powers of ten. */
export function byteSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  if (v >= 1000) return `${n.toExponential(1).replace('e+', 'e')} B`;
  return `${i === 0 ? Math.round(v) : v.toPrecision(v >= 100 ? 3 : 2)} ${units[i]}`;
}

/**
 * The problems (none, or one line naming the keys) of a model made of `parts`, each replica of which holds a copy
 * (`replicas`). `memory` is this machine's (default os.totalmem()).
 */
export function modelSizeProblems(parts: readonly ModelPart[], replicas: number, memory = totalmem()): string[] {
  const total = parts.reduce((sum, p) => sum + p.params, 0);
  const floats = total * 4;
  const largest = [...parts].sort((a, b) => b.params - a.params)[0];
  const keys = [...new Set(parts.filter((p) => p.params >= largest.params / 10).flatMap((p) => p.keys))];
  const head =
    `config key${keys.length > 1 ? 's' : ''} ${keys.join(', ')}: the model would have ${count(total)} parameters ` +
    `(${byteSize(floats)} of float32, ${count(largest.params)} of them in ${largest.what})`;
  const lower = `lower ${keys.join(' / ')}`;
  if (total > MAX_MODEL_PARAMS) {
    return [`${head}, over the ${count(MAX_MODEL_PARAMS)} (2^31-1) one model can hold: ${lower}`];
  }
  if (floats * replicas > memory) {
    const copies = replicas > 1 ? `its ${replicas} replicas' copies of the weights alone need ${byteSize(floats * replicas)}` : 'its weights alone need that';
    return [`${head}: ${copies}, more than this machine's ${byteSize(memory)} of memory: ${lower}${replicas > 1 ? ' or replicas' : ''}`];
  }
  return [];
}
