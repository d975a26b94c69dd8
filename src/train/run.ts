/**
 * A codistillation run (Algorithm 1 of Anil et al. 2018, "Large scale distributed neural network training through online distillation"), top to bottom.
 *
 *   N groups, each a synchronous-SGD group of K replicas, each on its own shards of the training data.
 *   every step s of group i:
 *     batch        <- group i's next batch
 *     alpha        <- 0 during burn-in, then distill.alpha (optionally ramped)
 *     teacher      <- mean over j != i of F(theta_j at its published snapshot, batch)     (teacher actors, one step ahead)
 *     theta_i      <- theta_i - lr * grad[ task(y, F(theta_i, x)) + alpha * distill(teacher, F(theta_i, x)) ]
 *     every K_exchange steps: publish theta_i as a snapshot; the other groups' teachers reload it
 *     every eval.every steps: validation loss of each model and of the ensemble (off the critical path)
 *     every checkpoint.every steps: all groups' state in one store transaction
 *
 * Everything observable goes out on `events$`; the progress display, metrics log and service only read that.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Observable, ReplaySubject } from 'rxjs';
import { workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Group } from '../group/group.js';
import type { TrainBatch, TrainStream } from '../workloads/workload.js';
import { learningRate } from './optim.js';
import { SnapshotBoard, exchangeDue } from './board.js';
import { CheckpointWriter, loadLatestCheckpoint, type GroupCheckpoint } from './checkpoints.js';
import { Evaluator } from './evaluator.js';
import type { EvalEvent, RunEvent } from './events.js';
import { distillWeight } from './loss.js';
import { TeacherPool, type TeacherResult } from './teachers.js';
import { appendMetrics } from './metrics.js';

export interface TrainOptions {
  config: Config;
  /** Continue the run in this folder from its newest checkpoint. */
  resume?: string;
  /** Fault injection: make a replica throw at a step (tests, the fault-injection suite). */
  faults?: { group: number; replica: number; atStep: number }[];
}

export interface RunSummary {
  runDir: string;
  steps: number;
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
}

/** Each group starts from its own initialisation. */
export const groupSeed = (seed: number, group: number): number => (seed * 7919 + group * 104729) >>> 0;

export function runDirOf(config: Config): string {
  const name = config.name || new Date().toISOString().replace(/[:.]/g, '-');
  return resolve(config.runDir, name);
}

export function startRun(opts: TrainOptions): Run {
  const runDir = opts.resume ? resolve(opts.resume) : runDirOf(opts.config);
  const events = new ReplaySubject<RunEvent>();
  const done = execute(opts, runDir, (e) => events.next(e)).then(
    (summary) => {
      events.complete();
      return summary;
    },
    (err: Error) => {
      events.next({ type: 'error', message: err.message, time: Date.now() });
      events.complete();
      throw err;
    },
  );
  return { runDir, events$: events.asObservable(), done };
}

