/**
 * Every benchmark, one after the other, each printing its ratios against a baseline measured in the same run.
 *
 *   npm run bench                 # all
 *   npm run bench -- training     # some: ingest reader checkpoint allreduce training
 *
 * Benchmarks are measurements, never pass/fail: the tests assert behaviour, not speed.
 */
import { benchAllReduce } from './allreduce.js';
import { benchCheckpoint } from './checkpoint.js';
import { benchIngest } from './ingest.js';
import { benchReader } from './reader.js';
import { benchTraining } from './training.js';

const round = (v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v);
const show = (title: string, rows: Record<string, unknown>) => {
  console.log(`\n== ${title}`);
  console.table(Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, round(v)])));
};

const all = ['ingest', 'reader', 'checkpoint', 'allreduce', 'training'] as const;
const wanted = process.argv.slice(2).filter((a) => (all as readonly string[]).includes(a));
const run = (name: (typeof all)[number]) => wanted.length === 0 || wanted.includes(name);

let trainingRate: number | undefined;
if (run('training')) {
  const { arms, ratios } = await benchTraining();
  for (const a of arms) show(`training: ${a.arm}`, { ...a, arm: undefined });
  show('training: ratios', ratios);
  trainingRate = arms[0].tokensPerSecond;
}
if (run('ingest')) show('ingest (bundled corpus)', await benchIngest({}));
if (run('reader')) show('reader', await benchReader(trainingRate ? { trainingTokensPerSecond: trainingRate } : {}));
if (run('checkpoint')) show('checkpoint', await benchCheckpoint());
if (run('allreduce')) show('all-reduce', await benchAllReduce());
