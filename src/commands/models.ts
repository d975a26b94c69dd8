/**
 * `codistill evaluate` and `codistill predict`: a trained run's models from its checkpoints, asked from the command
 * line. The run's config comes from its folder (config.json), so the same workload, data and store are used.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, workloadOf } from '../config/load.js';
import { evaluate } from '../train/evaluate.js';
import { predict } from '../train/predict.js';
import { evalTable } from '../train/watch.js';
import { resumeConfig } from './train.js';

/** A checkpoint step from `--step` (a non-negative integer), or the newest every group has. */
function stepOf(flag: string | undefined): number | 'newest' {
  if (flag === undefined) return 'newest';
  const step = Number(flag);
  if (!Number.isInteger(step) || step < 0) throw new ConfigError(`--step ${flag}: a step is a non-negative integer`);
  return step;
}

export async function evaluateCommand(runDir: string, flags: { step?: string }): Promise<void> {
  const config = resumeConfig(runDir, []);
  const e = await evaluate({ config, runDir, step: stepOf(flags.step) });
  process.stdout.write(`checkpoint of step ${e.step}, ${e.positions.toLocaleString()} validation positions\n`);
  process.stdout.write(evalTable(e, workloadOf(config).unit));
}

/**
 * The input as the workload's predictor takes it: with `--json`, the argument parsed as JSON (click rows as an
 * array of lines, images as arrays of pixels); otherwise the text itself. `-` reads it from standard input.
 */
function inputOf(arg: string, json: boolean): unknown {
  const text = arg === '-' ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : arg;
  if (!json) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`--json: the input is not JSON (${(err as Error).message})`);
  }
}

export async function predictCommand(
  runDir: string,
  input: string,
  flags: { step?: string; groups?: string; topK?: string; json?: boolean },
): Promise<void> {
  const config = resumeConfig(runDir, []);
  const groups = flags.groups?.split(',').map((g) => Number(g.trim()));
  const topK = flags.topK === undefined ? undefined : Number(flags.topK);
  const answer = await predict({ config, runDir, step: stepOf(flags.step), groups, topK, input: inputOf(input, flags.json ?? false) });
  process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
}
