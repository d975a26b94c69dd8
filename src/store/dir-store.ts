/**
 * A snapshot store in a shared directory, how the paper's groups exchanged checkpoints: for groups in different
 * processes or on different machines (NFS and the like).
 *
 * Layout: `<root>/group-0003/step-000000001200.snap`, each file one wire record (see snapshot.ts). A file is
 * written under a temporary name, fsync'd, then renamed into place, so readers see whole files or none. Headers
 * come from each file's first bytes, so `list`/`latest` never read bodies; steps come from file names alone.
 *
 * `putMany` publishes one file per group: the files appear one by one, not at once. A reader that needs a step
 * every group has (resume) asks `latestCommonStep`; prune with keep >= 2 so a complete older step survives a
 * writer that dies between renames.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkCount,
  checkPlace,
  decodeSnapshot,
  encodeRecord,
  describeSnapshots,
  writeError,
  newestCommonStep,
  decodeSnapshotHeader,
  SnapshotError,
  type Snapshot,
  type SnapshotHeader,
  type SnapshotInput,
  type SnapshotStore,
} from './snapshot.js';

const GROUP_DIR = /^group-(\d+)$/;
const STEP_FILE = /^step-(\d+)\.snap$/;
const TEMP_FILE = /^\.step-\d+\.snap\..+\.tmp$/;
/** A temp file this old belongs to a writer that died: no write takes an hour. */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** Bytes read first for a header; a header (tensor table plus resolved config) rarely exceeds this. */
const HEAD_READ = 64 * 1024;

const groupDir = (group: number): string => `group-${String(group).padStart(4, '0')}`;
const stepFile = (step: number): string => `step-${String(step).padStart(12, '0')}.snap`;

const isMissing = (e: unknown): boolean => (e as { code?: unknown } | undefined)?.code === 'ENOENT';

export class DirSnapshotStore implements SnapshotStore {
  readonly where: string;

  private constructor(readonly root: string) {
    this.where = `dir:${root}`;
    mkdirSync(root, { recursive: true });
  }

  /** Opens (creating if needed) the directory at `root`. */
  static open(root: string): DirSnapshotStore {
    return new DirSnapshotStore(root);
  }

  put(snapshot: SnapshotInput): Promise<SnapshotHeader> {
    return this.putMany([snapshot]).then(([header]) => header);
  }

  async putMany(snapshots: readonly SnapshotInput[]): Promise<SnapshotHeader[]> {
    const encoded = snapshots.map(encodeRecord);
    // Write and fsync every temp file before publishing any: a failed write publishes nothing.
    const staged: { temp: string; final: string; dir: string }[] = [];
    try {
      for (const { bytes, header } of encoded) {
        const dir = join(this.root, groupDir(header.group));
        const name = stepFile(header.step);
        const temp = join(dir, `.${name}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
        await mkdir(dir, { recursive: true });
        staged.push({ temp, final: join(dir, name), dir });
        await writeDurably(temp, bytes);
      }
    } catch (e) {
      await Promise.all(staged.map(({ temp }) => rm(temp, { force: true })));
      throw writeError(e, this.where, describeSnapshots(encoded));
    }
    for (const { temp, final } of staged) await rename(temp, final);
    for (const dir of new Set(staged.map((s) => s.dir))) await syncDir(dir);
    return encoded.map((x) => x.header);
  }

  async latest(group: number): Promise<SnapshotHeader | undefined> {
    const steps = await this.steps(group);
    // Newest first; a file pruned since the listing is skipped.
    for (let i = steps.length - 1; i >= 0; i--) {
      const header = await this.header(group, steps[i]);
      if (header) return header;
    }
    return undefined;
  }

  async get(group: number, step: number): Promise<Snapshot | undefined> {
    checkCount('group', group, this.where);
    const file = this.file(group, step);
    let bytes: Buffer;
    try {
      bytes = await readFile(file); // a buffer of its own, offset 0: the tensors view it without a copy
    } catch (e) {
      if (isMissing(e)) return undefined; // never written, or pruned meanwhile
      throw new SnapshotError('io', `${this.label(group, step)}: cannot read (${(e as Error).message})`, { cause: e });
    }
    const snapshot = decodeSnapshot(bytes, this.label(group, step));
    checkPlace(snapshot.header, group, step, this.label(group, step));
    return snapshot;
  }

  async list(group?: number): Promise<SnapshotHeader[]> {
    const groups = group === undefined ? await this.groups() : [group];
    const headers: SnapshotHeader[] = [];
    for (const g of groups) {
      for (const step of await this.steps(g)) {
        const h = await this.header(g, step);
        if (h) headers.push(h);
      }
    }
    return headers;
  }

  async latestCommonStep(groupCount: number): Promise<number | undefined> {
    checkCount('groupCount', groupCount, this.where);
    const steps: number[][] = [];
    for (let g = 0; g < groupCount; g++) steps.push(await this.steps(g));
    return newestCommonStep(steps);
  }

  async prune(group: number, keep: number): Promise<number> {
    checkCount('keep', keep, this.where);
    const steps = await this.steps(group);
    const doomed = steps.slice(0, Math.max(0, steps.length - keep));
    for (const step of doomed) await rm(this.file(group, step), { force: true });
    await this.removeStaleTemps(group);
    return doomed.length;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  private file(group: number, step: number): string {
    return join(this.root, groupDir(group), stepFile(step));
  }

  /** Group numbers that have a directory, ascending. */
  private async groups(): Promise<number[]> {
    const names = await readdir(this.root);
    return names.flatMap((n) => GROUP_DIR.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
  }

  /** Steps of `group` from the file names, ascending. */
  private async steps(group: number): Promise<number[]> {
    checkCount('group', group, this.where);
    let names: string[];
    try {
      names = await readdir(join(this.root, groupDir(group)));
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    return names.flatMap((n) => STEP_FILE.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
  }

  /** Reads just enough of a file for its header; undefined if the file vanished (pruned by its writer). */
  private async header(group: number, step: number): Promise<SnapshotHeader | undefined> {
    const file = this.file(group, step);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
    try {
      const size = (await handle.stat()).size;
      for (let want = Math.min(HEAD_READ, size); ; want = Math.min(want * 4, size)) {
        const bytes = Buffer.allocUnsafe(want);
        const { bytesRead } = await handle.read(bytes, 0, want, 0);
        try {
          const header = decodeSnapshotHeader(bytes.subarray(0, bytesRead), this.label(group, step));
          checkPlace(header, group, step, this.label(group, step));
          return header;
        } catch (e) {
          // A header longer than what was read: read more, up to the whole file.
          if (!(e instanceof SnapshotError && e.kind === 'truncated' && want < size)) throw e;
        }
      }
    } finally {
      await handle.close();
    }
  }

  /** Names a snapshot in messages: the store's address and the file's place in it. */
  private label(group: number, step: number): string {
    return `${this.where}/${groupDir(group)}/${stepFile(step)}`;
  }

  private async removeStaleTemps(group: number): Promise<void> {
    const dir = join(this.root, groupDir(group));
    const names = await readdir(dir).catch((e: unknown) => (isMissing(e) ? [] : Promise.reject(e)));
    for (const name of names.filter((n) => TEMP_FILE.test(n))) {
      const file = join(dir, name);
      const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_TEMP_MS) await rm(file, { force: true });
    }
  }
}

async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename durable: the directory entry is only on disk once the directory itself is synced. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync there
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
