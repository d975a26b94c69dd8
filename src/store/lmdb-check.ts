/**
 * A check of an LMDB environment's data file, made before lmdb-js opens it.
 *
 * Why: lmdb-js maps data.mdb into memory and native code follows the page numbers it finds there. A damaged file
 * then kills the process in native code, where no JavaScript can catch anything: damaged meta pages end it with a
 * segmentation fault, a file cut short with a bus error (pages mapped past the end of the file), with nothing
 * printed. This check reads the few pages that matter with plain reads (never a map), trusts no value it reads, and
 * throws a DamagedStoreError naming the file instead.
 *
 * The layout, as written by the LMDB inside lmdb-js 3.x (its own fork, LMDB 0.9.90, data format version 2),
 * little-endian, confirmed byte by byte on files this project writes:
 *
 *   page header (24 bytes, every page): pgno u64 @0, txnid u64 @8, pad u16 @16, flags u16 @18,
 *                                        lower u16 @20, upper u16 @22   (flags: 1 branch, 2 leaf, 4 overflow, 8 meta)
 *   meta (after the header of page 0 and page 1): magic u32 @24 (0xBEEFC0DE), version u32 @28 (2),
 *        address u64 @32, mapsize u64 @40, the free-page database @48 and the main database @96 (48 bytes each:
 *        pad u32 @0 (in the first: the page size), flags u16 @4, depth u16 @6, branch/leaf/overflow pages and entries
 *        u64 @8..@32, root u64 @40), last_pg u64 @144, txnid u64 @152, boot_id u64 @160
 *
 * The page size is the one recorded in page 0 (the OS page size, 4096 here, when the file was made). What this LMDB
 * does with the meta pages, and so what is checked:
 *   - It needs page 0: without its meta-page flag, magic and version it refuses the file, and lmdb-js dies on that
 *     refusal (seen: a zeroed page 0 ends the process with SIGSEGV even when page 1 is intact). So page 0 must be
 *     intact.
 *   - It takes page 1 by its transaction id alone, never looking at its magic; lmdb-js even rewrites page 1 from
 *     the flushed copy below without its flag or magic, and goes on using it. So page 1 is not judged by its magic:
 *     a page 1 whose transaction id is 0 (zeroed) is never picked, and is fine (LMDB uses page 0 or the flushed
 *     copy, and a reader may miss the last transaction); any other page 1 must hold a sound meta (a garbage page 1
 *     ends a reader with SIGSEGV).
 *   - With overlapping sync (lmdb-js' default for writers) it keeps a third copy, the last flushed transaction's,
 *     from the middle of page 0 (at page size / 2 + 24, without magic or version), takes it when it is the newest,
 *     and may roll back to it or to the older meta page after a restart. So every meta it may pick is checked, not
 *     only the newest: page 0, page 1 unless its transaction id is 0, and the flushed copy unless its transaction
 *     id is 0. Synchronous commits do not update the flushed copy, and the pages of a flushed copy older than both
 *     meta pages may hold other data by now (seen), so a stale copy has only its page size and last_pg checked.
 *   - For each such meta: its page size is page 0's, and the roots of the free-page and main databases (unless
 *     empty, all ones) are pages up to last_pg that lie in the file and hold a branch or leaf page whose header names
 *     that page. The main database's root, when a leaf, holds the named databases (maxDbs): their roots are checked
 *     the same way, one level deeper. In every page read, the children of a branch page and the overflow pages of a
 *     big value must lie within last_pg and within the file.
 *   - A healthy file may be shorter than last_pg pages: pages that a transaction allocated past the end and freed
 *     again before it committed are never written (seen with this lmdb-js: a file of 1040 pages whose meta records
 *     1709). So what must lie in the file is every page the check reaches, not last_pg itself; last_pg may only
 *     run past the end of the file by at most the file's own size or 4 GiB, whichever is more, and never past 64 TiB
 *     (no process can map that much: lmdb-js then dies too).
 *   - An empty data.mdb is what a writer killed between creating the file and writing its first two pages leaves
 *     (lmdb-js writes both meta pages as soon as it creates a file). A writer starts it again as a new environment,
 *     but a read-only open of it crashes: so it is fine for a writer and damage for a reader.
 *
 * A writer in another process may commit while this reads; a failed check is read again when the meta pages have
 * changed since, so only a failure that holds still is reported.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { endianness } from 'node:os';
import { extname, join, resolve } from 'node:path';
import * as lmdb from 'lmdb';

export class DamagedStoreError extends Error {
  override name = 'DamagedStoreError';
  /** The data file (absolute path) that failed the check. */
  readonly file: string;

  constructor(file: string, message: string) {
    super(message);
    this.file = file;
  }
}

