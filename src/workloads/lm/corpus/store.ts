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
 *
 * A corpus built in parts is a folder of such stores and a manifest (parts-folder.ts); `Corpus` reads it as one
 * corpus, its shards numbered as parts-layout.ts says, so that what reads a corpus never asks which kind it is.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { checkLmdbEnvironment } from '../../../store/lmdb-check.js';
import { CorpusError } from './errors.js';
import { isPartsFolder, MANIFEST, partLabel, type PartRef, readManifest, scanPartsFolder } from './parts-folder.js';
import { PartsLayout } from './parts-layout.js';

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
  /**
   * Set in each part of a corpus built in parts: which part it is, and the fingerprint of the whole input list
   * (names and sizes, in order) that was cut into the parts.
   */
  part?: PartRef & { listing: string };
}

export { CorpusError };

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

/** One LMDB store's shards and metadata: a corpus built in one piece, or one part of a corpus in parts. */
class StoreShards {
  readonly meta: CorpusMeta;
  private readonly env: RootDatabase;
  private readonly shards: Database<Buffer>;

  constructor(readonly path: string) {
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

  /** A shard's bytes: a private copy, or (`fast`) a view of lmdb-js' reused buffer (see Corpus.shardBytesFast). */
  bytes(split: Split, index: number, fast: boolean): Uint8Array {
    const key = shardKey(split, index);
    const buf = fast ? this.shards.getBinaryFast(key) : this.shards.getBinary(key);
    if (!buf) throw new CorpusError(`${this.path}: shard ${key} is missing`);
    // The reused buffer keeps its full size (byteLength 16 MiB) and only shadows `length` with the value's size:
    // a view of exactly the value keeps byteLength-based code (asTokens) inside the shard.
    return fast ? buf.subarray(0, buf.length) : buf;
  }

  close(): void {
    this.env.close();
  }
}

/**
 * A read-only view of a finished corpus: a store built in one piece, or a corpus built in parts read as one (its
 * manifest says which parts; parts-layout.ts numbers their shards as one corpus' would be).
 */
export class Corpus {
  /** Scratch of shardBytesFast for a shard joined from several parts' tails. */
  private joined: Uint8Array | undefined;

  private constructor(
    readonly path: string,
    readonly meta: CorpusMeta,
    private readonly stores: StoreShards[],
    private readonly layouts?: Record<Split, PartsLayout>,
  ) {}

  static open(path: string): Corpus {
    if (!existsSync(path)) {
      throw new CorpusError(`no corpus at ${path}: build one with \`codistill ingest\` (or set corpus.path)`);
    }
    if (isPartsFolder(path)) return Corpus.openParts(path);
    const store = new StoreShards(path);
    return new Corpus(path, store.meta, [store]);
  }

