/**
 * Training throughput on the real corpus (lm-small), each arm measured in the same run:
 *
 *   npm run build && node dist/bench/training.js [steps]
 *
 * issue 3: tokens/s of a 1-replica group (batch B), a 2-replica group (batch 2B), and two independent 1-replica
 *          groups side by side (the hardware's ceiling for 2 threads); the share of step time outside tfjs compute.
 * issue 4: step time of 2 groups with distillation on from the first step, against the same 2 groups without it
 *          (the teachers' overhead), with full and top-k teacher targets, and distilling a quarter of the positions.
 * issue 10: the 2 codistilling groups as one process each (snapshots through LMDB) against the same groups as
 *          threads of one process (snapshots in memory).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { ensureData } from '../src/commands/ingest.js';
import type { StepEvent } from '../src/train/events.js';
import { startRun } from '../src/train/run.js';

export interface ArmResult {
  arm: string;
  positionsPerSecond: number;
  stepMs: number;
  computeMs: number;
  /** Share of a step's wall time outside tfjs compute (data, messaging, all-reduce, waiting). */
  outsideShare: number;
  teacherWaitMs: number;
}

/** Runs `config`, ignoring the first `warmup` steps of each group, and reads the steady-state rates off its events. */
export async function measureArm(arm: string, config: Config, warmup: number): Promise<ArmResult> {
  const run = startRun({ config });
  const steps: StepEvent[] = [];
  run.events$.subscribe((e) => {
    if (e.type === 'step' && e.step > warmup) steps.push(e);
  });
  await run.done;
  const first = Math.min(...steps.map((s) => s.time - s.ms));
  const last = Math.max(...steps.map((s) => s.time));
  const mean = (f: (s: StepEvent) => number) => steps.reduce((a, s) => a + f(s), 0) / steps.length;
  return {
    arm,
    positionsPerSecond: steps.reduce((a, s) => a + s.positions, 0) / ((last - first) / 1000),
    stepMs: mean((s) => s.ms),
    computeMs: mean((s) => s.computeMs),
    outsideShare: 1 - mean((s) => s.computeMs) / mean((s) => s.ms),
    teacherWaitMs: mean((s) => s.teacherWaitMs),
  };
}

export async function benchTraining(steps = 30, warmup = 5): Promise<{ arms: ArmResult[]; ratios: Record<string, number> }> {
  const base = loadConfig({ preset: 'lm-small' });
  await ensureData(base);
  const dir = mkdtempSync(join(tmpdir(), 'codistill-bench-'));
  const B = base.optim.batch;
  const common = [`steps=${steps + warmup}`, `runDir=${dir}`, 'eval.every=0', 'eval.examples=8', 'checkpoint.every=0', 'optim.warmupSteps=0'];
  const arm = (name: string, set: string[]) => measureArm(name, loadConfig({ preset: 'lm-small', set: [...common, `name=${name}`, ...set] }), warmup);
  try {
    const arms: ArmResult[] = [];
    arms.push(await arm('1 group x 1 replica, batch B', ['groups=1', 'replicas=1']));
    arms.push(await arm('1 group x 2 replicas, batch 2B', ['groups=1', 'replicas=2', `optim.batch=${2 * B}`]));
    arms.push(await arm('2 independent groups side by side', ['groups=2', 'replicas=1', 'distill.alpha=0']));
    arms.push(await arm('2 groups codistilling', ['groups=2', 'replicas=1', 'distill.burnIn=0']));
    arms.push(await arm('2 groups codistilling, top-64 targets', ['groups=2', 'replicas=1', 'distill.burnIn=0', 'distill.topK=64']));
    arms.push(await arm('2 groups codistilling, 1/4 of positions', ['groups=2', 'replicas=1', 'distill.burnIn=0', 'distill.positionFraction=0.25']));
    arms.push(await arm('2 groups codistilling, a process each', ['groups=2', 'replicas=1', 'distill.burnIn=0', 'placement.mode=process']));
    const [one, two, sideBySide, distill, topk, quarter, processes] = arms;
    return {
      arms,
      ratios: {
        '2-replica group / side-by-side ceiling (>= 0.9)': two.positionsPerSecond / sideBySide.positionsPerSecond,
        '2-replica group / 1 replica (speed-up)': two.positionsPerSecond / one.positionsPerSecond,
        'outside-compute share of a 2-replica step (< 0.1)': two.outsideShare,
        'teacher overhead: codistilling / plain step time - 1 (< 0.25)': distill.stepMs / sideBySide.stepMs - 1,
        'teacher overhead with top-64 targets': topk.stepMs / sideBySide.stepMs - 1,
        'teacher overhead distilling 1/4 of positions': quarter.stepMs / sideBySide.stepMs - 1,
        '2 groups as processes / as threads, tokens/s': processes.positionsPerSecond / distill.positionsPerSecond,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { arms, ratios } = await benchTraining(Number(process.argv[2] ?? 30));
  console.table(arms.map((a) => ({ ...a, positionsPerSecond: Math.round(a.positionsPerSecond), stepMs: a.stepMs.toFixed(1), computeMs: a.computeMs.toFixed(1), outsideShare: a.outsideShare.toFixed(3), teacherWaitMs: a.teacherWaitMs.toFixed(1) })));
  console.table(Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))])));
}
