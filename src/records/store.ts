/**
 * A store of fixed-width records: an LMDB environment (a directory) of row shards plus one metadata record. Every
 * row has the same named fields, each `width` values of one dtype.
 *
 * Layout (format version 1):
 *   db "meta"    key "meta"                -> RecordMeta (msgpack)
 *   db "shards"  key "train/00000042"      -> one shard: each field's column block (rows * width values,
 *                key "validation/00000003"    little-endian) one after the other, in the order of meta.fields
 * Every shard holds meta.shardRows rows except the last of each split, which may be shorter, so the rows of any
 * shard follow from the metadata alone and a reader copies a field out of a shard in one piece.
 *
 * Writers build a store in a temporary sibling directory and rename it into place on success, so a reader never sees
 * a half-written store and a failed write leaves the previous one as it was.
 */
import { endianness } from 'node:os';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { checkLmdbEnvironment, DamagedStoreError } from '../store/lmdb-check.js';
import type { Field } from '../workloads/workload.js';
import { processAlive } from '../util/process.js';

export const RECORD_FORMAT = 'codistill-records';
export const RECORD_FORMAT_VERSION = 1;

export type RecordSplit = 'train' | 'validation';
export const RECORD_SPLITS: readonly RecordSplit[] = ['train', 'validation'];

export type Dtype = 'int32' | 'float32' | 'uint8';

export interface FieldSpec {
  name: string;
  dtype: Dtype;
  /** Values per row. */
  width: number;
}

export interface RecordMeta {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_FORMAT_VERSION;
  /** What the rows are (e.g. 'criteo', 'mnist-idx'): set by the writer, checked by the workload that reads them. */
  kind: string;
  fields: FieldSpec[];
  shardRows: number;
  splits: Record<RecordSplit, { rows: number; shards: number }>;
  /** The writer's description of its inputs and settings (what an ingest compares to decide it is up to date). */
  source: Record<string, unknown>;
}

export class RecordError extends Error {
  override name = 'RecordError';
}

const ARRAY_TYPES = { int32: Int32Array, float32: Float32Array, uint8: Uint8Array } as const;

/** A zeroed typed array of `length` values of `dtype`. */
export const fieldArray = (dtype: Dtype, length: number): Field => new ARRAY_TYPES[dtype](length);

export const bytesPerValue = (dtype: Dtype): number => ARRAY_TYPES[dtype].BYTES_PER_ELEMENT;

export const shardKey = (split: RecordSplit, index: number): string => `${split}/${String(index).padStart(8, '0')}`;

/** Rows in shard `index` of `split`: shardRows, except in the split's last shard. */
export function rowsInShard(meta: RecordMeta, split: RecordSplit, index: number): number {
  const s = meta.splits[split];
  if (index < 0 || index >= s.shards) throw new RecordError(`${split} shard ${index} does not exist (${s.shards} shards)`);
  return index < s.shards - 1 ? meta.shardRows : s.rows - (s.shards - 1) * meta.shardRows;
}

/** Whether `path` holds an LMDB environment (what a record store is); its metadata is checked by RecordStore.open. */
export function recordStoreExists(path: string): boolean {
  return existsSync(join(path, 'data.mdb'));
}

// Shards are the host's typed-array bytes copied as they are: the little-endian format needs a little-endian host.
function checkHost(): void {
  if (endianness() !== 'LE') throw new RecordError('record stores are little-endian; this machine is big-endian');
}

/** What a user can do about a damaged store (the end of a DamagedStoreError's message). */
const REBUILD = '(restore it from a copy, or re-run `codistill ingest --force` to build it again)';

function openEnv(path: string, readOnly: boolean): { env: RootDatabase; meta: Database; shards: Database<Buffer> } {
  // noSubdir: false always: lmdb-js otherwise makes a single-file store whenever the last path segment has a dot,
  // as the writer's "<path>.partial-<pid>" does. A writer's store is not durable until its commit, which syncs the
  // file once before the rename, so its transactions skip the sync (one per shard, else most of a write's time).
  // A damaged data file would crash the process inside lmdb-js: refused first, with a DamagedStoreError.
  checkLmdbEnvironment(path, { noSubdir: false, readOnly, remedy: REBUILD });
  const env = open({ path, compression: false, readOnly, maxDbs: 4, noSubdir: false, noSync: !readOnly });
  const meta = env.openDB({ name: 'meta' });
  const shards = env.openDB<Buffer>({ name: 'shards', encoding: 'binary' });
  return { env, meta, shards };
}