export interface LmdbCheckOptions {
  /** As lmdb-js' open option: the path is the data file itself (and the lock file is `<path>-lock`). lmdb-js'
   *  default when unset: a path whose last segment has an extension. */
  noSubdir?: boolean;
  /** The environment is opened read-only (an empty data file is then damage, not a new environment). */
  readOnly?: boolean;
  /** What the user can do, ending the message (default: restore it from a copy, or delete the folder). */
  remedy?: string;
}

const PAGEHDRSZ = 24;
const META_SIZE = 144;
const META_BYTES = PAGEHDRSZ + META_SIZE;
const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_OVERFLOW = 0x04;
const P_META = 0x08;
const P_LEAF2 = 0x20;
const P_SUBP = 0x40;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const NODESIZE = 8;
const DB_SIZE = 48;
const P_INVALID = 0xffff_ffff_ffff_ffffn;
/** Pages 0 and 1 are the meta pages: no database page number is below this. */
const FIRST_DATA_PAGE = 2n;
/** Beyond this a map fails on any 64-bit machine (x86-64 user space is 128 TiB). */
const MAX_MAP_BYTES = 2n ** 46n;
const MAX_TAIL_GAP_BYTES = 4n * 2n ** 30n;
/** Pages read beyond the meta pages, at most; past it, page numbers are still checked against the file. */
const MAX_PAGE_READS = 24;
const ATTEMPTS = 4;

/**
 * Throws a DamagedStoreError when the LMDB environment at `path` (a directory holding data.mdb, or with `noSubdir`
 * the data file itself) would crash lmdb-js or is cut short; returns when it is sound or does not exist yet.
 */
export function checkLmdbEnvironment(path: string, o: LmdbCheckOptions = {}): void {
  // Files are in the host's byte order and this LMDB's layout; on a big-endian host, or an older LMDB (data format 1,
  // another page header), this check cannot read them and leaves it to LMDB.
  if (endianness() !== 'LE' || !isDataVersion2()) return;
  const noSubdir = o.noSubdir ?? Boolean(extname(path));
  const file = resolve(noSubdir ? path : join(path, 'data.mdb'));
  const remedy =
    o.remedy ??
    (noSubdir
      ? '(restore it from a copy, or delete it and its -lock file to start it again)'
      : '(restore it from a copy, or delete the folder to start it again)');
  let fd: number;
  try {
    // Non-blocking, so that a FIFO in its place cannot hang the open; it is refused below.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Nothing there yet: lmdb-js makes a new environment. (ENOTDIR: the path is a file, not a folder, which lmdb-js
    // reports itself with an error, not a crash.)
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw unreadable(file, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new DamagedStoreError(file, `${file} is not a regular file (it is ${kindOf(st)}) ${remedy}`);
    }
    for (let attempt = 1; ; attempt++) {
      const r = inspect(fd, file, o.readOnly === true);
      if (r.problem === undefined) return;
      // The meta pages unchanged since this pass began: the failure is the file's, not a commit's in between.
      if (stamp(fd) === r.stamp || attempt === ATTEMPTS) throw new DamagedStoreError(file, `${r.problem} ${remedy}`);
    }
  } catch (e) {
    // A read that fails (EIO, say) is a page LMDB could not map either.
    if (e instanceof DamagedStoreError || typeof (e as NodeJS.ErrnoException).code !== 'string') throw e;
    throw unreadable(file, e);
  } finally {
    closeSync(fd);
  }
}

/** Whether lmdb-js runs the LMDB whose layout this check reads (0.9.90 on, data format version 2). */
function isDataVersion2(): boolean {
  const v = (lmdb as unknown as { version?: { major: number; minor: number; patch: number } }).version;
  return v === undefined || v.major > 0 || v.minor > 9 || (v.minor === 9 && v.patch >= 90);
}

