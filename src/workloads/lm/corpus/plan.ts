/**
 * Decisions ingestion makes before it tokenizes anything: the fingerprint of what would be built, whether a store
 * already holds it, the train/validation split, and the text the tokenizer learns from.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { CorpusConfig } from '../config.js';
import type { DocumentSpan, InputFile, ScannedFile } from './inputs.js';
import { isPartsFolder } from './parts-folder.js';
import { type CorpusMeta, readCorpusMeta, type Split, type TokenizerMeta } from './store.js';
import { TOKENIZER_LIBRARY } from './tokenizer.js';
import { processAlive } from '../../../util/process.js';

/** Bump whenever the same inputs and settings would give other shards. */
const INGEST_VERSION = 1;

export type Settings = Record<string, string | number>;

/**
 * Everything besides the input files that changes the store's content. corpus.invalidUtf8 changes it only when some
 * input is not valid UTF-8 (`invalidInputs`): a store of valid text is the same under every policy, so switching the
 * policy neither rebuilds nor refuses it, while a store that replaced or skipped bad input is rebuilt under another.
 * With a tokenizer given (`shared`: corpus.tokenizer) its hash stands for the settings it would be learned with.
 */
export function settingsOf(corpus: CorpusConfig, seed: number, invalidInputs = false, shared?: TokenizerMeta): Settings {
  return {
    ...settingsWithoutPolicy(corpus, seed, shared),
    ...(invalidInputs ? { invalidUtf8: corpus.invalidUtf8 } : {}),
  };
}

function settingsWithoutPolicy(corpus: CorpusConfig, seed: number, shared?: TokenizerMeta): Settings {
  // The keys in this order: the fingerprints of the stores built so far hash them so.
  if (shared) {
    return {
      ingest: INGEST_VERSION,
      tokenizer: TOKENIZER_LIBRARY,
      tokenizerSha256: shared.sha256,
      seed,
      shardTokens: corpus.shardTokens,
      validationFraction: corpus.validationFraction,
      maxDocumentBytes: corpus.maxDocumentBytes,
    };
  }
  return {
    ingest: INGEST_VERSION,
    tokenizer: TOKENIZER_LIBRARY,
    seed,
    vocabSize: corpus.vocabSize,
    minFrequency: corpus.minFrequency,
    shardTokens: corpus.shardTokens,
    validationFraction: corpus.validationFraction,
    maxDocumentBytes: corpus.maxDocumentBytes,
    tokenizerSampleBytes: corpus.tokenizerSampleBytes,
  };
}

/** sha256 over the settings and each file's name, size and content hash, in order. */
type HashedFile = Pick<ScannedFile, 'name' | 'bytes' | 'sha256'>;

export function fingerprintOf(files: readonly HashedFile[], settings: Settings): string {
  const hash = createHash('sha256').update(JSON.stringify(settings));
  for (const f of files) hash.update(`\n${JSON.stringify([f.name, f.bytes, f.sha256])}`);
  return hash.digest('hex');
}

/**
 * The fingerprint the listed files would have if none changed since the store was built, from the stored content
 * hashes: undefined when any file's name, size or modification time differs (then the files must be read).
 */
export function fingerprintFromStore(
  files: readonly InputFile[],
  meta: CorpusMeta,
  settings: Settings,
): string | undefined {
  const stored = new Map(meta.inputs.files.map((f) => [f.path, f]));
  if (stored.size !== files.length) return undefined;
  const hashed: HashedFile[] = [];
  for (const f of files) {
    const s = stored.get(f.name);
    if (!s || s.bytes !== f.bytes || s.mtimeMs !== f.mtimeMs || !s.sha256) return undefined;
    hashed.push({ name: f.name, bytes: f.bytes, sha256: s.sha256 });
  }
  return fingerprintOf(hashed, settings);
}

export type ExistingStore =
  | { kind: 'none' }
  | { kind: 'corpus'; meta: CorpusMeta }
  | { kind: 'unreadable'; reason: string }
  | { kind: 'parts' }
  | { kind: 'foreign' };

/**
 * What is at a store's path now. Anything that is not an LMDB environment is never replaced, even with --force; nor
 * is the folder of a corpus in parts by a corpus in one piece.
 */
