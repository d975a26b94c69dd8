/**
 * The runs a service knows: those it started (live, or ended while it was up) and those it finds on disk under its
 * runs folder (each a folder with a config.json). Each has one numbered history of events, so that a client that
 * reconnects with `Last-Event-ID: n` gets exactly the events after the n-th:
 *
 *   - a run on disk: its metrics.jsonl, line by line (event i is line i);
 *   - a live run: the same lines written before it started (a resumed run's earlier life), then each new event.
 *
 * Every event a run emits is also a line of its metrics.jsonl, so the numbers stay the same across a restart of the
 * service (a failed run's final `error` event is the exception: it is only in the live history).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, validateConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ensureData } from '../commands/ingest.js';
import { resumeConfig } from '../commands/train.js';
import type { EvalEvent, RunEvent } from '../train/events.js';
import { readMetrics } from '../train/metrics.js';
import { startRun, type Run, type RunSummary } from '../train/run.js';
import type { RunInfoReply as RunInfo } from './schemas.js';

/**
 * running: training now; stopping: a stop was asked, the groups are checkpointing; then how it ended. interrupted:
 * its log ends without an ending (the process that trained it was killed): it resumes from its checkpoints.
 */
export type RunState = RunInfo['state'];

export type { RunInfoReply as RunInfo } from './schemas.js';