function unreadable(file: string, e: unknown): DamagedStoreError {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    const message = `${file} cannot be read (${err.code}: permission denied): check its owner and permissions`;
    return new DamagedStoreError(file, message);
  }
  const why = err.code ? `${err.code}: ${err.message}` : String(err?.message ?? err);
  return new DamagedStoreError(file, `${file} cannot be read (${why})`);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a plain file';
}

/** Reads up to `length` bytes at `position`; fewer only at the end of the file. */
function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** The bytes of every meta and the file size: what a commit in another process changes. */
function stamp(fd: number): string {
  const size = fstatSync(fd).size;
  const head = readAt(fd, 0, META_BYTES);
  const ps = head.length === META_BYTES ? head.readUInt32LE(PAGEHDRSZ + 24) : 0;
  const parts = [String(size), head.toString('hex')];
  if (isPageSize(ps)) {
    parts.push(readAt(fd, ps / 2, META_BYTES).toString('hex'), readAt(fd, ps, META_BYTES).toString('hex'));
  }
  return parts.join(':');
}

const isPageSize = (n: number): boolean => n >= 256 && n <= 65536 && (n & (n - 1)) === 0;

interface Db {
  root: bigint;
}

interface Meta {
  magic: number;
  version: number;
  psize: number;
  dbs: [free: Db, main: Db];
  last: bigint;
  txnid: bigint;
}

/** The meta at `at` in `buf` (where its page header starts), as read: nothing in it is trusted yet. */
function readMeta(buf: Buffer, at: number): Meta {
  const m = at + PAGEHDRSZ;
  const db = (o: number): Db => ({ root: buf.readBigUInt64LE(m + o + 40) });
  return {
    magic: buf.readUInt32LE(m),
    version: buf.readUInt32LE(m + 4),
    psize: buf.readUInt32LE(m + 24),
    dbs: [db(24), db(72)],
    last: buf.readBigUInt64LE(m + 120),
    txnid: buf.readBigUInt64LE(m + 128),
  };
}

/** A meta LMDB may open the file with. */
interface Candidate {
  name: string;
  meta: Meta;
  /** Whether the pages it names are checked too (not for a stale flushed meta: they may be reused by now). */
  walk: boolean;
}

class Problem extends Error {}

/** One pass over the file: the first problem found, with the stamp of what was read. */
function inspect(fd: number, file: string, readOnly: boolean): { problem?: string; stamp: string } {
  const at = stamp(fd);
  try {
    check(fd, file, readOnly);
    return { stamp: at };
  } catch (e) {
    if (e instanceof Problem) return { problem: e.message, stamp: at };
    throw e;
  }
}

