/**
 * A snapshot store in a shared directory, how the paper's groups exchanged checkpoints: for groups in different
 * processes or on different machines (NFS and the like). Its address is `file:PATH` (`dir:PATH` is an alias).
 *
 * Layout: `<root>/group-0003/step-000000001200.snap`, each file one wire record (see snapshot.ts). A file is
 * written under a temporary name, fsync'd, then renamed into place, so readers see whole files or none. Headers
 * come from each file's first bytes, so `list`/`latest` never read bodies; steps come from file names alone.
 *
 * `putMany` publishes one file per group: the files appear one by one, not at once. A reader that needs a step
 * every group has (resume) asks `latestCommonStep`; prune with keep >= 2 (or protect that step) so a complete
 * older step survives a writer that dies between renames.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkCount,
  checkPlace,
  decodeSnapshot,
  encodeRecord,
  describeSnapshots,
  writeError,
  newestCommonStep,
  groupFolder,
  groupOfFolder,
  readStoredHead,
  stepFileName,
  stepOfFileName,
  stepsToPrune,
  SnapshotError,
  STALE_WRITE_MS,
  type Snapshot,
  type SnapshotHeader,
  type SnapshotInput,
  type SnapshotStore,
} from './snapshot.js';
import { killPoint, writePoint } from '../util/kill-point.js';

const TEMP_FILE = /^\.step-\d+\.snap\..+\.tmp$/;

const isMissing = (e: unknown): boolean => (e as { code?: unknown } | undefined)?.code === 'ENOENT';

/** A name for a temp file beside `name` that no other writer (process or machine) picks. */
const tempName = (name: string): string => `.${name}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;

export class DirSnapshotStore implements SnapshotStore {
  readonly where: string;

  private constructor(
    readonly root: string,
    scheme: string,
  ) {
    this.where = `${scheme}:${root}`;
    mkdirSync(root, { recursive: true });
  }

  /**
   * Opens (creating if needed) the directory at `root`. `scheme` is how the address named it, so that `where`
   * (and every message) repeats the address the caller gave: `file`, or the older alias `dir`.
   */
  static open(root: string, scheme: 'file' | 'dir' = 'file'): DirSnapshotStore {
    return new DirSnapshotStore(root, scheme);
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
        const dir = join(this.root, groupFolder(header.group));
        const name = stepFileName(header.step);
        const temp = join(dir, tempName(name));
        await mkdir(dir, { recursive: true });
        staged.push({ temp, final: join(dir, name), dir });
        await writeDurably(temp, bytes);
      }
    } catch (e) {
      await Promise.all(staged.map(({ temp }) => rm(temp, { force: true })));
      const bytes = encoded.reduce((n, x) => n + x.bytes.byteLength, 0);
      throw writeError(e, this.where, describeSnapshots(encoded), { bytes });
    }
    // The fault-injection suite's power cut between writing a snapshot and publishing it.
    const kill = writePoint(this.root);
    if (kill) for (const { header } of encoded) killPoint(kill, header.step);
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

  async prune(group: number, keep: number, protect?: number): Promise<number> {
    const doomed = stepsToPrune(await this.steps(group), keep, protect, this.where);
    for (const step of doomed) await rm(this.file(group, step), { force: true });
    await this.removeStaleTemps(group);
    return doomed.length;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  private file(group: number, step: number): string {
    return join(this.root, groupFolder(group), stepFileName(step));
  }

  /** Group numbers that have a directory, ascending. */
  private async groups(): Promise<number[]> {
    const names = await readdir(this.root);
    return names.flatMap((n) => groupOfFolder(n) ?? []).sort((a, b) => a - b);
  }

  /** Steps of `group` from the file names, ascending. */
  private async steps(group: number): Promise<number[]> {
    checkCount('group', group, this.where);
    let names: string[];
    try {
      names = await readdir(join(this.root, groupFolder(group)));
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
    return names.flatMap((n) => stepOfFileName(n) ?? []).sort((a, b) => a - b);
  }

  /** Reads just enough of a file for its header; undefined if the file vanished (pruned by its writer). */
  private async header(group: number, step: number): Promise<SnapshotHeader | undefined> {
    const handle = await open(this.file(group, step), 'r').catch((e: unknown) =>
      isMissing(e) ? undefined : Promise.reject(e),
    );
    if (!handle) return undefined;
    try {
      const label = this.label(group, step);
      const read = async (length: number): Promise<Uint8Array> => {
        const bytes = Buffer.allocUnsafe(length);
        return bytes.subarray(0, (await handle.read(bytes, 0, length, 0)).bytesRead);
      };
      const { header } = await readStoredHead(read, label);
      checkPlace(header, group, step, label);
      return header;
    } finally {
      await handle.close();
    }
  }

  /** Names a snapshot in messages: the store's address and the file's place in it. */
  private label(group: number, step: number): string {
    return `${this.where}/${groupFolder(group)}/${stepFileName(step)}`;
  }

  private async removeStaleTemps(group: number): Promise<void> {
    const dir = join(this.root, groupFolder(group));
    const names = await readdir(dir).catch((e: unknown) => (isMissing(e) ? [] : Promise.reject(e)));
    for (const name of names.filter((n) => TEMP_FILE.test(n))) {
      const file = join(dir, name);
      const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_WRITE_MS) await rm(file, { force: true });
    }
  }
}

/** Writes `bytes` as `file` and fsyncs it: on disk when this resolves. */
export async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
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

/**
 * Stores `text` as the file `<dir>/<name>` unless that file exists, and returns the file's text afterwards: ours, or
 * what another writer stored first. The text goes to a temp file, fsync'd, which is then hard-linked to the final
 * name: `link` fails with EEXIST when the name is taken, atomically even on NFS (unlike an O_EXCL open there), and
 * a reader never sees a partly written file. `dir` is created if needed; errors name `where` (the store's address).
 */
export async function putFileOnce(dir: string, name: string, text: string, where: string): Promise<string> {
  const final = join(dir, name);
  const temp = join(dir, tempName(name));
  try {
    await mkdir(dir, { recursive: true });
    await writeDurably(temp, Buffer.from(text, 'utf8'));
    try {
      await link(temp, final);
      await syncDir(dir);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'EEXIST') throw e;
    }
  } catch (e) {
    throw writeError(e, where, name, { bytes: Buffer.byteLength(text, 'utf8') });
  } finally {
    await rm(temp, { force: true });
  }
  return (await readFileRecord(dir, name, where))!;
}

/** Stores `text` as the file `<dir>/<name>`, replacing what is there: temp file, fsync, rename, so never half written. */
export async function replaceFile(dir: string, name: string, text: string, where: string): Promise<void> {
  const temp = join(dir, tempName(name));
  try {
    await mkdir(dir, { recursive: true });
    await writeDurably(temp, Buffer.from(text, 'utf8'));
    await rename(temp, join(dir, name));
    await syncDir(dir);
  } catch (e) {
    await rm(temp, { force: true });
    throw writeError(e, where, name, { bytes: Buffer.byteLength(text, 'utf8') });
  }
}

/** The text of the file `<dir>/<name>`, or undefined when there is none; errors name `where`. */
export async function readFileRecord(dir: string, name: string, where: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw new SnapshotError('io', `${where}: cannot read ${name} (${(e as Error).message})`, { cause: e });
  }
}
