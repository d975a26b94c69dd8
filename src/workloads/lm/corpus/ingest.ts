/**
 * `codistill ingest`: text files in, a token corpus store out (or, with a part, one part of a corpus in parts).
 *
 *   1. scan       list the inputs (a part keeps its share of them, parts.ts); read each file once to check it (empty,
 *                 binary, UTF-8), hash it and cut it into documents, on `threads` scanner workers (scan-pool.ts).
 *                 Every input error surfaces here, before any slow work.
 *   2. decide     fingerprint inputs + settings; the same fingerprint as the store at the path is a no-op, another
 *                 one is refused unless `force`. When no file's size or modification time changed, the stored
 *                 content hashes are trusted and step 1's reading is skipped entirely.
 *   3. tokenizer  split documents (seeded), and learn the BPE on a sample of the training split (tokenizer-learn.ts),
 *                 unless corpus.tokenizer gives one (a part always takes it from there: all parts share it).
 *   4. encode     documents go to `threads` encoder workers in tasks of consecutive documents (encode-pool.ts) and
 *                 come back in document order; their ids, each document followed by <|eod|>, are packed into
 *                 fixed-size shards per split and written through CorpusWriter, flushing every few shards and
 *                 reusing buffers. The shards are those of one thread, whatever the thread count; memory holds a
 *                 few tasks per worker, the workers' word caches and a few shards, whatever the input size.
 *   5. write      commit: metadata last, then an atomic rename. Any failure removes the partial store and leaves
 *                 the previous one as it was. A part then writes the corpus' manifest if every part is there.
 */
import { availableParallelism } from 'node:os';
import type { CorpusConfig } from '../config.js';
import { EncoderPool, encodeTasks } from './encode-pool.js';
import { listInputs } from './inputs.js';
import {
  describeChange,
  fingerprintFromStore,
  fingerprintOf,
  inspectStore,
  type PlannedDocument,
  removeAbandonedWrites,
  type Settings,
  settingsOf,
  splitDocuments,
} from './plan.js';
import { type PartRef, removeManifest } from './parts-folder.js';
import { checkSiblingParts, completeParts, filesOfPart, listingFingerprint, type PartsProgress, preparePartsFolder } from './parts.js';
import {
  CORPUS_FORMAT,
  CORPUS_FORMAT_VERSION,
  CorpusError,
  type CorpusMeta,
  CorpusWriter,
  dtypeFor,
  type Split,
  type SplitMeta,
  type TokenArray,
  type TokenDtype,
  type TokenizerMeta,
  tokenArrayType,
} from './store.js';
import { checkVocabSize } from './tokenizer.js';
import { scanInParallel } from './scan-pool.js';
import { readTokenizerSource } from './tokenizer-file.js';
import { learnTokenizer } from './tokenizer-learn.js';

export type IngestPhase = 'scan' | 'tokenizer' | 'encode' | 'write';

export interface IngestProgress {
  phase: IngestPhase;
  bytesDone: number;
  bytesTotal: number;
  /** Tokens written so far (encode and write phases). */
  tokens: number;
  /** Documents found (scan), learned from (tokenizer) or written (encode, write) so far. */
  documents: number;
}

export interface IngestOptions {
  corpus: CorpusConfig;
  /** Seeds the train/validation split. */
  seed: number;
  /** Replace a store built from other inputs or settings (or in another format) instead of refusing. */
  force?: boolean;
  /** Worker threads that scan and encode (ingest.threads; default one per core). The shards do not depend on it. */
  threads?: number;
  /**
   * Ingest only this part of the inputs, into its own store in the folder at corpus.path (a corpus in parts); the
   * tokenizer must come from corpus.tokenizer.
   */
  part?: PartRef;
  onProgress?: (p: IngestProgress) => void;
}