function checkFields(fields: readonly FieldSpec[]): void {
  if (fields.length === 0) throw new RecordError('a record store needs at least one field');
  const seen = new Set<string>();
  for (const f of fields) {
    if (!f.name || seen.has(f.name)) throw new RecordError(`field name "${f.name}" is empty or repeated`);
    seen.add(f.name);
    if (!(f.dtype in ARRAY_TYPES)) throw new RecordError(`field "${f.name}": unknown dtype ${String(f.dtype)}`);
    if (!Number.isInteger(f.width) || f.width < 1) throw new RecordError(`field "${f.name}": width ${f.width} is not a positive integer`);
  }
}

/** A read-only view of a finished store. */
export class RecordStore {
  readonly meta: RecordMeta;
  private readonly env: RootDatabase;
  private readonly shards: Database<Buffer>;
  private readonly rowBytes: number;

  private constructor(readonly path: string) {
    checkHost();
    if (!existsSync(path)) throw new RecordError(`no record store at ${path}: build one with \`codistill ingest\``);
    if (!recordStoreExists(path)) throw new RecordError(`${path} is not a record store (no LMDB data.mdb in it)`);
    const { env, meta, shards } = openEnv(path, true);
    const m = meta.get('meta') as RecordMeta | undefined;
    if (!m || m.format !== RECORD_FORMAT) {
      env.close();
      throw new RecordError(`${path} is not a codistill record store (no "${RECORD_FORMAT}" metadata)`);
    }
    if (m.version !== RECORD_FORMAT_VERSION) {
      env.close();
      throw new RecordError(
        `${path} was written in record format version ${m.version}; this codistill reads version ` +
          `${RECORD_FORMAT_VERSION}: re-run \`codistill ingest --force\``,
      );
    }
    this.env = env;
    this.shards = shards;
    this.meta = m;
    this.rowBytes = m.fields.reduce((sum, f) => sum + f.width * bytesPerValue(f.dtype), 0);
  }

  /** Opens the store at `path`; with `kind`, a store of other records is refused too. */
  static open(path: string, o: { kind?: string } = {}): RecordStore {
    const store = new RecordStore(path);
    if (o.kind !== undefined && store.meta.kind !== o.kind) {
      store.close();
      throw new RecordError(`${path} holds ${store.meta.kind} records, not ${o.kind}: re-run \`codistill ingest --force\``);
    }
    return store;
  }

  rowsInShard(split: RecordSplit, index: number): number {
    return rowsInShard(this.meta, split, index);
  }

  /** The rows of one shard, each field in a fresh typed array of rows * width values. */
  readShard(split: RecordSplit, index: number): Record<string, Field> {
    const rows = this.rowsInShard(split, index);
    const out: Record<string, Field> = {};
    for (const f of this.meta.fields) out[f.name] = fieldArray(f.dtype, rows * f.width);
    this.readShardInto(split, index, out, 0);
    return out;
  }

  /** Copies the rows of one shard into `target` (arrays of every field) from row `at` on; returns the rows copied. */
  readShardInto(split: RecordSplit, index: number, target: Record<string, Field>, at: number): number {
    const rows = this.rowsInShard(split, index);
    const key = shardKey(split, index);
    // The fast read hands back a buffer that the next read reuses: everything is copied out of it right here.
    const value = this.shards.getBinaryFast(key);
    if (!value) throw new RecordError(`${this.path}: shard ${key} is missing`);
    if (value.length !== rows * this.rowBytes) {
      throw new RecordError(`${this.path}: shard ${key} holds ${value.length} bytes, expected ${rows * this.rowBytes}`);
    }
    let offset = 0;
    for (const f of this.meta.fields) {
      const array = target[f.name];
      if (!(array instanceof ARRAY_TYPES[f.dtype]) || array.length < (at + rows) * f.width) {
        throw new RecordError(`readShardInto: field "${f.name}" needs a ${f.dtype} array with room for ${rows} rows at row ${at}`);
      }
      const bytes = rows * f.width * array.BYTES_PER_ELEMENT;
      const dest = new Uint8Array(array.buffer, array.byteOffset + at * f.width * array.BYTES_PER_ELEMENT, bytes);
      dest.set(value.subarray(offset, offset + bytes));
      offset += bytes;
    }
    return rows;
  }

