/**
 * The language model's data side, loaded only where data is opened or ingested (not by every actor): the corpus
 * store (ingested in one piece or in parts, with the tokenizer learned ahead of parts), its validation windows, and
 * each group's token stream from the reader pool.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { compact, bytes } from '../../util/progress.js';
import type { IngestOptions, IngestProgressSink, IngestReport, StreamSpec, TrainBatch, TrainStream, WorkloadData } from '../workload.js';
import { lmConfig } from './config.js';
import { storePathProblem } from '../records-data.js';
import { Corpus, CorpusError, SPLITS } from './corpus/store.js';
import type { IngestPhase, IngestProgress, InvalidUtf8Summary } from './corpus/ingest.js';
import { isPartsFolder, MANIFEST, partLabel, partName } from './corpus/parts-folder.js';
import type { PartsProgress } from './corpus/parts.js';
import { type BatchStream, type ReaderPool, createReaderPool, openBatchStream, readValidationWindows } from './data/batches.js';
import { asBatch } from './tokens.js';

/** A group's token stream as workload batches: the window rows are the field `tokens`. */
class TokenStream implements TrainStream {
  constructor(private readonly stream: BatchStream) {}

  async next(): Promise<TrainBatch> {
    const b = await this.stream.next();
    return { ...asBatch(b), cursor: b.cursor, continues: b.spanWindow > 0 };
  }

  recycle(batch: TrainBatch): void {
    const data = batch.fields.tokens as Int32Array;
    this.stream.recycle({ data });
  }

  close(): Promise<void> {
    return this.stream.close();
  }
}

export async function open(config: Config): Promise<WorkloadData> {
  const c = lmConfig(config);
  // A corpus in parts is a folder of stores: Corpus.open says what it lacks, if anything.
  const problem = isPartsFolder(c.corpus.path) ? undefined : storePathProblem(c.corpus.path, 'corpus.path', 'corpus store');
  if (problem) throw new CorpusError(problem);
  const corpus = Corpus.open(c.corpus.path);
  const classes = corpus.meta.tokenizer.vocabSize;
  const validation = asBatch(readValidationWindows(corpus, c.model.window, c.eval.examples));
  corpus.close();
  // The pool starts with the first stream: a run's evaluation or a churn measurement needs no readers.
  let pool: ReaderPool | undefined;
  return {
    classes,
    positionsPerRow: c.model.window,
    validation,
    openStream: (s: StreamSpec) =>
      new TokenStream(
        openBatchStream({
          pool: (pool ??= createReaderPool(c.reader.threads)),
          corpusPath: c.corpus.path,
          group: s.group,
          groups: s.groups,
          sameData: s.sameData,
          batch: s.batch,
          window: c.model.window,
          seed: s.seed,
          cursor: s.cursor,
          prefetch: c.reader.prefetch,
          spanWindows: c.reader.spanWindows,
          fault: s.fault,
        }),
      ),
    close: async () => pool?.destroy(),
  };
}

export async function ingest(config: Config, opts: IngestOptions = {}): Promise<IngestReport> {
  const { ingest: ingestCorpus } = await import('./corpus/ingest.js');
  const c = lmConfig(config);
  if (opts.format && opts.format !== 'text') throw new CorpusError(`the language model ingests text files, not --format ${opts.format}`);
  const corpus = opts.inputs?.length ? { ...c.corpus, inputs: opts.inputs } : c.corpus;
  const storePath = opts.part ? join(corpus.path, partName(opts.part)) : corpus.path;
  const result = await ingestCorpus({
    corpus,
    seed: corpus.splitSeed,
    force: opts.force,
    threads: c.ingest.threads || availableParallelism(),
    part: opts.part,
    onProgress: progressTo(opts.progress, storePath),
  });
  const { meta } = result;
  const what = opts.part ? `${partLabel(opts.part)} of the corpus in ${corpus.path}` : `corpus at ${corpus.path}`;
  return {
    upToDate: result.skipped,
    header: ['split', 'documents', 'tokens', 'shards'],
    rows: SPLITS.map((split) => {
      const s = meta.splits[split];
      return [split, s.documents.toLocaleString(), s.tokens.toLocaleString(), s.shards.toLocaleString()];
    }),
    notes: [
      result.skipped
        ? `${what} is up to date with its inputs and settings (nothing to do; --force rebuilds it)`
        : `ingested ${meta.inputs.files.length - result.invalidUtf8.skipped} file(s) into ${opts.part ? what : corpus.path} in ` +
          `${result.seconds.toFixed(1)} s, ${compact(Math.round(result.tokensPerSecond))} tokens/s on ${result.threads} encoder thread(s)`,
      ...invalidUtf8Notes(result.invalidUtf8),
      `vocabulary ${meta.tokenizer.vocabSize.toLocaleString()} tokens (${meta.tokenizer.library}` +
        `${corpus.tokenizer ? `, from ${corpus.tokenizer}` : ''}), ${meta.shardTokens.toLocaleString()} tokens per shard (${meta.tokenDtype})`,
      `store ${storePath}, ${bytes(diskUsage(storePath))} on disk`,
      ...(result.parts ? [partsNote(corpus.path, result.parts)] : []),
    ],
  };
}

