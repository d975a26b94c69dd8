/**
 * The supervisor of a codistillation run (Algorithm 1 of Anil et al. 2018, "Large scale distributed neural network
 * training through online distillation"): N groups, each a synchronous-SGD group on its own shards, each taught by
 * the others' stale snapshots. A group's loop is a `GroupTrainer` (group-trainer.ts); the supervisor only
 *
 *   starts      the groups where `placement.mode` puts them (threads of this process, or a process each),
 *               from their initialisation or, resuming, from the newest checkpoint every group has;
 *   evaluates   each model and their ensemble on the validation set, once every group has reached an eval step;
 *   restarts    a group process that dies, from its newest checkpoint (placement.ts);
 *   stops       the others with a final checkpoint when a group fails for good, and reports which one failed;
 *   guards      its folder (one process at a time, a new run never over an old one, a resume of the same models),
 *               and watches the validation loss for a run that diverges;
 *   tears down  every actor, process and store, whatever happened.
 *
 * Everything observable goes out on `events$`; the progress display, metrics log and service only read that.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Observable, ReplaySubject } from 'rxjs';
import { workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { WorkloadData } from '../workloads/workload.js';
import { RunError } from '../group/group.js';
import { openSnapshotStore } from '../store/index.js';
import { Evaluator } from './evaluator.js';
import { loadCheckpoint, newestIntactCommonStep } from './checkpoints.js';
import type { EvalEvent, RunEvent } from './events.js';
import type { InjectedFault } from './group-trainer.js';
import { appendMetrics, readMetrics, type MetricsLog } from './metrics.js';
import { DivergenceWatch } from './divergence.js';
import { placeGroups } from './placement.js';
import { checkResume, claimNewRunFolder, lockRunFolder, savedConfig } from './run-folder.js';
import { claimRunConfig, runStoreOf } from './run-store.js';
import { killPoint } from '../util/kill-point.js';

export interface TrainOptions {
  config: Config;
  /** Continue the run in this folder from its newest checkpoint. */
  resume?: string;
  /**
   * Start a new run in a folder that holds one (checkpoints, or a log of training steps), emptying it first.
   * Without it such a folder is refused: resume it, or name the new run otherwise.
   */
  overwrite?: boolean;
  /** Fault injection (tests, the fault-injection suite): a group's actor fails at a step; or the evaluator does. */
  faults?: (InjectedFault & { group: number })[];
  evaluatorFaults?: { atStep: number; kind: 'throw' | 'exit' }[];
  /** Fault injection with process placement: kill a group's process once it has done a step. */
  kills?: { group: number; atStep: number }[];
}

export interface RunSummary {
  runDir: string;
  /** The steps every group has done: config.steps, or fewer when the run was stopped. */
  steps: number;
  /** Whether `stop` ended the run before config.steps (it resumes from its checkpoints). */
  stopped: boolean;
  seconds: number;
  /** Final validation loss per group, and of the ensemble of all groups. */
  losses: number[];
  ensembleLoss: number;
  evals: EvalEvent[];
  /** Wall time of the training steps alone (without starting the actors and the final evaluation). */
  trainingSeconds: number;
  /** Training positions (the workload's unit: tokens, rows, images) of all groups per second of `trainingSeconds`. */
  positionsPerSecond: number;
  /** The unit of a position. */
  unit: string;
  /** A trivial predictor's validation loss, when the workload has one (the training base rate for click data). */
  reference?: { label: string; loss: number };
}

export interface Run {
  readonly runDir: string;
  /** Every event of the run; late subscribers get the full history. */
  readonly events$: Observable<RunEvent>;
  /** Resolves with the summary when training ends; rejects with a RunError naming the failing actor. */
  readonly done: Promise<RunSummary>;
  /**
   * Ends the run early: every group trains up to the step after the one the furthest group has done, writes a
   * checkpoint of it and stops. Resolves with the summary (`stopped: true`, `steps` the step every group reached);
   * `resume` continues from there.
   */
  stop(): Promise<RunSummary>;
}

/** How a run's work learns that `stop` was called, and asks for it itself (a failed log, a diverging loss). */
export interface StopControl {
  /** Calls `f` once a stop is asked for (at once if it already was). */
  onStop(f: () => void): void;
  /** Stops the run as `Run.stop` does (every group checkpoints the same step). */
  request(): void;
}

export function runDirOf(config: Config): string {
  const name = config.name || new Date().toISOString().replace(/[:.]/g, '-');
  return resolve(config.runDir, name);
}

export function startRun(opts: TrainOptions): Run {
  const runDir = opts.resume ? resolve(opts.resume) : runDirOf(opts.config);
  return runOf(runDir, (emit, stop) => execute(opts, runDir, emit, stop));
}

