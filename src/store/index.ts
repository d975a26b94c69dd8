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
 * A small UTF-8 record (a run's config as JSON) named `name` under `uri`: for lmdb and file addresses the file
 * `PATH/name`, for s3 the object `PREFIX/name`. `files` does it on a directory, `s3` on the object store.
 */
async function onRecord<T>(
  uri: string,
  name: string,
  files: (dir: string, where: string) => Promise<T>,
  s3: (store: S3SnapshotStore) => Promise<T>,
): Promise<T> {
  checkName(name, uri);
  const p = parse(uri);
  if (p.scheme !== 's3') return files(p.path, `${p.scheme}:${p.path}`);
  const store = S3SnapshotStore.open(p.uri);
  try {
    return await s3(store);
  } finally {
    await store.close();
  }
}

/**
 * Stores the record `text` as `name` under `uri` unless one is there, and returns the text stored there
 * afterwards: ours, or the one that was there first. A file is created atomically (see `putFileOnce`); an object
 * is written with `If-None-Match: *` (see `S3SnapshotStore.putTextOnce` for servers that ignore it).
 */
export function putRecordOnce(uri: string, name: string, text: string): Promise<string> {
  return onRecord(uri, name, (dir, where) => putFileOnce(dir, name, text, where), (s) => s.putTextOnce(name, text));
}

/** Stores the record `name` under `uri`, replacing the one there: a reader sees the old text or the new, never a mix. */
export function writeRecord(uri: string, name: string, text: string): Promise<void> {
  return onRecord(uri, name, (dir, where) => replaceFile(dir, name, text, where), (s) => s.writeText(name, text));
}

/** The record `name` under `uri` (see `putRecordOnce`), or undefined when there is none. */
export function readRecord(uri: string, name: string): Promise<string | undefined> {
  return onRecord(uri, name, (dir, where) => readFileRecord(dir, name, where), (s) => s.readText(name));
}
