/**
 * Snapshot stores behind one address:
 *
 *   lmdb:PATH (or a plain PATH)       the embedded LMDB store, shared by the processes of one machine
 *   file:PATH (or the alias dir:PATH) a shared directory (NFS and the like), one file per snapshot
 *   s3://BUCKET/PREFIX?endpoint=...   an S3-compatible object store (parameters in s3-store.ts)
 *
 * Beside its snapshots an address holds small named text records (a run's config, written once) and sub-stores
 * (`childAddress`), so one address can name everything a run keeps.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirSnapshotStore, putFileOnce, readFileRecord, replaceFile } from './dir-store.js';
import { LmdbSnapshotStore } from './lmdb-store.js';
import { S3SnapshotStore } from './s3-store.js';
import { SnapshotError, type SnapshotStore } from './snapshot.js';

export * from './snapshot.js';
export { DirSnapshotStore } from './dir-store.js';
export { LmdbSnapshotStore } from './lmdb-store.js';
export { S3SnapshotStore, parseS3Address, type S3Address } from './s3-store.js';

// Two or more letters, so a Windows drive (`C:\runs`) reads as a plain path.
const SCHEME = /^([a-z][a-z0-9+.-]+):(.*)$/i;

/** An address taken apart: a local path for lmdb and file stores, the whole address for s3. */
type Parsed =
  | { scheme: 'lmdb'; path: string }
  | { scheme: 'file' | 'dir'; path: string }
  | { scheme: 's3'; uri: string };

function parse(uri: string): Parsed {
  const m = SCHEME.exec(uri);
  const [scheme, rest] = m ? [m[1].toLowerCase(), m[2]] : ['lmdb', uri];
  if (!rest) throw new SnapshotError('invalid', `snapshot store "${uri}" names no path`);
  switch (scheme) {
    case 'lmdb':
      return { scheme, path: rest };
    case 'file':
    case 'dir':
      return { scheme, path: rest.startsWith('//') ? localPathOfUrl(uri, rest) : rest };
    case 's3':
      return { scheme, uri }; // S3SnapshotStore.open checks the rest
    default:
      throw new SnapshotError(
        'invalid',
        `snapshot store "${uri}": unknown scheme "${scheme}:" (use lmdb:PATH, file:PATH or s3://BUCKET/PREFIX)`,
      );
  }
}

/** `file:///abs/path`, the URL form, as a path. */
function localPathOfUrl(uri: string, rest: string): string {
  try {
    return fileURLToPath(`file:${rest}`);
  } catch (e) {
    throw new SnapshotError('invalid', `snapshot store "${uri}": ${(e as Error).message}`, { cause: e });
  }
}

/** A record or sub-store name: one path segment. */
function checkName(name: string, uri: string): void {
  if (!name || name === '.' || name === '..' || /[/\\?#]/.test(name)) {
    throw new SnapshotError('invalid', `snapshot store "${uri}": "${name}" is not a plain name (one path segment)`);
  }
}

export function openSnapshotStore(uri: string): SnapshotStore {
  const p = parse(uri);
  switch (p.scheme) {
    case 'lmdb':
      return LmdbSnapshotStore.open(p.path);
    case 'file':
    case 'dir':
      return DirSnapshotStore.open(p.path, p.scheme);
    case 's3':
      return S3SnapshotStore.open(p.uri);
  }
}

/**
 * The address of a sub-store named `name` under `uri`, of the same kind: `lmdb:/a` -> `lmdb:/a/name`,
 * `file:/a` -> `file:/a/name`, a plain path `/a` -> `lmdb:/a/name`, `s3://bkt/pre?endpoint=x` ->
 * `s3://bkt/pre/name?endpoint=x`.
 */
export function childAddress(uri: string, name: string): string {
  checkName(name, uri);
  const p = parse(uri);
  if (p.scheme !== 's3') return `${p.scheme}:${join(p.path, name)}`;
  const q = p.uri.indexOf('?');
  const [path, query] = q < 0 ? [p.uri, ''] : [p.uri.slice(0, q), p.uri.slice(q)];
  return `${path.replace(/\/+$/, '')}/${name}${query}`;
}

/**
 * Stores the small UTF-8 record `text` (a run's config as JSON) as `name` under `uri` unless one is there, and
 * returns the text stored there afterwards: ours, or the one that was there first. For lmdb and file addresses it
 * is the file `PATH/name`, created atomically (see `putFileOnce`); for s3, the object `PREFIX/name` written with
 * `If-None-Match: *` (see `S3SnapshotStore.putTextOnce` for servers that ignore it).
 */
export async function putRecordOnce(uri: string, name: string, text: string): Promise<string> {
  checkName(name, uri);
  const p = parse(uri);
  if (p.scheme !== 's3') return putFileOnce(p.path, name, text, `${p.scheme}:${p.path}`);
  const store = S3SnapshotStore.open(p.uri);
  try {
    return await store.putTextOnce(name, text);
  } finally {
    await store.close();
  }
}

/** Stores the record `name` under `uri`, replacing the one there: a reader sees the old text or the new, never a mix. */
export async function writeRecord(uri: string, name: string, text: string): Promise<void> {
  checkName(name, uri);
  const p = parse(uri);
  if (p.scheme !== 's3') return replaceFile(p.path, name, text, `${p.scheme}:${p.path}`);
  const store = S3SnapshotStore.open(p.uri);
  try {
    await store.writeText(name, text);
  } finally {
    await store.close();
  }
}

/** The record `name` under `uri` (see `putRecordOnce`), or undefined when there is none. */
export async function readRecord(uri: string, name: string): Promise<string | undefined> {
  checkName(name, uri);
  const p = parse(uri);
  if (p.scheme !== 's3') return readFileRecord(p.path, name, `${p.scheme}:${p.path}`);
  const store = S3SnapshotStore.open(p.uri);
  try {
    return await store.readText(name);
  } finally {
    await store.close();
  }
}