/** A Run whose events are what `work` emits, ending with an `error` event when it fails. */
export function runOf(runDir: string, work: (emit: (e: RunEvent) => void, stop: StopControl) => Promise<RunSummary>): Run {
  const events = new ReplaySubject<RunEvent>();
  let requested = false;
  const waiting: (() => void)[] = [];
  const request = () => {
    if (requested) return;
    requested = true;
    for (const f of waiting.splice(0)) f();
  };
  const control: StopControl = {
    onStop(f) {
      if (requested) f();
      else waiting.push(f);
    },
    request,
  };
  // The work logs its own error event (into the run's metrics log) once it has claimed the folder; a failure
  // before that (the folder is another run's, or locked) still ends the stream with one.
  let errored = false;
  const emit = (e: RunEvent) => {
    if (e.type === 'error') errored = true;
    events.next(e);
  };
  const done = work(emit, control).then(
    (summary) => {
      events.complete();
      return summary;
    },
    (err: Error) => {
      if (!errored) events.next({ type: 'error', message: err.message, time: Date.now() });
      events.complete();
      throw err;
    },
  );
  const stop = () => {
    request();
    return done;
  };
  return { runDir, events$: events.asObservable(), done, stop };
}

async function execute(opts: TrainOptions, runDir: string, emit: (e: RunEvent) => void, stop: StopControl): Promise<RunSummary> {
  const config = opts.config;
  const workload = workloadOf(config);
  const started = Date.now();
  if (opts.resume && !existsSync(join(runDir, 'config.json'))) {
    throw new RunError(`cannot resume ${runDir}: it has no config.json (is it a run folder?)`);
  }
  mkdirSync(runDir, { recursive: true });
  const lock = lockRunFolder(runDir);
  const closers: (() => Promise<void>)[] = [];
  let metrics: MetricsLog | undefined;
  try {
    // Nothing is written into the folder until it is known to be this run's.
    const saved = opts.resume ? savedConfig(runDir) : undefined;
    if (saved) checkResume(saved, config, workload, runDir);
    if (!opts.resume) {
      await claimNewRunFolder(config, runDir, opts.overwrite ?? false);
      writeRunConfig(runDir, config); // a new run's config is there from the start, so that a failed start is on record
    }
    const m = appendMetrics(join(runDir, 'metrics.jsonl'), emit, () => stop.request());
    metrics = m;
    return await supervise(opts, runDir, started, m.emit, stop, closers, () => m.failure);
  } catch (err) {
    metrics?.emit({ type: 'error', message: (err as Error).message, time: Date.now() });
    throw err;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await metrics?.close();
    lock.release();
  }
}

