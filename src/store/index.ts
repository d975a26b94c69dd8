/**
 * Snapshot stores behind one address: `lmdb:path` (or a plain path) for the embedded LMDB store, `dir:path` for a
 * shared directory. An object store (S3) will be one more scheme behind the same `SnapshotStore` interface.
 */
import { DirSnapshotStore } from './dir-store.js';
import { LmdbSnapshotStore } from './lmdb-store.js';
import { SnapshotError, type SnapshotStore } from './snapshot.js';

export * from './snapshot.js';
export { DirSnapshotStore } from './dir-store.js';
export { LmdbSnapshotStore } from './lmdb-store.js';

// Two or more letters, so a Windows drive (`C:\runs`) reads as a plain path.
const SCHEME = /^([a-z][a-z0-9+.-]+):(.*)$/i;

export function openSnapshotStore(uri: string): SnapshotStore {
  const m = SCHEME.exec(uri);
  const [scheme, path] = m ? [m[1].toLowerCase(), m[2]] : ['lmdb', uri];
  if (!path) throw new SnapshotError('invalid', `snapshot store "${uri}" names no path`);
  switch (scheme) {
    case 'lmdb':
      return LmdbSnapshotStore.open(path);
    case 'dir':
      return DirSnapshotStore.open(path);
    default:
      throw new SnapshotError(
        'invalid',
        `snapshot store "${uri}": unknown scheme "${scheme}:" (use lmdb:PATH or dir:PATH)`,
      );
  }
}
