/**
 * `codistill ingest`: text files in, a token corpus store out.
 *
 *   1. scan       list the inputs; read each file once to check it (empty, binary, UTF-8), hash it and cut it into
 *                 documents. Every input error surfaces here, before any slow work.
 *   2. decide     fingerprint inputs + settings; the same fingerprint as the store at corpus.path is a no-op, another
 *                 one is refused unless `force`. When no file's size or modification time changed, the stored
 *                 content hashes are trusted and step 1's reading is skipped entirely.
 *   3. tokenizer  split documents (seeded), learn the BPE on a sample of the training split (plan.ts).
 *   4. encode     stream each document in small pieces through the encoder, append <|eod|>, pack fixed-size shards
 *                 per split, write them through CorpusWriter, flushing every few shards and reusing their buffers:
 *                 memory holds a piece of text, the word cache and a few shards, whatever the input size.
 *   5. write      commit: metadata last, then an atomic rename. Any failure removes the partial store and leaves
 *                 the previous one as it was.
 */
import type { CorpusConfig } from '../config.js';
import { type InputFile, type InvalidUtf8Policy, listInputs, readDocumentChunks, scanFile, type ScannedFile } from './inputs.js';
import {
  describeChange,
  fingerprintFromStore,
  fingerprintOf,
  inspectStore,
  type PlannedDocument,
  removeAbandonedWrites,
  settingsOf,
  splitDocuments,
  tokenizerSample,
} from './plan.js';
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
import { checkVocabSize, type CorpusTokenizer, loadTokenizer, TokenizerTrainer } from './tokenizer.js';

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
  const { corpus, seed } = opts;
  const report = opts.onProgress ?? (() => {});
  const elapsed = () => (performance.now() - started) / 1000;

  checkVocabSize(corpus.vocabSize); // a settings error should not wait for a scan of the whole input
  removeAbandonedWrites(corpus.path);
  const files = listInputs(corpus.inputs);
  const existing = inspectStore(corpus.path);
  if (existing.kind === 'foreign') {
    throw new CorpusError(
      `corpus.path ${corpus.path} exists and is not a corpus store; not replacing it (remove it or set corpus.path)`,
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
  });
  if (existing.kind === 'corpus') {
    // Unchanged files are as valid or invalid as when the store was built: the policy counts if it counted then.
    const hadInvalid = existing.meta.inputs.files.some((f) => f.invalidUtf8 !== undefined);
    if (unchanged(fingerprintFromStore(files, existing.meta, settingsOf(corpus, seed, hadInvalid)))) return upToDate(existing.meta);
  }

  const scanned = await scanAll(files, corpus.maxDocumentBytes, corpus.invalidUtf8, report);
  const settings = settingsOf(corpus, seed, scanned.some((f) => f.invalidUtf8 !== undefined));
  const fingerprint = fingerprintOf(scanned, settings);
  if (existing.kind === 'corpus' && unchanged(fingerprint)) return upToDate(existing.meta);
  if (existing.kind !== 'none' && !opts.force) {
    const why =
      existing.kind === 'corpus'
        ? `it was built differently: ${describeChange(existing.meta, scanned, settings)}`
        : existing.reason;
    throw new CorpusError(`not replacing the corpus at ${corpus.path}: ${why}. Pass --force to rebuild it.`);
  }

  const docs = splitDocuments(scanned, seed, corpus.validationFraction);
  if (docs.length === 0) {
    throw new CorpusError(
      `no documents left to ingest: all ${scanned.length} input file(s) are invalid UTF-8 and corpus.invalidUtf8=skip leaves them out ` +
        `(first: ${scanned[0].path}, line ${scanned[0].invalidUtf8?.line}); set corpus.invalidUtf8=replace to keep them`,
    );
  }
  const { meta: tokenizerMeta, tokenizer } = await trainTokenizer(docs, corpus, report);
  const writer = new CorpusWriter(corpus.path);
  try {
    const splits = await encodeAll(docs, tokenizer, writer, corpus.shardTokens, report);
    const meta: CorpusMeta = {
      format: CORPUS_FORMAT,
      version: CORPUS_FORMAT_VERSION,
      tokenizer: tokenizerMeta,
      tokenDtype: dtypeFor(tokenizerMeta.vocabSize),
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
    };
    const tokens = splits.train.tokens + splits.validation.tokens;
    report({ phase: 'write', bytesDone: 0, bytesTotal: 1, tokens, documents: docs.length });
    await writer.commit(meta);
    report({ phase: 'write', bytesDone: 1, bytesTotal: 1, tokens, documents: docs.length });
    return { skipped: false, meta, invalidUtf8: invalidUtf8Summary(meta), seconds: elapsed(), tokensPerSecond: tokens / elapsed() };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

async function scanAll(
  files: readonly InputFile[],
  maxDocumentBytes: number,
  invalidUtf8: InvalidUtf8Policy,
  report: (p: IngestProgress) => void,
): Promise<ScannedFile[]> {
  const bytesTotal = files.reduce((sum, f) => sum + f.bytes, 0);
  let bytesDone = 0;
  let documents = 0;
  const scanned: ScannedFile[] = [];
  for (const file of files) {
    const done = await scanFile(file, maxDocumentBytes, (n) => {
      bytesDone += n;
      report({ phase: 'scan', bytesDone, bytesTotal, tokens: 0, documents });
    }, invalidUtf8);
    scanned.push(done);
    documents += done.documents.length;
  }
  report({ phase: 'scan', bytesDone, bytesTotal, tokens: 0, documents });
  return scanned;
}

async function trainTokenizer(
  docs: readonly PlannedDocument[],
  corpus: CorpusConfig,
  report: (p: IngestProgress) => void,
): Promise<{ meta: TokenizerMeta; tokenizer: CorpusTokenizer }> {
  const trainer = new TokenizerTrainer(corpus);
  const sample = tokenizerSample(docs, corpus.tokenizerSampleBytes);
  if (sample.length === 0) throw new CorpusError('the training split is empty: no text to learn a tokenizer from');
  const bytesTotal = sample.reduce((sum, d) => sum + d.span.end - d.span.start, 0);
  let bytesDone = 0;
  for (const [i, doc] of sample.entries()) {
    for await (const text of readDocumentChunks(doc.file, doc.span)) trainer.add(text);
    trainer.endDocument();
    bytesDone += doc.span.end - doc.span.start;
    report({ phase: 'tokenizer', bytesDone, bytesTotal, tokens: 0, documents: i + 1 });
  }
  const meta = trainer.finish();
  return { meta, tokenizer: loadTokenizer(meta) };
}

async function encodeAll(
  docs: readonly PlannedDocument[],
  tokenizer: CorpusTokenizer,
  writer: CorpusWriter,
  shardTokens: number,
  report: (p: IngestProgress) => void,
): Promise<Record<Split, SplitMeta>> {
  const dtype = dtypeFor(tokenizer.vocabSize);
  const packers = {
    train: new ShardPacker(writer, 'train', shardTokens, dtype),
    validation: new ShardPacker(writer, 'validation', shardTokens, dtype),
  };
  const bytesTotal = docs.reduce((sum, d) => sum + d.span.end - d.span.start, 0);
  let bytesDone = 0;
  let flushedShards = 0;
  for (let i = 0; i < docs.length; i++) {
    const packer = packers[docs[i].split];
    const encoder = tokenizer.encodeStream((ids) => packer.push(ids));
    for await (const text of readDocumentChunks(docs[i].file, docs[i].span)) encoder.push(text);
    encoder.end();
    packer.push([tokenizer.eod]);
    packer.documents++;
    bytesDone += docs[i].span.end - docs[i].span.start;
    const shards = packers.train.shards + packers.validation.shards;
    if (shards - flushedShards >= SHARDS_PER_FLUSH) {
      await writer.flush();
      packers.train.reuseWritten();
      packers.validation.reuseWritten();
      flushedShards = shards;
    }
    const tokens = packers.train.tokens + packers.validation.tokens;
    report({ phase: 'encode', bytesDone, bytesTotal, tokens, documents: i + 1 });
  }
  return { train: packers.train.finish(), validation: packers.validation.finish() };
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

  push(ids: readonly number[]): void {
    for (const id of ids) {
      this.buffer[this.fill++] = id;
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
