/**
 * Snapshots: one group's complete state at one step (weights, optimizer slots, data cursor, RNG state, config),
 * their wire format, and the `SnapshotStore` interface every backend (LMDB, shared directory, object store) implements.
 *
 * Wire format, version 1: ONE MessagePack value, a 4-element array, so any msgpack reader can open it:
 *
 *   0x94                      fixarray(4)
 *   header                    map: SnapshotHeader (format, version, group, step, shapes, dtypes, body checksum, extra)
 *   0xce u32                  XXH32 of the header's msgpack bytes (so no byte of the record goes unchecked)
 *   0xc4 n, n zero bytes      padding (n < 8) that puts the body at an 8-aligned offset of the record
 *   0xc6 u32, body            all tensor bytes, little-endian, each tensor at an 8-aligned `byteOffset`
 *
 * The same bytes go into every store and across processes. A record read into a buffer of its own (LMDB
 * `getBinary`, `readFile`) starts 8-aligned, so decoding views the tensors in place; otherwise it copies the body
 * once. Every version starts with `0x94` and the header map, so a reader can name a version it does not know.
 */
import { endianness } from 'node:os';
import { Packr, Unpackr } from 'msgpackr';

export const SNAPSHOT_FORMAT = 'codistill-snapshot';
export const SNAPSHOT_FORMAT_VERSION = 1;

export type TensorDtype = 'float32' | 'int32';

/** One tensor by name: weights are `weights/...`, optimizer slots `optimizer/...`. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Where one tensor's bytes lie in the body. */
export interface SnapshotEntry {
  name: string;
  shape: number[];
  dtype: TensorDtype;
  byteOffset: number;
  byteLength: number;
}

export interface SnapshotHeader {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  runId: string;
  group: number;
  step: number;
  /** The workload kind that can load these tensors (e.g. 'lm'). */
  model: string;
  /** ISO 8601. */
  createdAt: string;
  /** `xxh32:` + 8 hex digits: XXH32 of the body: equal checksums mean (almost surely) equal weights. */
  checksum: string;
  entries: SnapshotEntry[];
  /** JSON-able state beside the tensors: optimizer step count, data cursor, RNG state, the resolved config. */
  extra: Record<string, unknown>;
}

/**
 * A decoded snapshot. All `tensors[i].data` are views of ONE buffer (the record): transferring
 * `tensors[0].data.buffer` to another thread moves the whole snapshot.
 */
export interface Snapshot {
  header: SnapshotHeader;
  tensors: NamedArray[];
}

/** What a writer supplies: format, entries and checksum are derived from the tensors; createdAt defaults to now. */
export interface SnapshotInput {
  header: Pick<SnapshotHeader, 'runId' | 'group' | 'step' | 'model'> & {
    createdAt?: string;
    extra?: Record<string, unknown>;
  };
  tensors: NamedArray[];
}