  close(): void {
    this.env.close();
  }
}

/** One split's shard being filled: a column buffer per field, written out as soon as it holds shardRows rows. */
class ShardBuffer {
  rows = 0;
  shards = 0;
  fill = 0;
  readonly columns: Field[];

  constructor(fields: readonly FieldSpec[], shardRows: number) {
    this.columns = fields.map((f) => fieldArray(f.dtype, shardRows * f.width));
  }
}

/** Writes a new store into `<path>.partial-<pid>` and moves it to `path` on commit; abort() removes it. */
export class RecordWriter {
  private readonly tmp: string;
  private readonly env: RootDatabase;
  private readonly metaDb: Database;
  private readonly shardsDb: Database<Buffer>;
  private readonly buffers: Record<RecordSplit, ShardBuffer>;
  private readonly shardBytes: Buffer;
  private done = false;

  private constructor(
    readonly path: string,
    private readonly o: { kind: string; fields: FieldSpec[]; shardRows: number; source: Record<string, unknown> },
  ) {
    checkHost();
    checkFields(o.fields);
    if (!Number.isInteger(o.shardRows) || o.shardRows < 1) throw new RecordError(`shardRows ${o.shardRows} is not a positive integer`);
    mkdirSync(dirname(path), { recursive: true });
    removeAbandonedWrites(path);
    this.tmp = `${path}.partial-${process.pid}`;
    rmSync(this.tmp, { recursive: true, force: true });
    const { env, meta, shards } = openEnv(this.tmp, false);
    this.env = env;
    this.metaDb = meta;
    this.shardsDb = shards;
    this.buffers = { train: new ShardBuffer(o.fields, o.shardRows), validation: new ShardBuffer(o.fields, o.shardRows) };
    const rowBytes = o.fields.reduce((sum, f) => sum + f.width * bytesPerValue(f.dtype), 0);
    this.shardBytes = Buffer.alloc(rowBytes * o.shardRows);
  }

  static create(
    path: string,
    o: { kind: string; fields: FieldSpec[]; shardRows: number; source: Record<string, unknown> },
  ): RecordWriter {
    return new RecordWriter(path, o);
  }

  /** Rows appended so far, per split. */
  get rows(): Record<RecordSplit, number> {
    return { train: this.buffers.train.rows, validation: this.buffers.validation.rows };
  }

  /** Appends one row: each field `width` values (checked before anything is copied, so a bad row changes nothing). */
  append(split: RecordSplit, row: Record<string, ArrayLike<number>>): void {
    if (this.done) throw new RecordError(`${this.path}: append after commit or abort`);
    const buf = this.buffers[split];
    if (!buf) throw new RecordError(`unknown split "${String(split)}"`);
    const fields = this.o.fields;
    for (const f of fields) {
      const values = row[f.name];
      if (!values || values.length !== f.width) {
        throw new RecordError(`field "${f.name}" of a ${split} row has ${values ? values.length : 'no'} values, expected ${f.width}`);
      }
    }
    for (let i = 0; i < fields.length; i++) {
      const w = fields[i].width;
      const column = buf.columns[i];
      const values = row[fields[i].name];
      const at = buf.fill * w;
      if (w === 1) column[at] = values[0];
      else if (ArrayBuffer.isView(values)) column.set(values as unknown as ArrayLike<number>, at);
      else for (let j = 0; j < w; j++) column[at + j] = values[j];
    }
    buf.rows++;
    if (++buf.fill === this.o.shardRows) this.writeShard(split);
  }