function writeRunConfig(runDir: string, config: Config): void {
  writeFileSync(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** Starts the groups and the evaluator, trains, and sums the run up; everything it opens goes on `closers`. */
async function supervise(
  opts: TrainOptions,
  runDir: string,
  started: number,
  log: (e: RunEvent) => void,
  stop: StopControl,
  closers: (() => Promise<void>)[],
  logFailure: () => Error | undefined,
): Promise<RunSummary> {
  const config = opts.config;
  const n = config.groups;
  const workload = workloadOf(config);
  const evals: EvalEvent[] = [];
  const data = await workload.open(config);
  closers.push(() => data.close());
  const store = runStoreOf(config, runDir);
  const checkpoints = openSnapshotStore(store.checkpoints);
  closers.push(() => checkpoints.close());
  const from = opts.resume ? await newestIntactCommonStep(checkpoints, n, log) : undefined;
  // A run whose last checkpoint is its last step either finished (its log says done), or died before its final
  // evaluation: that one is finished here, without training.
  const finished = from === config.steps && readMetrics(join(runDir, 'metrics.jsonl')).some((e) => e.type === 'done' && e.step === from);
  if (from !== undefined && (from > config.steps || finished)) {
    throw new RunError(
      `cannot resume ${runDir}: its checkpoints are of step ${from}, and the run trains ${config.steps} steps` +
        ` (${finished ? 'it has finished' : 'fewer than it has done'}); resume with --set steps=N for N above ${from} to train on`,
    );
  }
  if (!opts.resume && (await checkpoints.list()).length > 0) {
    throw new RunError(`${checkpoints.where} already holds checkpoints of a run: resume it, or start this one under another name or store.url`);
  }
  await claimRunConfig(store, config, opts.resume !== undefined);
  const divergence = new DivergenceWatch(config, log);
  const evaluator = await Evaluator.start(config, data, workload.metrics, (e) => {
    evals.push(e);
    log(e);
    if (divergence.check(e) && config.guard.stopOnDivergence) stop.request();
  });
  closers.push(() => evaluator.close());
  evaluator.onRestart = evaluatorRestarted(config, log);
  for (const f of opts.evaluatorFaults ?? []) await evaluator.injectFault(f.atStep, f.kind);

  if (from === config.steps) {
    for (let g = 0; g < n; g++) evaluator.submit(g, from, (await loadCheckpoint(checkpoints, g, from)).state.weights);
    await evaluator.drain();
    return finishRun({ config, runDir, started, trainingSeconds: 0, fromStep: from, reached: from, groups: n, evals, data, log });
  }

  // The newest step each group has reported: a stop asks every group to stop at the same step.
  const reached = new Array<number>(n).fill(from ?? 0);
  const placement = await placeGroups({
    config,
    runDir,
    from,
    data,
    checkpoints,
    emit: (e) => {
      if (e.type === 'step') reached[e.group] = e.step;
      log(e);
    },
    evaluate: (g, step, weights) => evaluator.submit(g, step, weights),
    faults: opts.faults,
    kills: opts.kills,
  });
  closers.push(() => placement.close());
  const { groups } = placement;
  const startStep = from ?? 0;
  // A resume that got this far has succeeded: its config (with the keys it changed) is the run's from now on.
  if (opts.resume) writeRunConfig(runDir, config);
  log({ type: 'start', runId: runDir, runDir, backend: groups[0].backend, parameters: groups[0].parameters, unit: workload.unit, config, fromStep: startStep, time: Date.now() });

  const trainingStarted = Date.now();
  // Every group stops after the step the furthest one is in, so they all checkpoint that same step.
  stop.onStop(() => {
    const at = Math.min(config.steps, Math.max(...reached) + 1);
    for (const g of groups) g.stop(at);
  });
  // A group that fails for good stops the others, each with a checkpoint of what it has done; the first failure
  // is what the run reports.
  const ends = await Promise.allSettled(
    groups.map((g) =>
      g.run().catch((err: unknown) => {
        for (const other of groups) if (other !== g) other.stop();
        throw err;
      }),
    ),
  );
  const failed = ends.find((e): e is PromiseRejectedResult => e.status === 'rejected');
  if (failed) throw failed.reason;
  const trainingSeconds = (Date.now() - trainingStarted) / 1000;
  killPoint('end', 0);
  await evaluator.drain();
  const steps = Math.min(...ends.map((e) => (e as PromiseFulfilledResult<number>).value));
  const resumesAt = steps < config.steps ? await checkpoints.latestCommonStep(n) : undefined;
  const failure = logFailure() ?? (config.guard.stopOnDivergence ? divergence.diverged : undefined);
  // A divergence seen only after the groups finished (the evaluations lag the training) still names the checkpoints.
  if (failure) throw stoppedBy(failure, resumesAt ?? (await checkpoints.latestCommonStep(n)), config.steps);
  return finishRun({ config, runDir, started, trainingSeconds, fromStep: startStep, reached: steps, resumesAt, groups: n, evals, data, log });
}

/** Reports an evaluation that runs again on a fresh evaluator, its actor having failed. */
export function evaluatorRestarted(config: Config, log: (e: RunEvent) => void): (step: number, attempt: number, reason: string) => void {
  return (step, attempt, reason) =>
    log({
      type: 'warning',
      kind: 'evaluator-restart',
      step,
      message: `${reason}; the evaluation of step ${step} runs again on a fresh evaluator (restart ${attempt} of ${config.placement.restarts})`,
      time: Date.now(),
    });
}

/** The error of a run that stopped itself (its log failed, its loss diverged), saying where it resumes. */
function stoppedBy(err: Error, resumesAt: number | undefined, steps?: number): Error {
  const where =
    resumesAt === undefined
      ? ''
      : `; every group has a checkpoint of step ${resumesAt}` + (resumesAt === steps ? ' (its last: the groups had finished)' : ', where a resume continues');
  const e = new RunError(`${err.message}${where}`);
  e.name = err.name;
  return e;
}

/**
 * Logs the `done` event (or `stopped`, for a run stopped early) and sums the run up: the last evaluation's losses,
 * the training throughput.
 */
export function finishRun(r: {
  config: Config;
  runDir: string;
  /** Date.now() when the run started, and seconds of the training steps alone. */
  started: number;
  trainingSeconds: number;
  fromStep: number;
  /** The newest step every group trained here reached (config.steps unless stopped early). */
  reached: number;
  /** Stopped early: the checkpoint step a resume continues from. */
  resumesAt?: number;
  /** How many groups trained here. */
  groups: number;
  evals: EvalEvent[];
  data: Pick<WorkloadData, 'positionsPerRow' | 'reference'>;
  log: (e: RunEvent) => void;
}): RunSummary {
  const { config, evals } = r;
  const last = evals[evals.length - 1];
  const seconds = (Date.now() - r.started) / 1000;
  const positions = (r.reached - r.fromStep) * r.groups * config.optim.batch * r.data.positionsPerRow;
  const losses = last?.losses ?? [];
  // The ensemble of one model is no ensemble: a group evaluated alone reports none.
  const ensembleLoss = last && !last.groups ? last.ensembleLoss : NaN;
  const stopped = r.reached < config.steps;
  if (stopped) r.log({ type: 'stopped', step: r.reached, resumesAt: r.resumesAt ?? 0, seconds, time: Date.now() });
  else r.log({ type: 'done', step: config.steps, seconds, losses, ensembleLoss, time: Date.now() });
  return {
    runDir: r.runDir,
    steps: r.reached,
    stopped,
    seconds,
    losses,
    ensembleLoss,
    evals,
    trainingSeconds: r.trainingSeconds,
    positionsPerSecond: r.trainingSeconds > 0 ? positions / r.trainingSeconds : 0,
    unit: workloadOf(config).unit,
    reference: r.data.reference,
  };
}

/** Trains to the end and returns the summary (library use without watching the stream). */
export async function train(opts: TrainOptions): Promise<RunSummary> {
  return startRun(opts).done;
}