function check(fd: number, file: string, readOnly: boolean): void {
  // The metas first, the size after: a file only grows, so a commit in between cannot make it look short.
  const head = readAt(fd, 0, META_BYTES);
  const size = fstatSync(fd).size;
  if (size === 0) {
    if (readOnly) throw new Problem(`${file} is empty (0 bytes): it holds no LMDB environment`);
    return; // LMDB starts it as a new environment
  }
  if (head.length < META_BYTES) {
    throw new Problem(`${file} is truncated: it has ${size} bytes, too few to hold an LMDB meta page`);
  }
  const flags0 = head.readUInt16LE(18);
  const m0 = readMeta(head, 0);
  const why0 =
    m0.magic !== MDB_MAGIC
      ? `no LMDB magic number (0x${hex(m0.magic, 8)} where 0x${hex(MDB_MAGIC, 8)} belongs)`
      : (m0.version & 0xffff) !== MDB_DATA_VERSION
        ? `data format version ${m0.version & 0xffff}, where this LMDB reads version ${MDB_DATA_VERSION}`
        : !(flags0 & P_META)
          ? `not marked as a meta page (flags 0x${hex(flags0, 4)})`
          : head.readBigUInt64LE(0) !== 0n
            ? `its header names page ${head.readBigUInt64LE(0)}`
            : !isPageSize(m0.psize)
              ? `page size ${m0.psize}, not a power of two from 256 to 65536`
              : undefined;
  if (why0 !== undefined) {
    throw new Problem(
      `${file}: damaged LMDB meta pages (meta page 0: ${why0}; LMDB reads the page size and the first meta from page 0 ` +
        `and cannot open the file without it, whatever page 1 holds)`,
    );
  }
  const ps = m0.psize;
  const pages = BigInt(Math.floor(size / ps));
  if (size < 2 * ps) {
    throw new Problem(truncated(file, m0, ps, size, `it ends before the end of meta page 1`));
  }
  const candidates: Candidate[] = [{ name: 'meta page 0', meta: m0, walk: true }];
  const page1 = readMeta(readAt(fd, ps, META_BYTES), 0);
  if (page1.txnid !== 0n) candidates.push({ name: 'meta page 1', meta: page1, walk: true });
  if (ps / 2 >= META_BYTES) {
    const flushed = readMeta(readAt(fd, ps / 2, META_BYTES), 0);
    // Only the last flushed transaction's pages are kept; synchronous commits move on without updating this copy,
    // so when it is older than both meta pages the pages it names may hold other data by now (seen).
    const current = flushed.txnid >= m0.txnid && flushed.txnid >= page1.txnid;
    if (flushed.txnid !== 0n) candidates.push({ name: 'the flushed meta in page 0', meta: flushed, walk: current });
  }
  for (const c of candidates) {
    const m = c.meta;
    const damaged = (why: string): Problem =>
      new Problem(`${file}: damaged LMDB meta pages (${c.name}, transaction ${m.txnid}: ${why})`);
    if (m.psize !== ps) throw damaged(`page size ${m.psize}, where page 0 has ${ps}`);
    if (m.last < FIRST_DATA_PAGE - 1n) throw damaged(`last page ${m.last}, below the meta pages`);
    const recorded = (m.last + 1n) * BigInt(ps);
    if (recorded > MAX_MAP_BYTES) {
      throw damaged(`it records ${m.last + 1n} pages (${recorded} bytes), more than a process can map`);
    }
    const gap = recorded - BigInt(size);
    if (gap > (BigInt(size) > MAX_TAIL_GAP_BYTES ? BigInt(size) : MAX_TAIL_GAP_BYTES)) {
      throw new Problem(truncated(file, m, ps, size));
    }
  }
  const walk = new Walk(fd, file, size, ps, pages);
  for (const c of candidates.filter((x) => x.walk)) {
    const [free, main] = c.meta.dbs;
    walk.visit(free.root, c, `the root of the free-page database of ${c.name}`, false);
    walk.visit(main.root, c, `the root of the main database of ${c.name}`, true);
  }
}

function truncated(file: string, m: Meta, ps: number, size: number, detail?: string): string {
  const n = m.last + 1n;
  return (
    `${file} is truncated: LMDB records ${n} pages (${n * BigInt(ps)} bytes) but the file has ${size} bytes` +
    (detail ? `, and ${detail}` : '')
  );
}

const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, '0');

/** Reads tree pages (each once, MAX_PAGE_READS at most) and checks them and every page number in them. */
class Walk {
  private reads = 0;
  private readonly seen = new Set<bigint>();

  constructor(
    private readonly fd: number,
    private readonly file: string,
    private readonly size: number,
    private readonly ps: number,
    private readonly pages: bigint,
  ) {}

  /** Checks that pages `pgno` .. `pgno + count - 1`, which `what` names, exist under `c` and lie in the file. */
  private inRange(pgno: bigint, count: bigint, c: Candidate, what: string): void {
    const end = pgno + count - 1n;
    const m = c.meta;
    if (pgno < FIRST_DATA_PAGE || end > m.last) {
      throw new Problem(
        `${this.file}: damaged LMDB database: ${what} is page ${pgno}${count > 1n ? ` to ${end}` : ''}, outside ` +
          `pages ${FIRST_DATA_PAGE} to ${m.last} that ${c.name} (transaction ${m.txnid}) records`,
      );
    }
    if (end >= this.pages) {
      throw new Problem(truncated(this.file, m, this.ps, this.size, `page ${end} (${what}) lies past its end`));
    }
  }

