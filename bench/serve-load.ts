/**
 * The service under load: a client on loopback asks for predictions, `clients` at a time, while a run trains;
 * prediction latency (p50, p99) and the training slowdown against the same run trained by the same service without
 * load, both measured here, one after the other.
 *
 *   npm run bench -- serve-load
 *
 * The run is lm-small on the bundled corpus (groups of 1 replica, 2 groups codistilling); predictions ask the
 * ensemble of its newest checkpoint for the next tokens of a sentence.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServeOptions } from '../src/serve/options.js';
import { createService } from '../src/serve/server.js';

export interface ServeLoadResult {
  steps: number;
  clients: number;
  predictions: number;
  predictionsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Training wall time (start to end event) without load, and with it. */
  quietSeconds: number;
  loadedSeconds: number;
  /** loadedSeconds / quietSeconds. */
  slowdown: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

export async function benchServeLoad({ steps = 120, clients = 4 } = {}): Promise<ServeLoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-serve-load-'));
  const token = 'bench-token-0123456789abcdef';
  const service = createService(loadServeOptions(undefined, { port: 0, runs: join(dir, 'runs'), results: join(dir, 'results'), token }));
  const base = await service.listen();
  const post = (path: string, body: unknown, auth = true) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const set = ['backend=wasm', `steps=${steps}`, `checkpoint.every=${Math.max(1, Math.floor(steps / 6))}`, `eval.every=${steps}`];

  /** Trains one run through the service; `during` runs from its first checkpoint of every group until it ends. */
  async function train(name: string, during?: (ended: () => boolean) => Promise<void>): Promise<number> {
    const res = await post('/api/runs', { preset: 'lm-small', set, name });
    if (res.status !== 201) throw new Error(`start ${name}: ${res.status} ${await res.text()}`);
    let started = 0;
    let finished = 0;
    let load: Promise<void> | undefined;
    const checkpointed = new Set<number>();
    const stop = new AbortController();
    for await (const { event } of service.runs.events(name, 0, stop.signal)) {
      if (event.type === 'start') started = event.time;
      if (event.type === 'checkpoint') checkpointed.add(event.group);
      // Predictions start once every group has a checkpoint (the newest snapshot the ensemble answers from).
      if (checkpointed.size === service.runs.config(name).groups && during && !load) load = during(() => finished > 0);
      if (event.type === 'done' || event.type === 'error') finished = event.time;
    }
    await load;
    return (finished - started) / 1000;
  }

  try {
    const quietSeconds = await train('quiet');
    const latencies: number[] = [];
    let loadStart = 0;
    let loadEnd = 0;
    const loadedSeconds = await train('loaded', async (ended) => {
      loadStart = performance.now();
      await Promise.all(
        [...Array(clients).keys()].map(async () => {
          while (!ended()) {
            const t0 = performance.now();
            const res = await post('/api/runs/loaded/predict', { input: 'The state of the Union is', topK: 5 }, false);
            await res.text();
            if (res.status !== 200) throw new Error(`predict: ${res.status}`);
            latencies.push(performance.now() - t0);
          }
        }),
      );
      loadEnd = performance.now();
    });
    latencies.sort((a, b) => a - b);
    return {
      steps,
      clients,
      predictions: latencies.length,
      predictionsPerSecond: latencies.length / ((loadEnd - loadStart) / 1000),
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      quietSeconds,
      loadedSeconds,
      slowdown: loadedSeconds / quietSeconds,
    };
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