  /**
   * A corpus in parts: every part the manifest lists must be there, in this format, with the manifest's tokenizer
   * and the content the manifest was written for; each failure names the part and how to build it again.
   */
  private static openParts(path: string): Corpus {
    const folder = scanPartsFolder(path);
    if (!folder.manifest) {
      const [count, built] = [...folder.counts][0];
      const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !built.includes(i));
      const next = missing.length > 0 ? `build ${partLabel({ index: missing[0], count })} with \`codistill ingest --part ${missing[0]}/${count}\`` : `re-run any part (\`codistill ingest --part 0/${count}\`) to write it`;
      throw new CorpusError(
        `corpus ${path} is not finished: it holds ${built.length} of its ${count} parts and no manifest (the last part to finish writes it): ${next}`,
      );
    }
    const manifest = readManifest(path);
    const count = manifest.parts.length;
    const rebuild = (index: number) => `\`codistill ingest --part ${index}/${count}\` (with the config and inputs of the other parts)`;
    const missing = manifest.parts.flatMap((p, index) => (existsSync(join(path, p.path)) ? [] : [index]));
    if (missing.length > 0) {
      const which = missing.map((index) => partLabel({ index, count })).join(', ');
      throw new CorpusError(`corpus ${path}: ${which} of its manifest ${missing.length === 1 ? 'is' : 'are'} missing: rebuild with ${rebuild(missing[0])}`);
    }
    const stores: StoreShards[] = [];
    try {
      for (const [index, entry] of manifest.parts.entries()) {
        const store = new StoreShards(join(path, entry.path));
        stores.push(store);
        const m = store.meta;
        const label = `corpus ${path}: ${partLabel({ index, count })} (${entry.path})`;
        if (m.tokenizer.sha256 !== manifest.tokenizer.sha256) {
          throw new CorpusError(
            `${label} was encoded with another tokenizer (sha256 ${m.tokenizer.sha256.slice(0, 12)}) than the manifest's ` +
              `(${manifest.tokenizer.sha256.slice(0, 12)}): every part must share one; rebuild it with ${rebuild(index)}`,
          );
        }
        if (m.part?.index !== index || m.part.count !== count || m.inputs.fingerprint !== entry.fingerprint) {
          throw new CorpusError(`${label} is not the part the manifest was written for (it was replaced since): rebuild it with ${rebuild(index)}`);
        }
      }
    } catch (err) {
      for (const store of stores) store.close();
      throw err;
    }
    const layout = (split: Split) => new PartsLayout(manifest.shardTokens, stores.map((s) => s.meta.splits[split].tokens));
    const layouts = { train: layout('train'), validation: layout('validation') };
    const first = stores[0].meta;
    const splitOf = (split: Split): SplitMeta => ({
      shards: layouts[split].shards,
      tokens: layouts[split].tokens,
      documents: stores.reduce((sum, s) => sum + s.meta.splits[split].documents, 0),
    });
    const meta: CorpusMeta = {
      format: CORPUS_FORMAT,
      version: CORPUS_FORMAT_VERSION,
      tokenizer: first.tokenizer,
      tokenDtype: manifest.tokenDtype,
      shardTokens: manifest.shardTokens,
      splits: { train: splitOf('train'), validation: splitOf('validation') },
      inputs: { fingerprint: manifest.fingerprint, files: stores.flatMap((s) => s.meta.inputs.files) },
      split: first.split,
      createdAt: manifest.createdAt,
    };
    return new Corpus(path, meta, stores, layouts);
  }

  /** Bytes of one shard as a private copy (safe to keep and to transfer). */
  shardBytes(split: Split, index: number): Uint8Array {
    return this.read(split, index, false);
  }

  /**
   * Bytes of one shard without a copy. Below 16 MiB lmdb-js hands back one reused buffer that the next read
   * overwrites (a shard joined from parts' tails is in a buffer of this corpus, just as short-lived): use it at
   * once or copy what you keep.
   */
  shardBytesFast(split: Split, index: number): Uint8Array {
    return this.read(split, index, true);
  }

  private read(split: Split, index: number, fast: boolean): Uint8Array {
    if (!this.layouts) return this.stores[0].bytes(split, index, fast);
    if (!Number.isInteger(index) || index < 0 || index >= this.shardCount(split)) {
      throw new CorpusError(`${this.path}: shard ${shardKey(split, index)} is missing`);
    }
    const pieces = this.layouts[split].locate(index);
    const width = bytesPerToken(this.meta.tokenDtype);
    const length = this.shardLength(split, index);
    const [first] = pieces;
    if (pieces.length === 1 && first.from === 0) {
      const whole = this.stores[first.part].bytes(split, first.shard, fast);
      if (whole.length === length * width) return whole;
    }
    let out: Uint8Array;
    if (fast) {
      this.joined ??= new Uint8Array(this.meta.shardTokens * width);
      out = this.joined.subarray(0, length * width);
    } else {
      out = new Uint8Array(length * width);
    }
    let at = 0;
    for (const piece of pieces) {
      // Each read may reuse lmdb-js' one buffer: copy the piece out before the next.
      const bytes = this.stores[piece.part].bytes(split, piece.shard, true);
      out.set(bytes.subarray(piece.from * width, piece.to * width), at);
      at += (piece.to - piece.from) * width;
    }
    return out;
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
    for (const store of this.stores) store.close();
  }
}

/**
 * What identifies the corpus at `path` as it is now (device and inode): the store folder, which a re-ingest
 * renames into place, and for a corpus in parts its manifest, which every change of a part writes anew. A reader
 * holding a corpus open compares it to see that it was replaced.
 */
export function corpusIdentity(path: string): string {
  const of = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    return st ? `${st.dev}:${st.ino}` : '';
  };
  const manifest = join(path, MANIFEST);
  return existsSync(manifest) ? `${of(path)}/${of(manifest)}` : of(path);
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