export function inspectStore(path: string): ExistingStore {
  if (!existsSync(path)) return { kind: 'none' };
  if (isPartsFolder(path)) return { kind: 'parts' };
  if (!statSync(path).isDirectory() || !existsSync(join(path, 'data.mdb'))) return { kind: 'foreign' };
  let meta: CorpusMeta;
  try {
    meta = readCorpusMeta(path);
  } catch (err) {
    return { kind: 'unreadable', reason: (err as Error).message };
  }
  if (meta.tokenizer.library !== TOKENIZER_LIBRARY) {
    const reason = `its tokenizer is from ${meta.tokenizer.library}; this codistill uses ${TOKENIZER_LIBRARY}`;
    return { kind: 'unreadable', reason };
  }
  return { kind: 'corpus', meta };
}

/** A sentence saying how the store differs from what was asked for (settings first, then files). */
export function describeChange(meta: CorpusMeta, files: readonly ScannedFile[], settings: Settings): string {
  const was = meta.inputs.settings ?? {};
  const changes = [...new Set([...Object.keys(settings), ...Object.keys(was)])]
    .filter((k) => was[k] !== settings[k])
    .map((k) => `${k} ${was[k] ?? '(unset)'} -> ${settings[k] ?? '(unset)'}`);
  const before = new Map(meta.inputs.files.map((f) => [f.path, f.sha256]));
  const now = new Set(files.map((f) => f.name));
  const added = files.filter((f) => !before.has(f.name)).length;
  const changed = files.filter((f) => before.has(f.name) && before.get(f.name) !== f.sha256).length;
  const removed = [...before.keys()].filter((p) => !now.has(p)).length;
  if (added) changes.push(`${added} file(s) added`);
  if (changed) changes.push(`${changed} file(s) changed`);
  if (removed) changes.push(`${removed} file(s) removed`);
  if (!changes.length) changes.push('the input order changed');
  return changes.join(', ');
}

export interface PlannedDocument {
  file: ScannedFile;
  span: DocumentSpan;
  split: Split;
}

/**
 * The seeded split by whole document: the round(fraction * n) documents (at least one when the fraction is above 0
 * and there are two or more, never all) with the smallest sha256(seed, file name, piece) go to validation. Hashing
 * names rather than positions keeps a document on its side when other files are added. Order is the input order.
 */
export function splitDocuments(
  files: readonly ScannedFile[],
  seed: number,
  validationFraction: number,
): PlannedDocument[] {
  const docs: (PlannedDocument & { key: string })[] = files.flatMap((file) =>
    file.documents.map((span, piece) => ({
      file,
      span,
      split: 'train' as Split,
      key: createHash('sha256').update(`${seed}\0${file.name}\0${piece}`).digest('hex'),
    })),
  );
  const n = docs.length;
  const wanted =
    validationFraction > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(validationFraction * n))) : 0;
  const byKey = [...docs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 0; i < wanted; i++) byKey[i].split = 'validation';
  return docs.map(({ file, span, split }) => ({ file, span, split }));
}

/**
 * The documents the tokenizer learns from: all training documents when they fit in `budget` bytes, else every k-th
 * one (k = ceil(training bytes / budget)) until the budget is spent, so the sample spans the whole input.
 */
export function tokenizerSample(docs: readonly PlannedDocument[], budget: number): PlannedDocument[] {
  const train = docs.filter((d) => d.split === 'train');
  const total = train.reduce((sum, d) => sum + d.span.end - d.span.start, 0);
  const stride = Math.max(1, Math.ceil(total / budget));
  const sample: PlannedDocument[] = [];
  let bytes = 0;
  for (let i = 0; i < train.length; i += stride) {
    const size = train[i].span.end - train[i].span.start;
    if (bytes + size > budget && sample.length > 0) break;
    sample.push(train[i]);
    bytes += size;
  }
  return sample;
}

/**
 * Cleans up after ingests that were killed (their process is gone): removes `<path>.partial-<pid>`, and removes
 * `<path>.old-<pid>`, or moves it back when it died between its two renames and left no store at `path`.
 */
export function removeAbandonedWrites(path: string): void {
  const dir = dirname(path);
  if (!existsSync(dir)) return;
  const pattern = new RegExp(`^${escapeRegExp(basename(path))}\\.(partial|old)-(\\d+)$`);
  for (const entry of readdirSync(dir).sort()) {
    const match = pattern.exec(entry);
    if (!match || processAlive(Number(match[2]))) continue;
    if (match[1] === 'old' && !existsSync(path)) renameSync(join(dir, entry), path);
    else rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
