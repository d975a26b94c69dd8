/**
 * The embedded snapshot store: an LMDB environment (a directory), shareable by the processes of one machine.
 *
 * Layout:
 *   db "records"  key [group, step] -> the wire record (see snapshot.ts), byte for byte
 *   db "heads"    key [group, step] -> the record's first bytes (array marker, header, header check)
 * Array keys sort numerically by (group, step). `list`/`latest` read only "heads"; a write puts both in one
 * transaction, so a reader never sees a head without its record.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { checkLmdbEnvironment } from './lmdb-check.js';
import {
  checkCount,
  checkPlace,
  decodeSnapshot,
  decodeSnapshotHeader,
  encodeRecord,
  describeSnapshots,
  writeError,
  newestCommonStep,
  stepsToPrune,
  type Snapshot,
  type SnapshotHeader,
  type SnapshotInput,
  type SnapshotStore,
} from './snapshot.js';
import { killPoint, writePoint } from '../util/kill-point.js';

type Key = [group: number, step: number];

export class LmdbSnapshotStore implements SnapshotStore {
  readonly where: string;
  private readonly env: RootDatabase;
  private readonly records: Database<Buffer, Key>;
  private readonly heads: Database<Buffer, Key>;

  private constructor(readonly path: string) {
    this.where = `lmdb:${path}`;
    // A damaged data file would crash the process inside lmdb-js: refused first, with a DamagedStoreError. The
    // check follows lmdb-js' own rule for where the file is (a path with an extension is the data file itself).
    checkLmdbEnvironment(path);
    // Records are already compact float bytes: compression would cost time for nothing.
    this.env = open({ path, compression: false, maxDbs: 4 });
    this.records = this.env.openDB<Buffer, Key>({ name: 'records', encoding: 'binary' });
    this.heads = this.env.openDB<Buffer, Key>({ name: 'heads', encoding: 'binary' });
  }

  /** Opens (creating if needed) the environment directory at `path`. */
  static open(path: string): LmdbSnapshotStore {
    return new LmdbSnapshotStore(path);
  }

  put(snapshot: SnapshotInput): Promise<SnapshotHeader> {
    return this.putMany([snapshot]).then(([header]) => header);
  }

  async putMany(snapshots: readonly SnapshotInput[]): Promise<SnapshotHeader[]> {
    const encoded = snapshots.map(encodeRecord);
    const needed = encoded.reduce((n, x) => n + x.bytes.byteLength, 0);
    const kill = writePoint(this.path);
    this.write(describeSnapshots(encoded), () => {
      for (const { bytes, header, headLength } of encoded) {
        const key: Key = [header.group, header.step];
        this.records.putSync(key, bytes as Buffer);
        // The fault-injection suite's power cut in the middle of a write: the transaction never commits.
        if (kill) killPoint(kill, header.step);
        this.heads.putSync(key, bytes.subarray(0, headLength) as Buffer);
      }
    }, needed);
    // Committed (visible to readers) above; resolve once it is on disk too, like the directory store's fsync.
    await this.env.flushed;
    return encoded.map((x) => x.header);
  }

  async latest(group: number): Promise<SnapshotHeader | undefined> {
    checkCount('group', group, this.where);
    this.refresh();
    for (const { key, value } of this.heads.getRange({ start: [group + 1], end: [group], reverse: true, limit: 1 })) {
      return this.header(key, value);
    }
    return undefined;
  }

  async get(group: number, step: number): Promise<Snapshot | undefined> {
    checkCount('group', group, this.where);
    this.refresh();
    // getBinary copies out of the map: the arrays returned are the caller's own, unchanged by later writes.
    const bytes = this.records.getBinary([group, step]);
    if (!bytes) return undefined;
    const where = `${this.where} group ${group} step ${step}`;
    const snapshot = decodeSnapshot(bytes, where);
    checkPlace(snapshot.header, group, step, where);
    return snapshot;
  }

  async list(group?: number): Promise<SnapshotHeader[]> {
    if (group !== undefined) checkCount('group', group, this.where);
    this.refresh();
    const range = group === undefined ? {} : { start: [group], end: [group + 1] };
    return this.heads.getRange(range).map(({ key, value }) => this.header(key, value)).asArray;
  }

  async latestCommonStep(groupCount: number): Promise<number | undefined> {
    checkCount('groupCount', groupCount, this.where);
    this.refresh();
    const steps: number[][] = Array.from({ length: groupCount }, () => []);
    for (const [group, step] of this.heads.getKeys()) if (group < groupCount) steps[group].push(step);
    return newestCommonStep(steps);
  }

  async prune(group: number, keep: number, protect?: number): Promise<number> {
    checkCount('group', group, this.where);
    this.refresh();
    const steps = Array.from(this.heads.getKeys({ start: [group], end: [group + 1] }), ([, step]) => step);
    const doomed = stepsToPrune(steps, keep, protect, this.where);
    if (doomed.length === 0) return 0;
    this.write(`pruning group ${group}`, () => {
      for (const step of doomed) {
        this.records.removeSync([group, step]);
        this.heads.removeSync([group, step]);
      }
    });
    return doomed.length;
  }

  async close(): Promise<void> {
    await this.env.close();
  }

  /**
   * Reads see the newest commit, whichever process made it. lmdb-js keeps one read transaction per event-loop
   * turn and renews it on a timer, so without this a teacher polling `latest` right after another group's write
   * could be handed the snapshot before.
   */
  private refresh(): void {
    this.env.resetReadTxn();
  }

  /**
   * One synchronous transaction. Not the async `transaction`: when an async commit fails (a full disk), lmdb-js 3.5
   * also rejects an internal promise nobody can handle, and the unhandled rejection ends the process. A
   * synchronous commit fails by throwing, and nothing else.
   */
  private write(what: string, body: () => void, bytes?: number): void {
    try {
      this.env.transactionSync(body);
    } catch (e) {
      throw writeError(e, this.where, what, { eioIsFull: true, bytes });
    }
  }

  private header(key: Key, head: Buffer): SnapshotHeader {
    return decodeSnapshotHeader(head, `${this.where} group ${key[0]} step ${key[1]}`);
  }
}