export interface IngestResult {
  /** True when the store already held exactly this corpus and nothing was done. */
  skipped: boolean;
  meta: CorpusMeta;
  /** Input files that were not valid UTF-8 (kept going by corpus.invalidUtf8 = replace or skip), from the store's record. */
  invalidUtf8: InvalidUtf8Summary;
  seconds: number;
  /** Tokens written per second of the whole ingest (0 when skipped). */
  tokensPerSecond: number;
  /** Encoder threads that ran (at most one per task of documents; 0 when nothing was encoded). */
  threads: number;
  /** The store written: corpus.path, or the part's store in it. */
  path: string;
  /** A part's ingest: which parts of the corpus are built, and its manifest once all are. */
  parts?: PartsProgress;
}

export interface InvalidUtf8Summary {
  /** Files read with U+FFFD for their bad bytes, and files left out. */
  replaced: number;
  skipped: number;
  /** Each such file: its name, and the byte offset and line of its first bad byte. */
  files: { name: string; offset: number; line: number; action: 'replaced' | 'skipped' }[];
}

/** What the store's record says of invalid UTF-8 in its inputs. */
export function invalidUtf8Summary(meta: CorpusMeta): InvalidUtf8Summary {
  const files = meta.inputs.files.flatMap((f) => (f.invalidUtf8 ? [{ name: f.path, ...f.invalidUtf8 }] : []));
  return {
    replaced: files.filter((f) => f.action === 'replaced').length,
    skipped: files.filter((f) => f.action === 'skipped').length,
    files,
  };
}

/** Shards queued in LMDB before we wait for them to be written (bounds memory: shardTokens * 4 bytes each). */
const SHARDS_PER_FLUSH = 32;

