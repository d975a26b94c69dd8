/**
 * Configs of tiny click and image runs on the small real-format inputs of ./workload-data.ts: the inputs are written
 * into `dir`, the store goes to `dir`/store, runs to `dir`/<name>. `set` adds or overrides keys (steps, schedule).
 */
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { criteoFile, idxSet } from './workload-data.js';

/** Criteo-small on 3000 training and 500 validation rows, 1024 hash buckets, one hidden layer of 16. */
export function clickConfig(dir: string, name: string, set: string[] = []): Config {
  criteoFile(join(dir, 'train.txt'), 3000, 1);
  criteoFile(join(dir, 'valid.txt'), 500, 2);
  return loadConfig({
    preset: 'criteo-small',
    set: [
      'backend=wasm', `runDir=${dir}`, `name=${name}`, `data.path=${join(dir, 'store')}`, `data.inputs=["${join(dir, 'train.txt')}"]`,
      `data.validationInputs=["${join(dir, 'valid.txt')}"]`, 'data.buckets=1024', 'data.shardRows=256', 'model.hidden=[16]',
      'optim.batch=64', 'eval.examples=500', ...set,
    ],
  });
}

/** Mnist-small on 640 training and 100 validation IDX images, 4 filters, 16 dense units. */
export function imageConfig(dir: string, name: string, set: string[] = []): Config {
  idxSet(join(dir, 'idx'), 640, 100);
  return loadConfig({
    preset: 'mnist-small',
    set: [
      'backend=wasm', `runDir=${dir}`, `name=${name}`, `data.path=${join(dir, 'store')}`, `data.source=${join(dir, 'idx')}`, 'data.shardRows=64',
      'model.filters=[4]', 'model.dense=16', 'optim.batch=32', 'optim.warmupSteps=0', 'eval.examples=100', ...set,
    ],
  });
}