  /** A database root: checked and, unless already read or past the budget, read and checked inside. */
  visit(root: bigint, c: Candidate, what: string, namedDbs: boolean): void {
    if (root === P_INVALID) return; // an empty database
    this.inRange(root, 1n, c, what);
    if (this.seen.has(root) || this.reads >= MAX_PAGE_READS) return;
    this.seen.add(root);
    this.reads++;
    const page = readAt(this.fd, Number(root) * this.ps, this.ps);
    if (page.length < this.ps) {
      throw new Problem(truncated(this.file, c.meta, this.ps, this.size, `page ${root} (${what}) lies past its end`));
    }
    this.checkPage(page, root, c, what, namedDbs);
  }

  private checkPage(p: Buffer, pgno: bigint, c: Candidate, what: string, namedDbs: boolean): void {
    const bad = (why: string): Problem => new Problem(`${this.file}: damaged LMDB database: page ${pgno} (${what}) ${why}`);
    const ps = this.ps;
    const named = p.readBigUInt64LE(0);
    if (named !== pgno) throw bad(`has a header naming page ${named}`);
    const flags = p.readUInt16LE(18);
    const type = flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META);
    if ((type !== P_BRANCH && type !== P_LEAF) || flags & P_SUBP || (flags & P_LEAF2 && type !== P_LEAF)) {
      throw bad(`is not a branch or leaf page (flags 0x${hex(flags, 4)})`);
    }
    const lower = p.readUInt16LE(20);
    const upper = p.readUInt16LE(22);
    if (lower % 2 !== 0 || lower > upper || upper > ps - PAGEHDRSZ) {
      throw bad(`has its free space at ${lower}..${upper}, not within the page`);
    }
    if (flags & P_LEAF2) return; // fixed-size keys packed after the header: no nodes, no page numbers
    const keys = lower / 2;
    for (let i = 0; i < keys; i++) {
      const node = p.readUInt16LE(PAGEHDRSZ + 2 * i) + PAGEHDRSZ;
      if (node < upper + PAGEHDRSZ || node + NODESIZE > ps) throw bad(`has node ${i} at offset ${node}, outside its nodes`);
      const lo = p.readUInt16LE(node);
      const hi = p.readUInt16LE(node + 2);
      const nodeFlags = p.readUInt16LE(node + 4);
      const ksize = p.readUInt16LE(node + 6);
      const data = node + NODESIZE + ksize;
      if (data > ps) throw bad(`has node ${i} whose key runs past the page`);
      if (type === P_BRANCH) {
        // A branch node's page number: 48 bits, the low 32 in lo/hi and the top 16 in the flags word.
        const child = BigInt(lo) | (BigInt(hi) << 16n) | (BigInt(nodeFlags) << 32n);
        this.inRange(child, 1n, c, `a child of page ${pgno}`);
        continue;
      }
      const dsize = lo + hi * 0x10000;
      if (nodeFlags & F_BIGDATA) {
        // The value is on overflow pages: { pgno u64, txnid u64, pages u64 } in the node.
        if (data + 24 > ps) throw bad(`has node ${i} whose overflow reference runs past the page`);
        const first = p.readBigUInt64LE(data);
        const count = p.readBigUInt64LE(data + 16);
        if (count < 1n || count * BigInt(ps) < BigInt(dsize + PAGEHDRSZ)) {
          throw bad(`has node ${i} whose value of ${dsize} bytes is said to take ${count} overflow pages`);
        }
        this.inRange(first, count, c, `the overflow pages of a value in page ${pgno}`);
      } else if (nodeFlags & F_SUBDATA) {
        // A named database (or a sorted-duplicates subtree): its MDB_db record is the value.
        if (data + DB_SIZE > ps) throw bad(`has node ${i} whose database record runs past the page`);
        const root = p.readBigUInt64LE(data + 40);
        const sub = `the root of database "${dbName(p.subarray(node + NODESIZE, data))}" of ${c.name}`;
        if (namedDbs) this.visit(root, c, sub, false);
        else if (root !== P_INVALID) this.inRange(root, 1n, c, sub);
      } else if (data + dsize > ps) {
        throw bad(`has node ${i} whose value of ${dsize} bytes runs past the page`);
      }
    }
  }
}

/** A database name from its key: lmdb-js ends it with a NUL. */
function dbName(key: Buffer): string {
  const text = key.toString('latin1').replace(/\0$/, '');
  return /^[\x20-\x7e]*$/.test(text) ? text : `0x${key.toString('hex')}`;
}