export async function ingest(opts: IngestOptions): Promise<IngestResult> {
  const started = performance.now();
  const { corpus, seed, part } = opts;
  const report = opts.onProgress ?? (() => {});
  const elapsed = () => (performance.now() - started) / 1000;

  checkVocabSize(corpus.vocabSize); // a settings error should not wait for a scan of the whole input
  const shared = givenTokenizer(corpus, part);
  const listed = listInputs(corpus.inputs);
  const files = part ? filesOfPart(listed, part) : listed;
  const path = part ? preparePartsFolder(corpus.path, part) : corpus.path;
  removeAbandonedWrites(path);
  const listing = part ? listingFingerprint(listed) : '';
  const partSettings: Settings = part ? { part: `${part.index}/${part.count}`, listing } : {};
  const settingsFor = (invalidInputs: boolean) => ({ ...settingsOf(corpus, seed, invalidInputs, shared), ...partSettings });
  const existing = inspectStore(path);
  if (existing.kind === 'foreign') {
    throw new CorpusError(`corpus.path ${path} exists and is not a corpus store; not replacing it (remove it or set corpus.path)`);
  }
  if (existing.kind === 'parts') {
    throw new CorpusError(
      `corpus.path ${path} holds a corpus in parts: add or rebuild its parts with \`codistill ingest --part i/P\`; ` +
        'a corpus in one piece needs another corpus.path',
    );
  }
  const unchanged = (fingerprint: string | undefined) =>
    existing.kind === 'corpus' && fingerprint === existing.meta.inputs.fingerprint;
  const upToDate = (meta: CorpusMeta): IngestResult => ({
    skipped: true,
    meta,
    invalidUtf8: invalidUtf8Summary(meta),
    seconds: elapsed(),
    tokensPerSecond: 0,
    threads: 0,
    path,
    // A part that is already built may be the last one missing from the manifest (its first run may have died
    // before writing it): finishing the corpus is what re-running it is for.
    ...(part ? { parts: completeParts(corpus.path, part.count) } : {}),
  });
  if (existing.kind === 'corpus') {
    // Unchanged files are as valid or invalid as when the store was built: the policy counts if it counted then.
    const hadInvalid = existing.meta.inputs.files.some((f) => f.invalidUtf8 !== undefined);
    if (unchanged(fingerprintFromStore(files, existing.meta, settingsFor(hadInvalid)))) return upToDate(existing.meta);
  }

  const threads = opts.threads ?? availableParallelism();
  const scanned = await scanInParallel(files, corpus.maxDocumentBytes, corpus.invalidUtf8, threads, (bytesDone, bytesTotal, documents) =>
    report({ phase: 'scan', bytesDone, bytesTotal, tokens: 0, documents }),
  );
  const settings = settingsFor(scanned.some((f) => f.invalidUtf8 !== undefined));
  const fingerprint = fingerprintOf(scanned, settings);
  if (existing.kind === 'corpus' && unchanged(fingerprint)) return upToDate(existing.meta);
  if (existing.kind !== 'none' && !opts.force) {
    const why =
      existing.kind === 'corpus'
        ? `it was built differently: ${describeChange(existing.meta, scanned, settings)}`
        : existing.reason;
    const rerun = part ? `\`codistill ingest --part ${part.index}/${part.count} --force\`` : '--force';
    throw new CorpusError(`not replacing the corpus at ${path}: ${why}. Pass ${rerun} to rebuild it.`);
  }

  const docs = splitDocuments(scanned, seed, corpus.validationFraction);
  if (docs.length === 0) {
    throw new CorpusError(
      `no documents left to ingest: all ${scanned.length} input file(s) are invalid UTF-8 and corpus.invalidUtf8=skip leaves them out ` +
        `(first: ${scanned[0].path}, line ${scanned[0].invalidUtf8?.line}); set corpus.invalidUtf8=replace to keep them`,
    );
  }
  if (part) {
    checkSiblingParts(corpus.path, part, { tokenizer: shared!, inputs: { fingerprint, files: [], settings } });
    // The corpus changes: until every part is there again, nothing may read it.
    removeManifest(corpus.path);
  }
  const tokenizer = shared ?? (await learnTokenizer(docs, corpus, report)).meta;
  const writer = new CorpusWriter(path);
  try {
    const encoded = await encodeAll(docs, tokenizer, writer, corpus.shardTokens, threads, report);
    const { splits } = encoded;
    const meta: CorpusMeta = {
      format: CORPUS_FORMAT,
      version: CORPUS_FORMAT_VERSION,
      tokenizer,
      tokenDtype: dtypeFor(tokenizer.vocabSize),
      shardTokens: corpus.shardTokens,
      splits,
      inputs: {
        fingerprint,
        settings,
        files: scanned.map((f) => ({
          path: f.name,
          bytes: f.bytes,
          sha256: f.sha256,
          mtimeMs: f.mtimeMs,
          documents: f.documents.length,
          ...(f.invalidUtf8 ? { invalidUtf8: { offset: f.invalidUtf8.offset, line: f.invalidUtf8.line, action: f.invalidUtf8.action } } : {}),
        })),
      },
      split: { seed, validationFraction: corpus.validationFraction },
      createdAt: new Date().toISOString(),
      ...(part ? { part: { ...part, listing } } : {}),
    };
    const tokens = splits.train.tokens + splits.validation.tokens;
    report({ phase: 'write', bytesDone: 0, bytesTotal: 1, tokens, documents: docs.length });
    await writer.commit(meta);
    report({ phase: 'write', bytesDone: 1, bytesTotal: 1, tokens, documents: docs.length });
    const seconds = elapsed();
    return {
      skipped: false,
      meta,
      invalidUtf8: invalidUtf8Summary(meta),
      seconds,
      tokensPerSecond: tokens / seconds,
      threads: encoded.threads,
      path,
      ...(part ? { parts: completeParts(corpus.path, part.count) } : {}),
    };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** The tokenizer corpus.tokenizer gives (a part must have one), checked against corpus.vocabSize; undefined: learn one. */
function givenTokenizer(corpus: CorpusConfig, part: PartRef | undefined): TokenizerMeta | undefined {
  if (part && !corpus.tokenizer) {
    throw new CorpusError(
      `--part ${part.index}/${part.count} needs the tokenizer every part shares: learn it once with ` +
        '`codistill tokenizer learn -s corpus.tokenizer=FILE` (or name an existing corpus) and set corpus.tokenizer to it for every part',
    );
  }
  if (!corpus.tokenizer) return undefined;
  const shared = readTokenizerSource(corpus.tokenizer);
  if (shared.vocabSize > corpus.vocabSize) {
    throw new CorpusError(
      `corpus.tokenizer ${corpus.tokenizer} has ${shared.vocabSize} tokens but corpus.vocabSize = ${corpus.vocabSize}: ` +
        `set corpus.vocabSize=${shared.vocabSize} (the models are sized by it)`,
    );
  }
  return shared;
}

/**
 * Encodes the documents on `threads` workers (fewer when there are fewer tasks) and packs their ids into shards,
 * in document order.
 */
async function encodeAll(
  docs: readonly PlannedDocument[],
  tokenizer: TokenizerMeta,
  writer: CorpusWriter,
  shardTokens: number,
  threads: number,
  report: (p: IngestProgress) => void,
): Promise<{ splits: Record<Split, SplitMeta>; threads: number }> {
  const dtype = dtypeFor(tokenizer.vocabSize);
  const packers = {
    train: new ShardPacker(writer, 'train', shardTokens, dtype),
    validation: new ShardPacker(writer, 'validation', shardTokens, dtype),
  };
  const tasks = encodeTasks(docs, threads);
  const pool = new EncoderPool(tokenizer, dtype, Math.min(threads, tasks.length));
  const bytesTotal = docs.reduce((sum, d) => sum + d.span.end - d.span.start, 0);
  let bytesDone = 0;
  let documents = 0;
  let flushedShards = 0;
  try {
    for await (const task of pool.encode(tasks)) {
      let at = 0;
      for (const [i, doc] of task.documents.entries()) {
        const packer = packers[doc.split];
        packer.push(task.ids.subarray(at, at + task.counts[i]));
        at += task.counts[i];
        packer.documents++;
        bytesDone += doc.span.end - doc.span.start;
        documents++;
        const tokens = packers.train.tokens + packers.validation.tokens;
        report({ phase: 'encode', bytesDone, bytesTotal, tokens, documents });
      }
      pool.recycle(task.buffer);
      const shards = packers.train.shards + packers.validation.shards;
      if (shards - flushedShards >= SHARDS_PER_FLUSH) {
        await writer.flush();
        packers.train.reuseWritten();
        packers.validation.reuseWritten();
        flushedShards = shards;
      }
    }
  } finally {
    await pool.destroy();
  }
  return { splits: { train: packers.train.finish(), validation: packers.validation.finish() }, threads: pool.threads };
}

/**
 * Packs one split's token stream into shards of exactly `shardTokens` (the last one may be short). LMDB copies a
 * shard's bytes when its batch commits, so a buffer is reused only after the writer's next flush.
 */
class ShardPacker {
  shards = 0;
  tokens = 0;
  documents = 0;
  private buffer: TokenArray;
  private fill = 0;
  private readonly written: TokenArray[] = [];
  private readonly free: TokenArray[] = [];

  constructor(
    private readonly writer: CorpusWriter,
    private readonly split: Split,
    private readonly shardTokens: number,
    private readonly dtype: TokenDtype,
  ) {
    this.buffer = this.allocate();
  }

  push(ids: TokenArray): void {
    for (let at = 0; at < ids.length; ) {
      const n = Math.min(ids.length - at, this.shardTokens - this.fill);
      this.buffer.set(ids.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === this.shardTokens) this.emit();
    }
    this.tokens += ids.length;
  }

  /** Call after `writer.flush()`: the shards queued before it are in LMDB now, their buffers free. */
  reuseWritten(): void {
    this.free.push(...this.written.splice(0));
  }

  finish(): SplitMeta {
    if (this.fill > 0) this.emit();
    return { shards: this.shards, tokens: this.tokens, documents: this.documents };
  }

  private emit(): void {
    const written = this.writer.putShard(this.split, this.shards++, this.buffer.subarray(0, this.fill));
    written.catch(() => {}); // the failure surfaces from writer.flush(); this only stops an unhandled-rejection crash
    this.written.push(this.buffer);
    this.buffer = this.free.pop() ?? this.allocate();
    this.fill = 0;
  }

  private allocate(): TokenArray {
    return new (tokenArrayType(this.dtype))(this.shardTokens);
  }
}
