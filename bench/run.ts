/**
 * Every benchmark, one after the other, each printing its ratios against a baseline measured in the same run.
 *
 *   npm run bench                 # all
 *   npm run bench -- training     # some: ingest ingest-threads click-ingest reader checkpoint snapshot-stores allreduce training workloads serve-load vs-pytorch
 *
 * Benchmarks are measurements, never pass/fail: the tests assert behaviour, not speed.
 */
import { benchAllReduce } from './allreduce.js';
import { benchCheckpoint } from './checkpoint.js';
import { benchClickIngest } from './click-ingest.js';
import { benchIngest } from './ingest.js';
import { benchIngestThreads } from './ingest-threads.js';
import { benchReader } from './reader.js';
import { benchServeLoad } from './serve-load.js';
import { benchSnapshotStores } from './snapshot-stores.js';
import { benchTraining } from './training.js';
import { benchWorkloadSteps } from './workload-steps.js';
import { benchVsPytorch } from './vs-pytorch.js';

const round = (v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v);
const show = (title: string, rows: Record<string, unknown>) => {
  console.log(`\n== ${title}`);
  console.table(Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, round(v)])));
};

const all = ['ingest', 'ingest-threads', 'click-ingest', 'reader', 'checkpoint', 'snapshot-stores', 'allreduce', 'training', 'workloads', 'serve-load', 'vs-pytorch'] as const;
const wanted = process.argv.slice(2).filter((a) => (all as readonly string[]).includes(a));
const run = (name: (typeof all)[number]) => wanted.length === 0 || wanted.includes(name);

let trainingRate: number | undefined;
if (run('training')) {
  const { arms, ratios } = await benchTraining();
  for (const a of arms) show(`training: ${a.arm}`, { ...a, arm: undefined });
  show('training: ratios', ratios);
  trainingRate = arms[0].positionsPerSecond;
}
if (run('ingest')) show('ingest (bundled corpus)', await benchIngest({}));
if (run('ingest-threads')) show('ingest on 1 and 2 encoder threads, 2 GB of input', await benchIngestThreads());
if (run('click-ingest')) show('click ingest (synthetic Criteo) vs a plain line split', await benchClickIngest());
if (run('reader')) show('reader', await benchReader(trainingRate ? { trainingTokensPerSecond: trainingRate } : {}));
if (run('checkpoint')) show('checkpoint', await benchCheckpoint());
if (run('snapshot-stores')) for (const row of await benchSnapshotStores()) show(`snapshot stores: ${row.size}`, { ...row, size: undefined });
if (run('allreduce')) show('all-reduce', await benchAllReduce());
if (run('workloads')) for (const row of await benchWorkloadSteps()) show(`step time: ${row.preset}`, { ...row, preset: undefined });
if (run('vs-pytorch')) {
  const { arms, ratios } = await benchVsPytorch();
  for (const a of arms) show(`vs PyTorch: ${a.arm} (OpenBLAS env ${a.env})`, { ...a, arm: undefined, env: undefined });
  show('vs PyTorch: ratios (one thread; the LSTM of 8192 x 128, 256 units, batch 32 x 32)', ratios);
}
if (run('serve-load')) show('service: predict latency while training, and the training slowdown', { ...(await benchServeLoad()) });
