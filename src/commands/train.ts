/**
 * `codistill train`: one run, with live progress from its event stream and a closing table.
 */
import { existsSync } from 'node:fs';
import { readJsonFile } from '../util/json-file.js';
import { join } from 'node:path';
import { validateConfig, applySet } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { constants } from 'node:os';
import { RunError } from '../group/group.js';
import { startRun, type Run, type RunSummary } from '../train/run.js';
import { groupIndexOf, startGroupRun } from '../train/group-run.js';
import { summaryTable, watchRun } from '../train/watch.js';
import { ensureData } from './ingest.js';

/** The config a resumed run continues with: the one it saved, with any `--set` overrides on top. */
export function resumeConfig(runDir: string, set: readonly string[]): Config {
  const file = join(runDir, 'config.json');
  if (!existsSync(file)) throw new RunError(`cannot resume ${runDir}: it has no config.json (is it a run folder?)`);
  let tree = readJsonFile(file) as Record<string, unknown>;
  for (const s of set) tree = applySet(tree, s);
  return validateConfig(tree);
}

export async function trainCommand(config: Config, flags: { resume?: string; group?: string | true; overwrite?: boolean }): Promise<RunSummary> {
  if (!flags.resume) await ensureData(config);
  const group = flags.group === undefined ? undefined : groupIndexOf(flags.group, config.groups);
  const run = group === undefined ? startRun({ config, resume: flags.resume, overwrite: flags.overwrite }) : startGroupRun({ config, group });
  watchRun(run.events$, config, { label: group === undefined ? 'train' : `group ${group}`, only: group });
  const signals = stopOnSignals(run);
  try {
    const summary = await run.done;
    process.stdout.write(summaryTable(summary, config));
    const signal = signals.received();
    if (signal) throw new InterruptedError(signal, `stopped by ${signal} at step ${summary.steps}; continue with: codistill train --resume ${run.runDir}`);
    return summary;
  } finally {
    signals.dispose();
  }
}

/** The run ended early because the process was asked to stop: the CLI exits with the signal's code (128 + its number). */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
  readonly exitCode: number;
  constructor(
    readonly signal: NodeJS.Signals,
    message: string,
  ) {
    super(message);
    this.exitCode = 128 + (constants.signals[signal] ?? 0);
  }
}

/**
 * SIGINT (Ctrl-C) and SIGTERM stop the run as `Run.stop` does: every group trains to the step the furthest one is
 * in, checkpoints it, and the run ends. A second signal exits at once; the run then resumes from its newest
 * checkpoint, which a checkpoint write cut short never damages (each is one transaction, or a file renamed into
 * place).
 */
export function stopOnSignals(run: Run, stream: NodeJS.WritableStream = process.stderr): { received(): NodeJS.Signals | undefined; dispose(): void } {
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (received) {
      stream.write(`\ncodistill: ${signal} again: exiting now; the run resumes from its newest checkpoint (codistill train --resume ${run.runDir})\n`);
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    received = signal;
    stream.write(`\ncodistill: ${signal}: every group checkpoints the step it has reached, then the run stops (${signal} again exits at once)\n`);
    void run.stop().catch(() => undefined);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, handler);
  return {
    received: () => received,
    dispose: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}
