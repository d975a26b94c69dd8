import t from 'tap';
import { Subject } from 'rxjs';
import { loadConfig } from '../src/config/load.js';
import type { RunEvent } from '../src/train/events.js';
import { watchRun } from '../src/train/watch.js';

/** A stream that is not a terminal: the renderer writes plain lines to it. */
function lines() {
  const out: string[] = [];
  return { out, stream: { isTTY: false, write: (s: string) => (out.push(s), true) } as unknown as NodeJS.WritableStream };
}

const step = (group: number, s: number): RunEvent => ({
  type: 'step', group, step: s, loss: 1, taskLoss: 1, distillLoss: 0, alpha: 0, lr: 0.1, gradNorm: 1, positions: 16,
  ms: 1, computeMs: 1, reduceMs: 0, teacherWaitMs: 0, time: Date.now(),
});

t.test("the progress counts the run's steps, a step once every group has done it", async (t) => {
  const config = loadConfig({ preset: 'tiny', set: ['groups=2', 'steps=4'] });
  const events = new Subject<RunEvent>();
  const { out, stream } = lines();
  watchRun(events, config, { label: 'train', stream });
  events.next({ type: 'start', runId: 'r', runDir: '/runs/r', backend: 'wasm', parameters: 10, unit: 'tokens', config, fromStep: 0, time: Date.now() });
  for (let s = 1; s <= 4; s++) for (const g of [0, 1]) events.next(step(g, s));
  events.next({ type: 'done', step: 4, seconds: 1, losses: [1, 1], ensembleLoss: 1, time: Date.now() });
  t.match(out[0], /^train: 2 group\(s\) x 1 replica\(s\), 10 parameters, backend wasm, thread placement, run \/runs\/r/);
  t.match(out.at(-1), /^train: 100% 4\/4 steps/, '4 of 4 steps for a 4-step run of 2 groups');
  t.notOk(out.some((l) => /\/8 steps/.test(l)), 'never counted as 8 group-steps');
});

t.test('a group that lags holds the count back; a stopped run says where it resumes', async (t) => {
  const config = loadConfig({ preset: 'tiny', set: ['groups=2', 'steps=10'] });
  const events = new Subject<RunEvent>();
  const { out, stream } = lines();
  watchRun(events, config, { label: 'train', stream });
  events.next({ type: 'start', runId: 'r', runDir: '/runs/r', backend: 'wasm', parameters: 10, unit: 'tokens', config, fromStep: 2, time: Date.now() });
  for (let s = 3; s <= 6; s++) events.next(step(0, s));
  events.next(step(1, 3));
  events.next({ type: 'stopped', step: 3, resumesAt: 3, seconds: 1, time: Date.now() });
  t.match(out.at(-2), /3\/10 steps/, 'the run is at the slower group\'s step');
  t.match(out.at(-1), /stopped at step 3; a resume continues from the checkpoint of step 3/);
});
