/**
 * `codistill ingest`: builds the config's workload store (the token corpus, click rows, images), or one part of a
 * store built in parts (`--part i/P`), with a progress bar per phase and the workload's closing table.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig, presetDir, validateConfig, workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { launchIndexOf } from '../util/launch-index.js';
import { createProgress, type Progress } from '../util/progress.js';
import { formatTable } from '../util/table.js';
import type { IngestProgressSink } from '../workloads/workload.js';

/**
 * Ingests the config's data first if there is no store at its path yet (what train, start, experiments and the
 * service do), when the config says what goes in: its inputs (corpus.inputs, data.inputs, data.source), or none at
 * the store path a built-in preset or the defaults keep the bundled data in (`npm start`, `-p tiny`, ...).
 *
 * A store path of the user's own with no inputs named is a store that should exist: a typo there must not build a
 * new store from the bundled data and train on that, so it is an error naming the path and how to build it.
 */
export async function ensureData(config: Config): Promise<void> {
  const workload = workloadOf(config);
  const path = workload.dataPath(config);
  if (existsSync(path)) return;
  const section = storeSection(config, path);
  if (section && !section.namesInputs && !bundledStorePaths(config).has(resolve(path))) {
    const key = `${section.name}.path`;
    throw new ConfigError(
      `${key} ${path} does not exist: no store there to train on. Build it with \`codistill ingest -s ${key}=${path}\` ` +
        '(with the same --preset and --set flags as this command, and your inputs), ' +
        `or set ${key} to an existing store`,
    );
  }
  process.stderr.write(`no store at ${path}: ingesting it first\n`);
  await ingestCommand(config, {});
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The config section whose `path` is the store's (corpus, data), and whether it names inputs: a non-empty `inputs`
 * list or `source` folder. Undefined for a workload whose store is not a section's `path` (a user's module).
 */
function storeSection(config: Config, path: string): { name: string; namesInputs: boolean } | undefined {
  for (const name of Object.keys(workloadOf(config).sections)) {
    const section = (config as unknown as Tree)[name];
    if (!isTree(section) || section.path !== path) continue;
    if (!('inputs' in section) && !('source' in section)) return undefined; // no way to tell: ingest as before
    const given = (v: unknown) => (Array.isArray(v) ? v.length > 0 : typeof v === 'string' && v !== '');
    return { name, namesInputs: given(section.inputs) || given(section.source) };
  }
  return undefined;
}

/** Where the defaults and the built-in presets of the config's workload keep their store (resolved). */
function bundledStorePaths(config: Config): Set<string> {
  const workload = workloadOf(config);
  const paths = new Set<string>();
  const add = (c: Config) => {
    if (c.workload === config.workload) paths.add(resolve(workload.dataPath(c)));
  };
  add(validateConfig({ workload: config.workload }));
  for (const file of readdirSync(presetDir()).filter((f) => f.endsWith('.json'))) {
    try {
      add(loadConfig({ preset: join(presetDir(), file) }));
    } catch {
      // a preset that does not load says nothing about where bundled data goes
    }
  }
  return paths;
}

/** Progress bars on stderr, one per phase. */
export function terminalSink(): IngestProgressSink & { stop(): void } {
  let bar: Progress | undefined;
  return {
    phase(name, total, unit) {
      bar?.stop();
      bar = createProgress({ label: name, total: total ?? 0, unit: unit ?? '' });
    },
    update(done, fields) {
      bar?.update(done, fields);
    },
    line(text) {
      bar?.stop();
      bar = undefined;
      process.stderr.write(`${text}\n`);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

/** `--part i/P` as given: the index (absent in `/P`: from the launcher's environment) and the part count. */
export interface PartFlag {
  index?: string;
  count: number;
}

/** Parses `--part i/P` or `--part /P`; throws an Error saying what is expected. */
export function parsePartFlag(raw: string): PartFlag {
  const m = /^\s*(\d*)\s*\/\s*(\d+)\s*$/.exec(raw);
  if (!m || Number(m[2]) < 1) {
    throw new Error('expected i/P, part i (from 0) of P parts, e.g. 0/8, or /P to take i from JOB_COMPLETION_INDEX or SLURM_PROCID');
  }
  return { index: m[1] === '' ? undefined : m[1], count: Number(m[2]) };
}

export async function ingestCommand(
  config: Config,
  flags: { force?: boolean; inputs?: string[]; format?: string; part?: PartFlag },
): Promise<void> {
  const workload = workloadOf(config);
  if (flags.format && !workload.formats.includes(flags.format)) {
    throw new ConfigError(`the ${workload.kind} workload ingests ${workload.formats.join(' or ')}, not --format ${flags.format}`);
  }
  let part: { index: number; count: number } | undefined;
  if (flags.part) {
    if (!workload.ingestsInParts) throw new ConfigError(`the ${workload.kind} workload does not build its store in parts: drop --part`);
    const { count } = flags.part;
    // Each task of a Slurm job array runs alone, as SLURM_PROCID 0: every one of them would build part 0.
    if (flags.part.index === undefined && !process.env.JOB_COMPLETION_INDEX && process.env.SLURM_ARRAY_TASK_ID) {
      throw new ConfigError(`in a Slurm job array every task is SLURM_PROCID 0: name the part with --part $SLURM_ARRAY_TASK_ID/${count}`);
    }
    const index = launchIndexOf(flags.part.index, { flag: '--part', what: 'part', count, countSource: `the corpus is built in ${count} parts` });
    part = { index, count };
  }
  const sink = terminalSink();
  try {
    const report = await workload.ingest(config, { force: flags.force, inputs: flags.inputs, format: flags.format, part, progress: sink });
    sink.stop();
    const [head, ...rest] = report.notes;
    process.stdout.write(`${head ?? ''}\n\n${formatTable(report.header, report.rows)}\n${rest.map((l) => `${l}\n`).join('')}`);
  } finally {
    sink.stop();
  }
}
