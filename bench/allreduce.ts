/**
 * The group all-reduce against a plain memcpy of the same bytes.
 *
 *   npm run build && node dist/bench/allreduce.js
 *
 * K worker threads meet at the shared-memory barrier, each averages its 1/K chunk across all K slots (fixed order),
 * and meet again: what every synchronous-SGD step does. The baseline copies the gradient once (Float32Array.set).
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { createGroupMemory } from '../src/group/memory.js';

async function allReduceMs(replicas: number, parameters: number, rounds: number): Promise<number> {
  const memory = createGroupMemory(replicas, parameters);
  const file = new URL('./allreduce-worker.js', import.meta.url);
  const results = await Promise.all(
    Array.from({ length: replicas }, (_, replica) => {
      const w = new Worker(file, { workerData: { memory, replica, rounds } });
      return new Promise<{ ms: number; check: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }).finally(() => w.terminate());
    }),
  );
  const expected = (replicas + 1) / 2;
  if (results.some((r) => Math.abs(r.check - expected) > 1e-6)) throw new Error('all-reduce bench: wrong average');
  return Math.max(...results.map((r) => r.ms));
}

function memcpyMs(parameters: number, rounds: number): number {
  const src = new Float32Array(parameters).fill(1);
  const dst = new Float32Array(parameters);
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    src[0] = i;
    dst.set(src);
  }
  return (performance.now() - t0) / rounds;
}

export async function benchAllReduce(parameters = 1_000_000, rounds = 200): Promise<Record<string, number | string>> {
  const copy = memcpyMs(parameters, rounds);
  const out: Record<string, number | string> = { parameters, 'memcpy ms': round(copy), 'memcpy GB/s': round((parameters * 4) / copy / 1e6) };
  for (const k of [2]) {
    const ms = await allReduceMs(k, parameters, rounds);
    // Bytes of gradient averaged per step (one group's gradient), as for the memcpy.
    out[`all-reduce K=${k} ms`] = round(ms);
    out[`all-reduce K=${k} GB/s`] = round((parameters * 4) / ms / 1e6);
    out[`all-reduce K=${k} / memcpy`] = round(copy / ms);
  }
  return out;
}

const round = (x: number) => Number(x.toFixed(3));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchAllReduce());
}
