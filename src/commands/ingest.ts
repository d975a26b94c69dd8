/**
 * `codistill ingest`: builds the config's workload store (the token corpus, click rows, images), with a progress bar
 * per phase and the workload's closing table.
 */
import { existsSync } from 'node:fs';
import { ConfigError, workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createProgress, type Progress } from '../util/progress.js';
import { formatTable } from '../util/table.js';
import type { IngestProgressSink } from '../workloads/workload.js';

/** Ingests the config's data first if there is no store at its path yet (what train, start and experiments do). */
export async function ensureData(config: Config): Promise<void> {
  const path = workloadOf(config).dataPath(config);
  if (existsSync(path)) return;
  process.stderr.write(`no store at ${path}: ingesting it first\n`);
  await ingestCommand(config, {});
}

/** Progress bars on stderr, one per phase. */
function terminalSink(): IngestProgressSink & { stop(): void } {
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

export async function ingestCommand(config: Config, flags: { force?: boolean; inputs?: string[]; format?: string }): Promise<void> {
  const workload = workloadOf(config);
  if (flags.format && !workload.formats.includes(flags.format)) {
    throw new ConfigError(`the ${workload.kind} workload ingests ${workload.formats.join(' or ')}, not --format ${flags.format}`);
  }
  const sink = terminalSink();
  try {
    const report = await workload.ingest(config, { force: flags.force, inputs: flags.inputs, format: flags.format, progress: sink });
    sink.stop();
    const [head, ...rest] = report.notes;
    process.stdout.write(`${head ?? ''}\n\n${formatTable(report.header, report.rows)}\n${rest.map((l) => `${l}\n`).join('')}`);
  } finally {
    sink.stop();
  }
}