export interface SnapshotStore {
  /** The store's address, as `openSnapshotStore` takes it (used in error messages). */
  readonly where: string;
  /** Writes one snapshot atomically (replacing one at the same group and step); returns its header. */
  put(snapshot: SnapshotInput): Promise<SnapshotHeader>;
  /** Writes several (a checkpoint of every group) together: one transaction where the backend has them. */
  putMany(snapshots: readonly SnapshotInput[]): Promise<SnapshotHeader[]>;
  /** Header of the newest snapshot of `group`, without reading its body. */
  latest(group: number): Promise<SnapshotHeader | undefined>;
  /** A private copy: the caller may keep, modify or transfer its arrays. */
  get(group: number, step: number): Promise<Snapshot | undefined>;
  /** Headers sorted by (group, step), without reading bodies. */
  list(group?: number): Promise<SnapshotHeader[]>;
  /** The newest step that every group 0..groupCount-1 has a snapshot of: where a resume starts. */
  latestCommonStep(groupCount: number): Promise<number | undefined>;
  /**
   * Deletes all but the `keep` newest snapshots of `group`, never the one at step `protect` when given (a checkpoint
   * writer protects the newest step every group has, so a resume point survives groups that drift apart); returns
   * how many it deleted.
   */
  prune(group: number, keep: number, protect?: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * - corrupt / truncated / foreign / version: the bytes are not a snapshot this code can trust.
 * - full: the disk (or LMDB map) has no room; snapshots committed before are intact.
 * - invalid: the caller passed something that cannot be a snapshot or a store address.
 * - io: any other storage failure.
 */
export type SnapshotErrorKind = 'corrupt' | 'truncated' | 'foreign' | 'version' | 'full' | 'invalid' | 'io';

export class SnapshotError extends Error {
  override name = 'SnapshotError';
  constructor(
    readonly kind: SnapshotErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// Fixed framing bytes (see the file comment).
const ARRAY4 = 0x94;
const UINT32 = 0xce;
const BIN8 = 0xc4;
const BIN32 = 0xc6;
const ALIGN = 8;

// useRecords: false keeps the header a plain msgpack map that any reader decodes; 64-bit integers come back as
// numbers (steps stay far below 2^53).
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;
const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
const round = (acc: number, word: number): number => Math.imul(rotl((acc + Math.imul(word, P2)) | 0, 13), P1);

/**
 * XXH32 (seed 0), the standard xxHash: any xxhash tool reproduces a snapshot's checksum. Its four lanes run at
 * 5-8 GB/s here against about 2 GB/s for crypto sha1, and every round is a bijection, so a change to any single
 * 32-bit word is always detected. Plain FNV-1a is as fast over words but blind to bit-31 flips that pair up in a lane.
 */
export function xxh32(bytes: Uint8Array): number {
  const len = bytes.length;
  const src = bytes.byteOffset & 3 ? new Uint8Array(bytes) : bytes; // word reads need 4-alignment: copy (headers only)
  const w = new Uint32Array(src.buffer, src.byteOffset, len >>> 2);
  let i = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (P1 + P2) | 0;
    let v2 = P2;
    let v3 = 0;
    let v4 = -P1 | 0;
    for (const stripes = (len >>> 4) << 2; i < stripes; i += 4) {
      v1 = round(v1, w[i]);
      v2 = round(v2, w[i + 1]);
      v3 = round(v3, w[i + 2]);
      v4 = round(v4, w[i + 3]);
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = P5;
  }
  h = (h + len) | 0;
  for (; i < w.length; i++) h = Math.imul(rotl((h + Math.imul(w[i], P3)) | 0, 17), P4);
  for (let j = i * 4; j < len; j++) h = Math.imul(rotl((h + Math.imul(src[j], P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The body checksum as the header records it. */
export const bodyChecksum = (body: Uint8Array): string => 'xxh32:' + xxh32(body).toString(16).padStart(8, '0');

const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
const elements = (shape: readonly number[]): number => shape.reduce((p, n) => p * n, 1);

function requireLittleEndian(): void {
  // The body is raw typed-array memory, defined as little-endian: a big-endian host would misread every value.
  if (endianness() !== 'LE') throw new SnapshotError('invalid', 'snapshots need a little-endian host');
}

/** An encoded record plus what stores keep beside it. */
export interface EncodedSnapshot {
  bytes: Uint8Array;
  header: SnapshotHeader;
  /** Bytes [0, headLength) hold the array marker, header and header check: enough for `decodeSnapshotHeader`. */
  headLength: number;
}

/** Encodes a snapshot into its wire record (one copy of the tensor bytes). */
export function encodeSnapshot(s: SnapshotInput): Uint8Array {
  return encodeRecord(s).bytes;
}

export function encodeRecord(s: SnapshotInput): EncodedSnapshot {
  requireLittleEndian();
  const { runId, group, step, model } = s.header;
  const what = `snapshot of group ${group} step ${step}`;
  if (!isCount(group) || !isCount(step)) {
    throw new SnapshotError('invalid', `${what}: group and step must be non-negative integers`);
  }
  const entries: SnapshotEntry[] = [];
  const names = new Set<string>();
  let bodyLength = 0;
  for (const t of s.tensors) {
    const invalid = (why: string): never => {
      throw new SnapshotError('invalid', `${what}: tensor "${t.name}" ${why}`);
    };
    const dtype: TensorDtype =
      t.data instanceof Float32Array
        ? 'float32'
        : t.data instanceof Int32Array
          ? 'int32'
          : invalid('is neither a Float32Array nor an Int32Array');
    if (!t.name || names.has(t.name)) invalid('has an empty or repeated name');
    if (!t.shape.every(isCount) || elements(t.shape) !== t.data.length) {
      invalid(`has shape [${t.shape}] but ${t.data.length} values`);
    }
    names.add(t.name);
    entries.push({ name: t.name, shape: [...t.shape], dtype, byteOffset: bodyLength, byteLength: t.data.byteLength });
    bodyLength = alignUp(bodyLength + t.data.byteLength);
  }
  if (bodyLength > 0xffffffff) throw new SnapshotError('invalid', `${what}: over 4 GiB of tensors (the body length is a u32)`);
  const header: SnapshotHeader = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_FORMAT_VERSION,
    runId,
    group,
    step,
    model,
    createdAt: s.header.createdAt ?? new Date().toISOString(),
    checksum: 'xxh32:00000000', // the real value has the same length, so the layout does not move
    entries,
    extra: s.header.extra ?? {},
  };
  const headerLength = packr.pack(header).length;
  const headLength = 1 + headerLength + 5;
  const pad = (ALIGN - ((headLength + 2 + 5) % ALIGN)) % ALIGN;
  const bodyStart = headLength + 2 + pad + 5;

  // allocUnsafeSlow: an ArrayBuffer of its own (offset 0, so the body is 8-aligned) without a zero-fill pass;
  // every byte is written below, the gaps between tensors explicitly zeroed so the bytes are deterministic.
  const bytes = Buffer.allocUnsafeSlow(bodyStart + bodyLength);
  const body = bytes.subarray(bodyStart);
  for (let i = 0; i < entries.length; i++) {
    const { byteOffset, byteLength } = entries[i];
    const data = s.tensors[i].data;
    body.set(new Uint8Array(data.buffer, data.byteOffset, byteLength), byteOffset);
    body.fill(0, byteOffset + byteLength, i + 1 < entries.length ? entries[i + 1].byteOffset : bodyLength);
  }
  header.checksum = bodyChecksum(body);
  const headerBytes = packr.pack(header);
  if (headerBytes.length !== headerLength) throw new Error('snapshot header changed length when its checksum was set');

  bytes[0] = ARRAY4;
  bytes.set(headerBytes, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  bytes[1 + headerLength] = UINT32;
  view.setUint32(2 + headerLength, xxh32(headerBytes));
  bytes[headLength] = BIN8;
  bytes[headLength + 1] = pad;
  bytes.fill(0, headLength + 2, headLength + 2 + pad);
  bytes[bodyStart - 5] = BIN32;
  view.setUint32(bodyStart - 4, bodyLength);
  return { bytes, header, headLength };
}

/**
 * Reads and checks the header from the start of a record: a whole record, its first bytes, or a stored head
 * (bytes [0, headLength)). Throws a SnapshotError naming `where`; kind 'truncated' when more bytes are needed.
 */
export function decodeSnapshotHeader(bytes: Uint8Array, where = 'snapshot'): SnapshotHeader {
  return readHead(bytes, where).header;
}

/** Bytes read first for a header; a header (tensor table plus resolved config) rarely exceeds this. */
const HEAD_READ = 64 * 1024;

/**
 * Reads a stored record's header through `read(length)`, which returns the record's first `length` bytes (fewer
 * when the record is shorter): 64 KiB first, more while the header goes on. Returns the header and the head bytes
 * (array marker, header, header check) that `decodeSnapshotHeader` reads again later.
 */
export async function readStoredHead(
  read: (length: number) => Promise<Uint8Array>,
  where: string,
): Promise<{ header: SnapshotHeader; head: Uint8Array }> {
  for (let want = HEAD_READ; ; want *= 4) {
    const bytes = await read(want);
    try {
      const { header, headLength } = readHead(bytes, where);
      return { header, head: bytes.subarray(0, headLength) };
    } catch (e) {
      // A header longer than what was read: read more, unless that was the whole record.
      if (!(e instanceof SnapshotError && e.kind === 'truncated' && bytes.length === want)) throw e;
    }
  }
}

function readHead(bytes: Uint8Array, where: string): { header: SnapshotHeader; headLength: number } {
  if (bytes.length === 0) throw new SnapshotError('truncated', `${where}: empty record`);
  if (bytes[0] !== ARRAY4) {
    throw new SnapshotError('foreign', `${where}: not a codistill snapshot (first byte 0x${bytes[0].toString(16)})`);
  }
  let header: unknown;
  let headerEnd = 0;
  try {
    // Reads the header map alone (the record's second msgpack value) and where it ends.
    unpackr.unpackMultiple(bytes.subarray(1), (value, _start, end) => {
      header = value;
      headerEnd = 1 + (end as number);
      return false;
    });
  } catch (e) {
    if ((e as { incomplete?: boolean }).incomplete) {
      throw new SnapshotError('truncated', `${where}: record ends inside its header`, { cause: e });
    }
    throw new SnapshotError('corrupt', `${where}: unreadable snapshot header (${(e as Error).message})`, { cause: e });
  }
  const h = header as Partial<SnapshotHeader> | undefined;
  if (!h || typeof h !== 'object' || h.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotError('foreign', `${where}: not a codistill snapshot (no "${SNAPSHOT_FORMAT}" header)`);
  }
  if (h.version !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotError(
      'version',
      `${where}: written in snapshot format version ${String(h.version)}; ` +
        `this codistill reads version ${SNAPSHOT_FORMAT_VERSION}`,
    );
  }
  const headLength = headerEnd + 5;
  if (bytes.length < headLength) throw new SnapshotError('truncated', `${where}: record ends inside its header`);
  const check = new DataView(bytes.buffer, bytes.byteOffset + headerEnd + 1, 4).getUint32(0);
  if (bytes[headerEnd] !== UINT32 || check !== xxh32(bytes.subarray(1, headerEnd))) {
    throw new SnapshotError('corrupt', `${where}: header checksum mismatch (the header bytes are damaged)`);
  }
  checkHeaderShape(h as SnapshotHeader, where);
  return { header: h as SnapshotHeader, headLength };
}

/** Checks the framing after the head (padding, body marker and length); returns where the body starts. */
function locateBody(bytes: Uint8Array, header: SnapshotHeader, headLength: number, where: string): number {
  const damaged = (): never => {
    throw new SnapshotError('corrupt', `${where}: damaged framing after the header`);
  };
  const pad = bytes[headLength + 1];
  const bodyStart = headLength + 2 + pad + 5;
  if (bytes.length < headLength + 2 || bytes.length < bodyStart) {
    throw new SnapshotError('truncated', `${where}: record ends before its body`);
  }
  if (bytes[headLength] !== BIN8 || pad >= ALIGN || bytes[bodyStart - 5] !== BIN32) damaged();
  if (bytes.subarray(headLength + 2, bodyStart - 5).some((x) => x !== 0)) damaged();
  const bodyLength = new DataView(bytes.buffer, bytes.byteOffset + bodyStart - 4, 4).getUint32(0);
  const last = header.entries.at(-1);
  if (bodyLength !== (last ? alignUp(last.byteOffset + last.byteLength) : 0)) {
    throw new SnapshotError('corrupt', `${where}: body length ${bodyLength} does not match the header's tensors`);
  }
  const recordLength = bodyStart + bodyLength;
  if (bytes.length < recordLength) {
    throw new SnapshotError('truncated', `${where}: record is ${bytes.length} bytes, its header says ${recordLength}`);
  }
  if (bytes.length > recordLength) {
    throw new SnapshotError('corrupt', `${where}: ${bytes.length - recordLength} stray bytes after the body`);
  }
  return bodyStart;
}

/** A header whose check passed was written by an encoder; this catches one that was not written by ours. */
function checkHeaderShape(h: SnapshotHeader, where: string): void {
  const bad = (why: string): never => {
    throw new SnapshotError('corrupt', `${where}: malformed snapshot header (${why})`);
  };
  if (!isCount(h.group) || !isCount(h.step)) bad('group/step');
  if (![h.runId, h.model, h.checksum, h.createdAt].every((x) => typeof x === 'string')) bad('string fields');
  if (!Array.isArray(h.entries)) bad('entries');
  let end = 0;
  for (const e of h.entries) {
    const width = e.dtype === 'float32' || e.dtype === 'int32' ? 4 : bad(`dtype of "${e.name}"`);
    if (!Array.isArray(e.shape) || !e.shape.every(isCount)) bad(`shape of "${e.name}"`);
    if (e.byteOffset !== alignUp(end) || e.byteLength !== elements(e.shape) * width) bad(`layout of "${e.name}"`);
    end = e.byteOffset + e.byteLength;
  }
  if (typeof h.extra !== 'object' || h.extra === null) bad('extra');
}

/**
 * Decodes and verifies a record. The tensors view one 8-aligned buffer: `bytes` itself when its body is aligned
 * (so the caller must not reuse `bytes`), else one copy of the body.
 */
export function decodeSnapshot(bytes: Uint8Array, where = 'snapshot'): Snapshot {
  requireLittleEndian();
  const { header, headLength } = readHead(bytes, where);
  let body = bytes.subarray(locateBody(bytes, header, headLength, where));
  if ((body.byteOffset & (ALIGN - 1)) !== 0) body = new Uint8Array(body); // a copy, into a fresh aligned buffer
  const checksum = bodyChecksum(body);
  if (checksum !== header.checksum) {
    const message = `${where}: body checksum ${checksum} does not match the header's ${header.checksum}`;
    throw new SnapshotError('corrupt', message);
  }
  const tensors = header.entries.map(
    (e): NamedArray => ({
      name: e.name,
      shape: e.shape,
      data: new (e.dtype === 'float32' ? Float32Array : Int32Array)(
        body.buffer as ArrayBuffer,
        body.byteOffset + e.byteOffset,
        e.byteLength / 4,
      ),
    }),
  );
  return { header, tensors };
}

/** The newest step present in every list (each list holds one group's steps), or undefined. */
export function newestCommonStep(stepsPerGroup: readonly (readonly number[])[]): number | undefined {
  if (stepsPerGroup.length === 0) return undefined;
  const [first, ...rest] = stepsPerGroup;
  const sets = rest.map((steps) => new Set(steps));
  let best: number | undefined;
  for (const step of first) if ((best === undefined || step > best) && sets.every((s) => s.has(step))) best = step;
  return best;
}

/**
 * Which steps `prune(group, keep, protect)` deletes, given the group's steps in ascending order: all but the `keep`
 * newest, never `protect`. Checks the arguments (naming `where`) first.
 */
export function stepsToPrune(
  steps: readonly number[],
  keep: number,
  protect: number | undefined,
  where: string,
): number[] {
  checkCount('keep', keep, where);
  if (protect !== undefined) checkCount('protect', protect, where);
  return steps.slice(0, Math.max(0, steps.length - keep)).filter((step) => step !== protect);
}

/**
 * Names in the stores that keep one object per snapshot (the shared directory, the object store):
 * `group-0003/step-000000001200.snap`. Zero-padded so names sort as the numbers do.
 */
export const groupFolder = (group: number): string => `group-${String(group).padStart(4, '0')}`;
export const stepFileName = (step: number): string => `step-${String(step).padStart(12, '0')}.snap`;
/** The number in a `groupFolder` name, or undefined for any other name. */
export const groupOfFolder = (name: string): number | undefined => numberIn(/^group-(\d+)$/, name);
/** The number in a `stepFileName` name, or undefined for any other name. */
export const stepOfFileName = (name: string): number | undefined => numberIn(/^step-(\d+)\.snap$/, name);
const numberIn = (pattern: RegExp, name: string): number | undefined => {
  const m = pattern.exec(name);
  return m ? Number(m[1]) : undefined;
};

/**
 * How old a leftover of an unfinished write (a temp file, an object store's record its manifest never named) must be
 * before a prune removes it: no write takes an hour, so its writer died.
 */
export const STALE_WRITE_MS = 60 * 60 * 1000;

/** Argument check shared by the stores: group numbers, step counts, how many to keep. */
export function checkCount(name: string, n: number, where: string): void {
  if (!isCount(n)) throw new SnapshotError('invalid', `${where}: ${name} must be a non-negative integer, not ${n}`);
}

/** A snapshot read from the place of (group, step) that says it is another one is corrupt: shared by the stores. */
export function checkPlace(header: SnapshotHeader, group: number, step: number, where: string): void {
  if (header.group !== group || header.step !== step) {
    throw new SnapshotError('corrupt', `${where}: holds group ${header.group} step ${header.step}`);
  }
}

/** Names the snapshots of a write in messages: `group 0 step 250, group 1 step 250`. */
export function describeSnapshots(headers: readonly { header: SnapshotHeader }[]): string {
  return headers.map((x) => `group ${x.header.group} step ${x.header.step}`).join(', ');
}

/**
 * A clear SnapshotError for a failed write of `what` to the store at `where`: `full` when the storage reports no room
 * (LMDB also reports a short write as EIO, so `eioIsFull` for it), `io` otherwise. Either way what was committed
 * before stays intact. `bytes`, when given, is how much the write needed (the encoded records' length): a `full`
 * message names it, so whoever frees space knows how much is enough:
 *
 *   <where>: no room to write group 0 step 2 (8,388,936 bytes; <cause>, code ENOSPC): the disk is full, or a quota
 *   or file-size limit was hit; the snapshots committed before are intact
 */
export function writeError(
  cause: unknown,
  where: string,
  what: string,
  { eioIsFull = false, bytes }: { eioIsFull?: boolean; bytes?: number } = {},
): SnapshotError {
  const code = (cause as { code?: unknown } | undefined)?.code;
  const detail = `${(cause as Error)?.message ?? String(cause)}${code !== undefined ? `, code ${String(code)}` : ''}`;
  if (isNoRoom(cause) || (eioIsFull && (code === 5 || code === 'EIO'))) {
    const needed = bytes !== undefined ? `${bytes.toLocaleString('en-US')} bytes; ` : '';
    return new SnapshotError(
      'full',
      `${where}: no room to write ${what} (${needed}${detail}): the disk${eioIsFull ? ' or the LMDB map' : ''} is full, ` +
        'or a quota or file-size limit was hit; the snapshots committed before are intact',
      { cause },
    );
  }
  const message = `${where}: writing ${what} failed (${detail}); the snapshots committed before are intact`;
  return new SnapshotError('io', message, { cause });
}

/** Error codes with which a write reports no room: the disk, a quota, a file-size limit, or LMDB's map. */
const NO_ROOM = new Set<unknown>(['ENOSPC', 'EDQUOT', 'EFBIG', 28, 27, 122, -30792]);

export function isNoRoom(e: unknown): boolean {
  return NO_ROOM.has((e as { code?: unknown } | undefined)?.code);
}
