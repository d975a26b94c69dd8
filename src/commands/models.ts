/**
 * `codistill evaluate` and `codistill predict`: a trained run's models from its checkpoints, asked from the command
 * line. The run's config comes from its folder (config.json), so the same workload, data and store are used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, readJsonConfigFile, validateConfig, workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { findSyntaxError, lineColumn } from '../util/json-file.js';
import { evaluate } from '../train/evaluate.js';
import { predict } from '../train/predict.js';
import { evalTable } from '../train/watch.js';

const WHOLE = /^\s*\d+\s*$/;

/** `--step`: a checkpoint step, a non-negative integer. */
export function parseStep(raw: string): number {
  if (!WHOLE.test(raw)) throw new ConfigError(`--step ${raw}: a step is a non-negative integer`);
  return Number(raw);
}

/** `--groups`: a comma-separated list of group indices (non-negative integers), e.g. 0 or 0,1. */
export function parseGroups(raw: string): number[] {
  const parts = raw.split(',');
  const bad = parts.find((g) => !WHOLE.test(g));
  if (bad !== undefined) throw new ConfigError(`--groups ${raw}: ${bad.trim() === '' ? 'an empty entry' : `"${bad.trim()}"`} is not a group index (a list like 0 or 0,1)`);
  return parts.map(Number);
}

/** `--top-k`: how many classes an answer lists, a positive integer. */
export function parseTopK(raw: string): number {
  if (!WHOLE.test(raw) || Number(raw) < 1) throw new ConfigError(`--top-k ${raw}: how many classes to list is a positive integer`);
  return Number(raw);
}

/** A checkpoint step from `--step` (a non-negative integer), or the newest every group has. */
function stepOf(flag: string | number | undefined): number | 'newest' {
  if (flag === undefined) return 'newest';
  return typeof flag === 'number' ? flag : parseStep(flag);
}

/** The saved config of the run in `runDir` (what `train --resume` continues with), errors naming the folder. */
function runConfig(runDir: string): Config {
  if (!existsSync(runDir)) throw new ConfigError(`run folder ${runDir} does not exist`);
  const file = join(runDir, 'config.json');
  if (!existsSync(file)) throw new ConfigError(`${runDir} is not a run folder: it has no config.json`);
  return validateConfig(readJsonConfigFile(file, 'run config'));
}

export async function evaluateCommand(runDir: string, flags: { step?: string | number }): Promise<void> {
  const step = stepOf(flags.step);
  const config = runConfig(runDir);
  const e = await evaluate({ config, runDir, step });
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
    const fault = findSyntaxError(text);
    if (!fault) throw new ConfigError(`--json: the input is not JSON (${(err as Error).message.split('\n')[0]})`);
    const { line, column } = lineColumn(text, fault.at);
    const what = fault.message.replace(/the file/g, 'the input');
    throw new ConfigError(`--json: the input is not JSON at ${line > 1 ? `line ${line}, ` : ''}column ${column}: ${what}`);
  }
}

export async function predictCommand(
  runDir: string,
  input: string,
  flags: { step?: string | number; groups?: string | number[]; topK?: string | number; json?: boolean },
): Promise<void> {
  const step = stepOf(flags.step);
  const groups = typeof flags.groups === 'string' ? parseGroups(flags.groups) : flags.groups;
  const topK = typeof flags.topK === 'string' ? parseTopK(flags.topK) : flags.topK;
  const config = runConfig(runDir);
  const answer = await predict({ config, runDir, step, groups, topK, input: inputOf(input, flags.json ?? false) });
  process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
}
