/** A tiny real corpus and config for end-to-end runs: the fixture texts, ingested once per test file. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { lmConfig } from '../../src/workloads/lm/config.js';
import { ingest } from '../../src/workloads/lm/corpus/ingest.js';
import { openSnapshotStore } from '../../src/store/index.js';
import { loadLatestCheckpoint } from '../../src/train/checkpoints.js';
import { runStoreOf } from '../../src/train/run-store.js';

const fixtures = fileURLToPath(new URL('../fixtures/text', import.meta.url));

let corpusPath: Promise<string> | undefined;

/** Ingests the fixture texts (vocabulary 256, small shards) into a temp folder, once per process. */
export function fixtureCorpus(): Promise<string> {
  corpusPath ??= (async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'codistill-test-')), 'corpus');
    await ingest({ corpus: { ...lmConfig(loadConfig({ preset: 'tiny' })).corpus, path, inputs: [fixtures], shardTokens: 1024 }, seed: 1 });
    return path;
  })();
  return corpusPath;
}

/** The tiny preset on the fixture corpus, writing runs into `dir`, with `set` overrides. */
export async function tinyConfig(dir: string, name: string, set: string[] = []): Promise<Config> {
  const path = await fixtureCorpus();
  return loadConfig({
    preset: 'tiny',
    set: [`corpus.path=${path}`, `runDir=${dir}`, `name=${name}`, 'backend=wasm', ...set],
  });
}

/** Final weights of every group, read from the run's newest checkpoint (in its store: the run folder by default). */
export async function finalWeights(runDir: string, config: Config): Promise<Float32Array[]> {
  const store = openSnapshotStore(runStoreOf(config, runDir).checkpoints);
  try {
    const c = await loadLatestCheckpoint(store, config);
    if (!c) throw new Error(`${runDir} has no checkpoint`);
    return c.groups.map((g) => g.state.weights.slice());
  } finally {
    await store.close();
  }
}

/** The step of the newest checkpoint every group of the run in `runDir` has in its store (0: none). */
export async function newestCommonCheckpoint(runDir: string): Promise<number> {
  const config = loadConfig({ preset: join(runDir, 'config.json') });
  const store = openSnapshotStore(runStoreOf(config, runDir).checkpoints);
  try {
    return (await store.latestCommonStep(config.groups)) ?? 0;
  } finally {
    await store.close();
  }
}

export const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
