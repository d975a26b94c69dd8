/**
 * One group of a run whose groups a launcher places (a Kubernetes Indexed Job, a Slurm job step, one machine each),
 * not a supervisor: `codistill train --group i`. The groups meet in the run's store (`store.url`: a shared
 * directory or S3 across machines, LMDB on one machine), where the config the run was started with is recorded;
 * a group that brings another config is refused. A group started again (its pod or job step rescheduled)
 * continues from its newest checkpoint in the store. Each group evaluates its own model; the ensemble of all
 * groups needs every model in one place, which only a supervised run has.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Evaluator } from './evaluator.js';
import type { EvalEvent, RunEvent } from './events.js';
import { hostGroup } from './group-host.js';
import { appendMetrics, type MetricsLog } from './metrics.js';
import { launchIndexOf } from '../util/launch-index.js';
import { lockRunFolder } from './run-folder.js';
import { claimRunConfig, runStoreOf } from './run-store.js';
import { evaluatorRestarted, finishRun, runDirOf, runOf, type Run, type RunSummary, type StopControl } from './run.js';

/**
 * The group this process trains: `flag` when it is a number, else (flag `true`: `--group` without a value) the
 * first launcher variable set in `env`. Errors name what was missing or out of range.
 */
export function groupIndexOf(flag: string | true, groups: number, env: NodeJS.ProcessEnv = process.env): number {
  const o = { flag: '--group', what: 'group', count: groups, countSource: `the run has groups=${groups}` };
  return launchIndexOf(flag === true ? undefined : flag, o, env);
}

export interface GroupRunOptions {
  config: Config;
  group: number;
}

/** Trains group `group` of the run in `config.store.url`; the Run's events are this group's. */
export function startGroupRun(o: GroupRunOptions): Run {
  const runDir = runDirOf(o.config);
  return runOf(runDir, (emit, stop) => executeGroup(o, runDir, emit, stop));
}

async function executeGroup({ config, group }: GroupRunOptions, runDir: string, emit: (e: RunEvent) => void, stop: StopControl): Promise<RunSummary> {
  const workload = workloadOf(config);
  const started = Date.now();
  mkdirSync(runDir, { recursive: true });
  // The groups of a run may share a folder (one machine, or a shared file system): each holds a lock of its own.
  const lock = lockRunFolder(runDir, `group-${group}.lock`);
  const closers: (() => Promise<void>)[] = [];
  let metrics: MetricsLog | undefined;
  try {
    writeFileSync(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    const m = appendMetrics(join(runDir, `metrics-group-${group}.jsonl`), emit, () => stop.request());
    metrics = m;
    const log = m.emit;
    const evals: EvalEvent[] = [];
    await claimRunConfig(runStoreOf(config, runDir), config);
    let evaluator: Evaluator | undefined;
    const hosted = await hostGroup({
      config,
      runDir,
      group,
      from: 'newest',
      emit: log,
      evaluate: (g, step, weights) => evaluator?.submit(g, step, weights),
    });
    closers.push(() => hosted.close());
    evaluator = await Evaluator.start(config, hosted.data, workload.metrics, (e) => {
      evals.push(e);
      log(e);
    }, [group]);
    closers.push(() => evaluator!.close());
    evaluator.onRestart = evaluatorRestarted(config, log);
    const { trainer, from: fromStep } = hosted;
    log({ type: 'start', runId: runDir, runDir, backend: trainer.backend, parameters: trainer.parameters, unit: workload.unit, config, fromStep, time: Date.now() });
    const trainingStarted = Date.now();
    stop.onStop(() => trainer.stop());
    const reached = await trainer.run();
    const trainingSeconds = (Date.now() - trainingStarted) / 1000;
    await evaluator.drain();
    const resumesAt = (await hosted.checkpoints.latest(group))?.step;
    if (m.failure) throw m.failure;
    return finishRun({ config, runDir, started, trainingSeconds, fromStep, reached, resumesAt, groups: 1, evals, data: hosted.data, log });
  } catch (err) {
    metrics?.emit({ type: 'error', message: (err as Error).message, time: Date.now() });
    throw err;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await metrics?.close();
    lock.release();
  }
}