/** Something the client asked for that is not there (404) or not possible now (409). */
export class ServiceError extends Error {
  override name = 'ServiceError';
  constructor(
    readonly statusCode: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A run's numbered history, with a way to wait for the next event. */
class History {
  readonly events: RunEvent[] = [];
  ended = true;

  /** The run folder's metrics.jsonl so far (event i is line i). */
  static of(runDir: string): History {
    const h = new History();
    h.events.push(...readMetrics(join(runDir, 'metrics.jsonl')));
    return h;
  }
  private wake: (() => void)[] = [];

  push(e: RunEvent): void {
    this.events.push(e);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Resolves at the next event or the end (at once if `seen` events are already past). */
  changed(seen: number): Promise<void> {
    if (this.events.length > seen || this.ended) return Promise.resolve();
    return new Promise((r) => this.wake.push(r));
  }

  private notify(): void {
    for (const w of this.wake.splice(0)) w();
  }
}

interface Entry {
  id: string;
  runDir: string;
  config: Config;
  history: History;
  run?: Run;
  stopping?: boolean;
  error?: string;
}

/** The step every group has reached, from a history: the minimum over groups of their newest step. */
function stepOf(events: readonly RunEvent[], groups: number): number {
  const reached = new Array<number>(groups).fill(0);
  let start = 0;
  for (const e of events) {
    if (e.type === 'start') {
      start = e.fromStep;
      reached.fill(start);
    } else if (e.type === 'step' && e.group < groups) reached[e.group] = e.step;
    else if (e.type === 'stopped' || e.type === 'done') reached.fill(e.step);
  }
  return Math.min(...reached);
}

function endOf(events: readonly RunEvent[]): RunState {
  for (let i = events.length - 1; i >= 0; i--) {
    const t = events[i].type;
    if (t === 'done') return 'finished';
    if (t === 'stopped') return 'stopped';
    if (t === 'error') return 'failed';
    if (t === 'start') break;
  }
  return 'interrupted';
}

export interface RunRegistryOptions {
  /** The folder the service's runs live in (each run a folder under it). */
  runs: string;
  /** Every event of every live run, with its run's id and config. */
  onEvent?: (id: string, e: RunEvent, config: Config) => void;
}

export class RunRegistry {
  readonly root: string;
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: RunRegistryOptions) {
    this.root = resolve(opts.runs);
  }

  /** Every run: the live ones and those on disk, newest folder first. */
  list(): RunInfo[] {
    const ids = new Set(this.entries.keys());
    if (existsSync(this.root)) {
      for (const d of readdirSync(this.root, { withFileTypes: true })) {
        if (d.isDirectory() && existsSync(join(this.root, d.name, 'config.json'))) ids.add(d.name);
      }
    }
    const infos: RunInfo[] = [];
    for (const id of ids) {
      try {
        infos.push(this.info(id));
      } catch {
        // A folder whose config no longer validates (an older version's run) is left out of the list, not fatal.
      }
    }
    const mtime = (i: RunInfo) => (existsSync(i.runDir) ? statSync(i.runDir).mtimeMs : Date.now());
    return infos.sort((a, b) => Number(b.live) - Number(a.live) || mtime(b) - mtime(a));
  }

  info(id: string): RunInfo {
    const e = this.entry(id);
    const events = e.history.events;
    const lastEval = events.findLast((x): x is EvalEvent => x.type === 'eval');
    const state: RunState = e.run ? (e.stopping ? 'stopping' : 'running') : endOf(events);
    return {
      id,
      runDir: e.runDir,
      workload: e.config.workload,
      groups: e.config.groups,
      steps: e.config.steps,
      step: stepOf(events, e.config.groups),
      state,
      live: e.run !== undefined,
      events: events.length,
      ...(lastEval ? { lastEval: { step: lastEval.step, losses: lastEval.losses, ensembleLoss: lastEval.ensembleLoss } } : {}),
      ...(e.error ? { error: e.error } : {}),
    };
  }

  /** The run's config (as it trains, or as its folder recorded it). */
  config(id: string): Config {
    return this.entry(id).config;
  }

  /** Its history so far: event i has id i. */
  history(id: string): readonly RunEvent[] {
    return this.entry(id).history.events;
  }

  /**
   * Its history from event `from` on, then (while it is live) each new event as it comes; ends with the run or
   * when `signal` is aborted.
   */
  async *events(id: string, from: number, signal: AbortSignal): AsyncGenerator<{ index: number; event: RunEvent }> {
    const { history } = this.entry(id);
    let i = Math.max(0, from);
    const aborted = new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    for (;;) {
      while (i < history.events.length) {
        yield { index: i, event: history.events[i] };
        i++;
      }
      if (history.ended || signal.aborted) return;
      await Promise.race([history.changed(i), aborted]);
    }
  }

  /**
   * Starts a run from a config tree (validated: unknown keys and wrong types are refused, naming the key). It runs
   * under this service's runs folder whatever the tree says; `name` must be new.
   */
  async start(tree: unknown, name?: string): Promise<RunInfo> {
    const config = validateConfig(tree);
    const id = name ?? (config.name || new Date().toISOString().replace(/[:.]/g, '-'));
    if (!RUN_NAME.test(id)) throw new ConfigError(`name "${id}": a run name is letters, digits, '.', '_' and '-' (at most 128), starting with a letter or digit`);
    if (this.entries.has(id) || existsSync(join(this.root, id))) throw new ServiceError(409, `a run named "${id}" exists already: resume it, or choose another name`);
    const placed = validateConfig({ ...config, runDir: this.root, name: id });
    await ensureData(placed);
    return this.launch(id, placed, undefined);
  }

  /** Continues a stopped or interrupted run from its newest checkpoint, with `set` overrides (like `train --resume`). */
  async resume(id: string, set: readonly string[] = []): Promise<RunInfo> {
    const e = this.entry(id);
    if (e.run) throw new ServiceError(409, `run "${id}" is ${e.stopping ? 'stopping' : 'running'}: stop it first`);
    if (endOf(e.history.events) === 'finished') throw new ServiceError(409, `run "${id}" finished all its ${e.config.steps} steps: there is nothing to resume`);
    const config = resumeConfig(e.runDir, set);
    return this.launch(id, config, e.runDir);
  }

  /** Stops a live run: every group checkpoints the same step; resolves once they have. */
  async stop(id: string): Promise<RunSummary> {
    const e = this.entry(id);
    if (!e.run) throw new ServiceError(409, `run "${id}" is not running (it is ${this.info(id).state})`);
    e.stopping = true;
    return e.run.stop();
  }

  /** Stops every live run (each with a checkpoint) and waits for them: what a service does before it exits. */
  async stopAll(): Promise<void> {
    const live = [...this.entries.values()].filter((e) => e.run);
    await Promise.allSettled(
      live.map((e) => {
        e.stopping = true;
        return e.run!.stop();
      }),
    );
  }

  private launch(id: string, config: Config, resume: string | undefined): RunInfo {
    const runDir = resume ?? join(this.root, id);
    // The history so far (a resumed run's earlier life), read before the run appends to its log.
    const history = History.of(runDir);
    history.ended = false;
    const run = startRun({ config, resume });
    const entry: Entry = { id, runDir, config, history, run };
    this.entries.set(id, entry);
    run.events$.subscribe({
      next: (ev) => {
        history.push(ev);
        this.opts.onEvent?.(id, ev, config);
      },
    });
    run.done.then(
      () => undefined,
      (err: Error) => {
        entry.error = err.message;
      },
    ).finally(() => {
      entry.run = undefined;
      entry.stopping = false;
      history.end();
    });
    return this.info(id);
  }

  private entry(id: string): Entry {
    const known = this.entries.get(id);
    if (known) return known;
    const runDir = join(this.root, id);
    if (!RUN_NAME.test(id) || !existsSync(join(runDir, 'config.json'))) throw new ServiceError(404, `no run "${id}" in ${this.root}`);
    // A run on disk: read afresh each time (another process may be training it).
    const history = History.of(runDir);
    return { id, runDir, config: resumeConfig(runDir, []), history };
  }
}