/** The ingest's progress as the sink shows it: a bar per phase (in bytes of input), a line for the commit of `path`. */
function progressTo(sink: IngestProgressSink | undefined, path: string): (p: IngestProgress) => void {
  let phase: IngestPhase | undefined;
  return (p) => {
    if (!sink) return;
    if (p.phase !== phase) {
      phase = p.phase;
      // The write phase is one commit (metadata, then a rename): nothing to measure, just say what happens.
      if (phase === 'write') sink.line(`write    : committing ${path}`);
      else sink.phase(phase.padEnd(9), p.bytesTotal, 'B');
    }
    if (p.phase !== 'write') sink.update(p.bytesDone, p.phase === 'encode' ? { docs: p.documents, tokens: p.tokens } : { docs: p.documents });
  };
}

/**
 * `codistill tokenizer learn`: learns the tokenizer of corpus.inputs (or `inputs`) once, for every part of a corpus
 * in parts, into the file corpus.tokenizer names. The same tokenizer there already is left as it is; another one is
 * replaced only with `force` (parts encoded with it would no longer match). Returns the summary's lines.
 */
export async function learnTokenizerFile(
  config: Config,
  opts: { inputs?: string[]; force?: boolean; progress?: IngestProgressSink } = {},
): Promise<string[]> {
  const { learnFromInputs } = await import('./corpus/tokenizer-learn.js');
  const { readTokenizerFile, writeTokenizerFile, TOKENIZER_FILE_FORMAT, TOKENIZER_FILE_VERSION } = await import('./corpus/tokenizer-file.js');
  const c = lmConfig(config);
  const corpus = opts.inputs?.length ? { ...c.corpus, inputs: opts.inputs } : c.corpus;
  const file = corpus.tokenizer;
  if (!file) throw new CorpusError('name the tokenizer file to write with -s corpus.tokenizer=FILE (the setting every part\'s ingest then gets)');
  if (existsSync(file) && statSync(file).isDirectory()) {
    throw new CorpusError(`corpus.tokenizer ${file} is a folder: \`codistill tokenizer learn\` writes a file (a corpus store's tokenizer is used as it is)`);
  }
  const before = existsSync(file) ? readTokenizerFile(file) : undefined;
  const started = performance.now();
  const { meta, learnedFrom } = await learnFromInputs(corpus, corpus.splitSeed, progressTo(opts.progress, file));
  const seconds = (performance.now() - started) / 1000;
  const same = before?.tokenizer.sha256 === meta.sha256;
  if (before && !same && !opts.force) {
    throw new CorpusError(
      `not replacing the tokenizer in ${file}: these inputs and settings learn another one (sha256 ${meta.sha256.slice(0, 12)}, ` +
        `not ${before.tokenizer.sha256.slice(0, 12)}), and parts encoded with the old one would no longer match the new. Pass --force to replace it`,
    );
  }
  if (!same) writeTokenizerFile(file, { format: TOKENIZER_FILE_FORMAT, version: TOKENIZER_FILE_VERSION, tokenizer: meta, learnedFrom, createdAt: new Date().toISOString() });
  return [
    `${same ? 'unchanged' : 'wrote'} ${file}: a ${meta.vocabSize.toLocaleString()}-token BPE (${meta.library}, sha256 ${meta.sha256.slice(0, 12)})`,
    `learned in ${seconds.toFixed(1)} s from ${learnedFrom.documents.toLocaleString()} training document(s), ${bytes(learnedFrom.bytes)}, ` +
      `of ${learnedFrom.sampledFiles.toLocaleString()} of the ${learnedFrom.files.toLocaleString()} input file(s)`,
    `ingest with it: codistill ingest … -s corpus.tokenizer=${file} (and --part i/P for a corpus in parts)`,
  ];
}

/** Where a corpus in parts stands after one of its parts: finished (its manifest written), or which parts it waits for. */
function partsNote(dir: string, p: PartsProgress): string {
  if (p.manifest) {
    const tokens = p.manifest.parts.reduce((sum, part) => sum + part.splits.train.tokens + part.splits.validation.tokens, 0);
    return `all ${p.count} parts are built: ${join(dir, MANIFEST)} written, the corpus (${compact(tokens)} tokens) is ready to train on`;
  }
  const list = (ids: number[]) => (ids.length > 8 ? `${ids.slice(0, 8).join(', ')}, ...` : ids.join(', '));
  return `${p.built.length} of ${p.count} parts built; waiting for part(s) ${list(p.missing)} (the last part to finish writes the manifest)`;
}

/** The ingest summary's lines on input that was not valid UTF-8 (corpus.invalidUtf8), like the click rows' skipped ones. */
export function invalidUtf8Notes(s: InvalidUtf8Summary): string[] {
  if (s.files.length === 0) return ['no invalid UTF-8 in the inputs'];
  const list = (action: 'replaced' | 'skipped') => {
    const files = s.files.filter((f) => f.action === action);
    const shown = files.slice(0, 5).map((f) => `${f.name} (line ${f.line}, byte offset ${f.offset})`);
    return `${shown.join(', ')}${files.length > shown.length ? `, and ${files.length - shown.length} more` : ''}`;
  };
  const notes: string[] = [];
  if (s.replaced) notes.push(`invalid UTF-8 in ${s.replaced} file(s), read with U+FFFD for each bad byte (corpus.invalidUtf8=replace): ${list('replaced')}`);
  if (s.skipped) notes.push(`left out ${s.skipped} file(s) of invalid UTF-8 (corpus.invalidUtf8=skip): ${list('skipped')}`);
  return notes;
}

/** Bytes the store's files occupy on disk (allocated blocks: LMDB files can be sparse). */
function diskUsage(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).blocks * 512, 0);
}
