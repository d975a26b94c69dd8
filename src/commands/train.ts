/**
 * `codistill train`: one run, with live progress from its event stream and a closing table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig, applySet } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startRun, type RunSummary } from '../train/run.js';
import { groupIndexOf, startGroupRun } from '../train/group-run.js';
import { summaryTable, watchRun } from '../train/watch.js';
import { ensureData } from './ingest.js';

/** The config a resumed run continues with: the one it saved, with any `--set` overrides on top. */
export function resumeConfig(runDir: string, set: readonly string[]): Config {
  const file = join(runDir, 'config.json');
  if (!existsSync(file)) throw new Error(`cannot resume ${runDir}: it has no config.json (is it a run folder?)`);
  let tree = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  for (const s of set) tree = applySet(tree, s);
  return validateConfig(tree);
}

export async function trainCommand(config: Config, flags: { resume?: string; group?: string | true }): Promise<RunSummary> {
  if (!flags.resume) await ensureData(config);
  const group = flags.group === undefined ? undefined : groupIndexOf(flags.group, config.groups);
  const run = group === undefined ? startRun({ config, resume: flags.resume }) : startGroupRun({ config, group });
  watchRun(run.events$, config, { label: group === undefined ? 'train' : `group ${group}`, only: group });
  const summary = await run.done;
  process.stdout.write(summaryTable(summary, config));
  return summary;
}