async function execute(opts: TrainOptions, runDir: string, emit: (e: RunEvent) => void): Promise<RunSummary> {
  const config = opts.config;
  const n = config.groups;
  const workload = workloadOf(config);
  const started = Date.now();
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const stopMetrics = appendMetrics(join(runDir, 'metrics.jsonl'), emit);
  const log = stopMetrics.emit;

  const closers: (() => Promise<void>)[] = [];
  const evals: EvalEvent[] = [];
  try {
    const data = await workload.open(config);
    closers.push(() => data.close());
    const { classes, positionsPerRow } = data;
    const checkpoints = await CheckpointWriter.open(join(runDir, 'checkpoints'), config, log);
    closers.push(() => checkpoints.close());
    const resumed = opts.resume ? await loadLatestCheckpoint(checkpoints.store, config) : undefined;
    const startStep = resumed?.step ?? 0;

    const starting = await Promise.allSettled(
      Array.from({ length: n }, (_, g) => Group.start({ group: g, replicas: config.replicas, config, classes, seed: groupSeed(config.seed, g) })),
    );
    // Groups that did start are closed even when another failed to.
    const groups = starting.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    closers.push(() => Promise.all(groups.map((g) => g.close())).then(() => undefined));
    const failedStart = starting.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    for (const f of opts.faults ?? []) await groups[f.group].injectFault(f.replica, f.atStep);

    // The snapshots teachers start from: each group's initial weights, or what the checkpoint recorded.
    const board = new SnapshotBoard(n);
    for (let g = 0; g < n; g++) {
      const saved = resumed?.groups[g];
      if (saved) {
        await groups[g].setState(saved.state);
        board.publish({ group: g, step: saved.published.step, weights: saved.published.weights });
      } else {
        board.publish({ group: g, step: 0, weights: (await groups[g].state(false)).weights });
      }
    }
    const distilling = n > 1 && config.distill.alpha > 0 && config.distill.burnIn < config.steps;
    const teachers = distilling ? await TeacherPool.start(config, classes, positionsPerRow, board) : undefined;
    if (teachers) closers.push(() => teachers.close());
    const evaluator = await Evaluator.start(config, data, workload.metrics, (e) => {
      evals.push(e);
      log(e);
    });
    closers.push(() => evaluator.close());

    log({ type: 'start', runId: runDir, runDir, backend: groups[0].backend, parameters: groups[0].parameters, unit: workload.unit, config, fromStep: startStep, time: Date.now() });

    const trainGroup = async (g: number): Promise<void> => {
      const group = groups[g];
      const stream: TrainStream = data.openStream({
        group: g,
        groups: n,
        sameData: config.distill.sameData,
        batch: config.optim.batch,
        seed: config.seed,
        cursor: resumed?.groups[g]?.cursor,
      });
      closers.push(() => stream.close());

      // Fetch a step's batch and start its teacher request, so that both are ready when the step begins.
      const prepare = async (s: number): Promise<{ batch: TrainBatch; teacher?: Promise<TeacherResult> }> => {
        const batch = await stream.next();
        const teacher = teachers && distillWeight(s, config.distill) > 0 ? teachers.predict(g, s, batch) : undefined;
        teacher?.catch(() => undefined); // reported where it is awaited
        return { batch, teacher };
      };

      // A prepared step that is never reached (the run failed or ended) must not become an unhandled rejection.
      const ahead = (s: number) => {
        const p = prepare(s);
        p.catch(() => undefined);
        return p;
      };
      let next = ahead(startStep);
      for (let s = startStep; s < config.steps; s++) {
        const t0 = performance.now();
        const { batch, teacher } = await next;
        if (s + 1 < config.steps) next = ahead(s + 1);
        const tw = performance.now();
        const target = teacher ? await teacher : undefined;
        const teacherWaitMs = performance.now() - tw;
        const alpha = target ? distillWeight(s, config.distill) : 0;
        const lr = learningRate(config.optim, s, config.steps);

        const continues = batch.continues && s > startStep;
        const r = await group.step({ step: s, lr, alpha, batch, continues, positionsPerRow, classes, teacher: target?.target });

        const doneSteps = s + 1;
        log({
          type: 'step',
          group: g,
          step: doneSteps,
          loss: r.loss,
          taskLoss: r.taskLoss,
          distillLoss: r.distillLoss,
          alpha,
          lr,
          gradNorm: r.gradNorm,
          positions: batch.rows * positionsPerRow,
          ms: performance.now() - t0,
          computeMs: r.computeMs,
          reduceMs: r.reduceMs,
          teacherWaitMs,
          staleness: target ? s - Math.min(...target.snapshotSteps) : undefined,
          time: Date.now(),
        });

        const publish = n > 1 && exchangeDue(doneSteps, config.distill.exchangeEvery, config.distill.burnIn);
        // Evaluations and checkpoints come every `every` steps (0: never) and always at the end.
        const due = (every: number) => doneSteps === config.steps || (every > 0 && doneSteps % every === 0);
        const evaluate = due(config.eval.every);
        const checkpoint = due(config.checkpoint.every);
        if (!publish && !evaluate && !checkpoint) continue;
        const state = await group.state(checkpoint);
        if (publish) {
          board.publish({ group: g, step: doneSteps, weights: state.weights });
          log({ type: 'exchange', group: g, step: doneSteps, time: Date.now() });
        }
        if (evaluate) evaluator.submit(g, doneSteps, state.weights.slice());
        if (checkpoint) {
          const saved: GroupCheckpoint = { state, cursor: batch.cursor, published: board.newest(g)! };
          checkpoints.submit(g, doneSteps, saved);
        }
      }
    };

    const trainingStarted = Date.now();
    await Promise.all(groups.map((_, g) => trainGroup(g)));
    const trainingSeconds = (Date.now() - trainingStarted) / 1000;
    await evaluator.drain();
    await checkpoints.drain();

    const last = evals[evals.length - 1];
    const seconds = (Date.now() - started) / 1000;
    const positions = (config.steps - startStep) * n * config.optim.batch * positionsPerRow;
    log({ type: 'done', step: config.steps, seconds, losses: last?.losses ?? [], ensembleLoss: last?.ensembleLoss ?? NaN, time: Date.now() });
    return {
      runDir,
      steps: config.steps,
      seconds,
      losses: last?.losses ?? [],
      ensembleLoss: last?.ensembleLoss ?? NaN,
      evals,
      trainingSeconds,
      positionsPerSecond: positions / trainingSeconds,
      unit: workload.unit,
      reference: data.reference,
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await stopMetrics.close();
  }
}

/** Trains to the end and returns the summary (library use without watching the stream). */
export async function train(opts: TrainOptions): Promise<RunSummary> {
  return startRun(opts).done;
}