  /**
   * Writes the last short shards and the metadata (last), then replaces whatever store was at `path`. `source` adds
   * to the description given at create what is only known at the end (counts, say).
   */
  async commit(source: Record<string, unknown> = {}): Promise<RecordMeta> {
    if (this.done) throw new RecordError(`${this.path}: commit after commit or abort`);
    try {
      for (const split of RECORD_SPLITS) if (this.buffers[split].fill > 0) this.writeShard(split);
      if (existsSync(this.path) && !recordStoreExists(this.path)) {
        throw new RecordError(`${this.path} exists and is not a record store; not replacing it`);
      }
      const meta: RecordMeta = {
        format: RECORD_FORMAT,
        version: RECORD_FORMAT_VERSION,
        kind: this.o.kind,
        fields: this.o.fields.map(({ name, dtype, width }) => ({ name, dtype, width })),
        shardRows: this.o.shardRows,
        splits: {
          train: { rows: this.buffers.train.rows, shards: this.buffers.train.shards },
          validation: { rows: this.buffers.validation.rows, shards: this.buffers.validation.shards },
        },
        source: { ...this.o.source, ...source },
      };
      this.metaDb.putSync('meta', meta);
      await this.env.close();
      this.done = true;
      syncFile(join(this.tmp, 'data.mdb'));
      replaceDir(this.tmp, this.path);
      return meta;
    } catch (err) {
      if (this.done) rmSync(this.tmp, { recursive: true, force: true });
      else await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.env.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }

  private writeShard(split: RecordSplit): void {
    const buf = this.buffers[split];
    let offset = 0;
    for (let i = 0; i < this.o.fields.length; i++) {
      const column = buf.columns[i];
      const bytes = buf.fill * this.o.fields[i].width * column.BYTES_PER_ELEMENT;
      this.shardBytes.set(new Uint8Array(column.buffer, column.byteOffset, bytes), offset);
      offset += bytes;
    }
    // A synchronous put copies the shard into LMDB before returning, so one shard buffer per split is all the memory
    // a writer holds, however many rows go through it.
    this.shardsDb.putSync(shardKey(split, buf.shards), this.shardBytes.subarray(0, offset));
    buf.shards++;
    buf.fill = 0;
  }
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Moves `from` to `to`, replacing `to`; a crash between the two renames leaves `<to>.old-<pid>` for the next writer. */
function replaceDir(from: string, to: string): void {
  if (!existsSync(to)) {
    renameSync(from, to);
    return;
  }
  const old = `${to}.old-${process.pid}`;
  rmSync(old, { recursive: true, force: true });
  renameSync(to, old);
  try {
    renameSync(from, to);
  } catch (err) {
    renameSync(old, to);
    throw err;
  }
  rmSync(old, { recursive: true, force: true });
}

/**
 * Cleans up after writers that were killed (their process is gone): removes `<path>.partial-<pid>`, and removes
 * `<path>.old-<pid>`, or moves it back when the writer died between its two renames and left no store at `path`.
 */
function removeAbandonedWrites(path: string): void {
  const dir = dirname(path);
  const name = basename(path);
  for (const entry of readdirSync(dir).sort()) {
    if (!entry.startsWith(`${name}.`)) continue;
    const match = /^\.(partial|old)-(\d+)$/.exec(entry.slice(name.length));
    if (!match || processAlive(Number(match[2])) || !statSync(join(dir, entry)).isDirectory()) continue;
    if (match[1] === 'old' && !existsSync(path)) renameSync(join(dir, entry), path);
    else rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

/** The meta of the store at `path`, or why there is none that a re-run could keep. */
export function storedMeta(path: string): { meta?: RecordMeta; reason?: string } {
  if (!existsSync(path)) return {};
  try {
    const store = RecordStore.open(path);
    try {
      return { meta: store.meta };
    } finally {
      store.close();
    }
  } catch (err) {
    if (err instanceof RecordError || err instanceof DamagedStoreError) return { reason: err.message };
    throw err;
  }
}
