/**
 * The token corpus store: an LMDB environment (a directory) of fixed-size token shards plus one metadata record.
 *
 * Layout (format version 1):
 *   db "meta"   key "meta"            -> CorpusMeta (msgpack)
 *   db "shards" key "train/00000042"  -> raw little-endian token ids (uint16 or uint32, per meta.tokenDtype)
 *               key "validation/00000003"
 * Documents are concatenated in split order, each followed by the end-of-document token. Every shard holds exactly
 * meta.shardTokens tokens except the last shard of each split, which may be shorter.
 *
 * Writers build a store in a temporary sibling directory and rename it into place on success, so a reader never sees
 * a half-written corpus and a failed ingest leaves nothing behind.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { checkLmdbEnvironment } from '../../../store/lmdb-check.js';

export const CORPUS_FORMAT = 'codistill-corpus';
export const CORPUS_FORMAT_VERSION = 1;

export type Split = 'train' | 'validation';
export const SPLITS: readonly Split[] = ['train', 'validation'];

export type TokenDtype = 'uint16' | 'uint32';
export type TokenArray = Uint16Array | Uint32Array;

export interface SplitMeta {
  shards: number;
  tokens: number;
  documents: number;
}

export interface TokenizerMeta {
  /** Tokenizer family and the library that trained it: a store from another tokenizer is refused. */
  kind: 'bpe';
  library: string;
  vocabSize: number;
  /** The tokenizer serialised by its library (Hugging Face tokenizer.json). */
  json: string;
  sha256: string;
  /** Id of the end-of-document token appended after every document. */
  eod: number;
}

export interface InputFileMeta {
  /** The input's base name, then the path inside it (not the absolute path: moving the inputs changes nothing). */
  path: string;
  bytes: number;
  /** Content hash, and the modification time that lets a re-run trust it without reading the file again. */
  sha256: string;
  mtimeMs: number;
  documents: number;
  /** The file is not valid UTF-8: where it first breaks, and whether it was read with U+FFFD or left out. */
  invalidUtf8?: { offset: number; line: number; action: 'replaced' | 'skipped' };
}

export interface CorpusMeta {
  format: typeof CORPUS_FORMAT;
  version: number;
  tokenizer: TokenizerMeta;
  tokenDtype: TokenDtype;
  shardTokens: number;
  splits: Record<Split, SplitMeta>;
  /** What was ingested: re-running on the same fingerprint is a no-op, another one is refused unless forced. */
  inputs: { fingerprint: string; files: InputFileMeta[]; settings?: Record<string, string | number> };
  split: { seed: number; validationFraction: number };
  createdAt: string;
}

export class CorpusError extends Error {
  override name = 'CorpusError';
}

export const shardKey = (split: Split, index: number): string => `${split}/${String(index).padStart(8, '0')}`;

export const bytesPerToken = (dtype: TokenDtype): number => (dtype === 'uint16' ? 2 : 4);

export const dtypeFor = (vocabSize: number): TokenDtype => (vocabSize <= 65536 ? 'uint16' : 'uint32');

function openEnv(path: string, readOnly: boolean): { env: RootDatabase; meta: Database; shards: Database<Buffer> } {
  // noSubdir: false always: lmdb-js otherwise makes a single-file store (and a stray "-lock" file) whenever the last
  // path segment has a dot, as the writer's "<path>.partial-<pid>" does, and the rename then leaves the lock behind.
  // A damaged data file would crash the process inside lmdb-js: refused first, with a DamagedStoreError.
  checkLmdbEnvironment(path, {
    noSubdir: false,
    readOnly,
    remedy: '(restore it from a copy, or re-run `codistill ingest --force` to build it again)',
  });
  const env = open({ path, compression: false, readOnly, maxDbs: 4, noSubdir: false });
  const meta = env.openDB({ name: 'meta' });
  const shards = env.openDB<Buffer>({ name: 'shards', encoding: 'binary' });
  return { env, meta, shards };
}

/** A read-only view of a finished corpus. */
export class Corpus {
  readonly meta: CorpusMeta;
  private readonly env: RootDatabase;
  private readonly shards: Database<Buffer>;

  private constructor(readonly path: string) {
    if (!existsSync(path)) {
      throw new CorpusError(`no corpus at ${path}: build one with \`codistill ingest\` (or set corpus.path)`);
    }
    const { env, meta, shards } = openEnv(path, true);
    this.env = env;
    this.shards = shards;
    const m = meta.get('meta') as CorpusMeta | undefined;
    if (!m || m.format !== CORPUS_FORMAT) {
      env.close();
      throw new CorpusError(`${path} is not a codistill corpus store (no "${CORPUS_FORMAT}" metadata)`);
    }
    if (m.version !== CORPUS_FORMAT_VERSION) {
      env.close();
      throw new CorpusError(
        `${path} was written in corpus format version ${m.version}; this codistill reads version ` +
          `${CORPUS_FORMAT_VERSION}: re-run \`codistill ingest --force\``,
      );
    }
    this.meta = m;
  }

