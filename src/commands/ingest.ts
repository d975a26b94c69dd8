/**
 * `codistill ingest`: builds the token corpus at corpus.path, with a progress bar per phase and a closing table.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { ingest, type IngestPhase, type IngestResult } from '../corpus/ingest.js';
import { SPLITS } from '../corpus/store.js';
import { bytes, compact, createProgress, type Progress } from '../util/progress.js';
import { formatTable } from '../util/table.js';


/** Ingests the config's corpus first if there is none at corpus.path yet (what train, start and experiments do). */
export async function ensureCorpus(config: Config): Promise<void> {
  if (existsSync(config.corpus.path)) return;
  process.stderr.write(`no corpus at ${config.corpus.path}: ingesting it first\n`);
  await ingestCommand(config, {});
}

export async function ingestCommand(config: Config, flags: { force?: boolean }): Promise<void> {
  const corpusPath = config.corpus.path;
  let phase: IngestPhase | undefined;
  let bar: Progress | undefined;
  try {
    const result = await ingest({
      corpus: config.corpus,
      seed: config.corpus.splitSeed,
      force: flags.force,
      onProgress(p) {
        if (p.phase !== phase) {
          bar?.stop();
          bar = undefined;
          phase = p.phase;
          // The write phase is one commit (metadata, then a rename): nothing to measure, just say what happens.
          if (phase === 'write') process.stderr.write(`write    : committing ${corpusPath}\n`);
          else bar = createProgress({ label: phase.padEnd(9), total: p.bytesTotal, unit: 'B' });
        }
        const fields: Record<string, number> = { docs: p.documents };
        if (p.phase === 'encode') fields.tokens = p.tokens;
        bar?.update(p.bytesDone, fields);
      },
    });
    bar?.stop();
    process.stdout.write(report(result, config.corpus.path));
  } finally {
    bar?.stop();
  }
}

function report(result: IngestResult, path: string): string {
  const { meta } = result;
  const rows = SPLITS.map((split) => {
    const s = meta.splits[split];
    return [split, s.documents.toLocaleString(), s.tokens.toLocaleString(), s.shards.toLocaleString()];
  });
  const head = result.skipped
    ? `corpus at ${path} is up to date with its inputs and settings (nothing to do; --force rebuilds it)\n`
    : `ingested ${meta.inputs.files.length} file(s) in ${result.seconds.toFixed(1)} s, ` +
      `${compact(Math.round(result.tokensPerSecond))} tokens/s\n`;
  return (
    `${head}\n` +
    formatTable(['split', 'documents', 'tokens', 'shards'], rows) +
    `\nvocabulary ${meta.tokenizer.vocabSize.toLocaleString()} tokens (${meta.tokenizer.library}), ` +
    `${meta.shardTokens.toLocaleString()} tokens per shard (${meta.tokenDtype})\n` +
    `store ${path}, ${bytes(diskUsage(path))} on disk\n`
  );
}

/** Bytes the store's files occupy on disk (allocated blocks: LMDB files can be sparse). */
function diskUsage(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).blocks * 512, 0);
}