  static open(path: string): Corpus {
    return new Corpus(path);
  }

  /** Bytes of one shard as a private copy (safe to keep and to transfer). */
  shardBytes(split: Split, index: number): Uint8Array {
    const buf = this.shards.getBinary(shardKey(split, index));
    if (!buf) throw new CorpusError(`${this.path}: shard ${shardKey(split, index)} is missing`);
    return buf;
  }

  /**
   * Bytes of one shard without a copy. Below 16 MiB lmdb-js hands back one reused buffer that the next read
   * overwrites: use it at once or copy what you keep.
   */
  shardBytesFast(split: Split, index: number): Uint8Array {
    const buf = this.shards.getBinaryFast(shardKey(split, index));
    if (!buf) throw new CorpusError(`${this.path}: shard ${shardKey(split, index)} is missing`);
    // The reused buffer keeps its full size (byteLength 16 MiB) and only shadows `length` with the value's size:
    // a view of exactly the value keeps byteLength-based code (asTokens) inside the shard.
    return buf.subarray(0, buf.length);
  }

  /** Token ids of one shard (a private copy). */
  shard(split: Split, index: number): TokenArray {
    return asTokens(this.shardBytes(split, index), this.meta.tokenDtype);
  }

  shardCount(split: Split): number {
    return this.meta.splits[split].shards;
  }

  /** Tokens in shard `index` of `split` (the last one may be short). */
  shardLength(split: Split, index: number): number {
    const s = this.meta.splits[split];
    if (index < s.shards - 1) return this.meta.shardTokens;
    return s.tokens - (s.shards - 1) * this.meta.shardTokens;
  }

  close(): void {
    this.env.close();
  }
}

/** The typed-array class of a token dtype. */
export const tokenArrayType = (dtype: TokenDtype): Uint16ArrayConstructor | Uint32ArrayConstructor =>
  dtype === 'uint16' ? Uint16Array : Uint32Array;

/** Views bytes as token ids, copying only when the bytes are not aligned for the dtype. */
export function asTokens(bytes: Uint8Array, dtype: TokenDtype): TokenArray {
  const width = bytesPerToken(dtype);
  const Ctor = tokenArrayType(dtype);
  if (bytes.byteOffset % width === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / width);
  return new Ctor(bytes.slice().buffer as ArrayBuffer);
}

/** Writes a new corpus into `<path>.partial-<pid>` and moves it to `path` on commit; abort() removes it. */
export class CorpusWriter {
  private readonly tmp: string;
  private readonly env: RootDatabase;
  private readonly meta: Database;
  private readonly shards: Database<Buffer>;
  private pending: Promise<unknown>[] = [];
  private done = false;

  constructor(readonly path: string) {
    this.tmp = `${path}.partial-${process.pid}`;
    rmSync(this.tmp, { recursive: true, force: true });
    const { env, meta, shards } = openEnv(this.tmp, false);
    this.env = env;
    this.meta = meta;
    this.shards = shards;
  }

  /** Queues one shard (the bytes are copied by LMDB when the batched write commits). */
  putShard(split: Split, index: number, tokens: TokenArray): Promise<unknown> {
    const p = this.shards.put(shardKey(split, index), Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    this.pending.push(p);
    return p;
  }

  /** Waits for the queued shard writes (call now and then to keep memory flat). */
  async flush(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    await Promise.all(p);
  }

  /** Writes the metadata last, closes, and atomically replaces whatever was at `path`. */
  async commit(meta: CorpusMeta): Promise<void> {
    await this.flush();
    await this.meta.put('meta', meta);
    await this.env.flushed;
    await this.env.close();
    this.done = true;
    if (existsSync(this.path)) {
      const old = `${this.path}.old-${process.pid}`;
      renameSync(this.path, old);
      renameSync(this.tmp, this.path);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(this.tmp, this.path);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await Promise.allSettled(this.pending);
    await this.env.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Reads a corpus' metadata without keeping it open (for "is this the same input?" checks). */
export function readCorpusMeta(path: string): CorpusMeta {
  const c = Corpus.open(path);
  try {
    return c.meta;
  } finally {
    c.close();
  }
}
