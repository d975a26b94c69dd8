/**
 * A snapshot store in an S3-compatible object store (AWS S3, MinIO, Cloudflare R2, s3rver), for groups on machines
 * that share no file system. Address: `s3://bucket/prefix?endpoint=http://host:port&region=us-east-1&pathStyle=1`
 * (or `s3:bucket/prefix?...`); credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and so on).
 *
 * Layout under the prefix:
 *   group-0003/step-000000001200.snap   one wire record (see snapshot.ts), the same bytes the other stores hold
 *   group-0003/manifest.json            the group's published steps, each with its record's head bytes (base64)
 *
 * A put writes the record first and then names it in the manifest, so a reader (who asks the manifest first)
 * never sees a step whose record is incomplete, and `list`/`latest` read one small object per group, never a body.
 * Records are written with `If-None-Match: *` and the manifest with `If-Match: <the ETag read>`; a write whose
 * condition fails re-reads and merges. Those conditions only guard against a stale second writer: in normal
 * operation each group has exactly one writer, and servers that ignore conditional headers (s3rver does) work the
 * same, because every manifest update re-reads the manifest first. Two writers racing on one group on such a server
 * can lose one's manifest entry (its record is then an orphan that a later prune removes).
 *
 * `putMany` puts each snapshot in turn: there is no transaction across groups, so the groups' steps appear one by
 * one. A reader that needs a step every group has (resume) asks `latestCommonStep`; prune with keep >= 2 (or
 * protect that step) so a complete older step survives a writer that dies midway.
 *
 * The AWS SDK loads on first use, so processes that only use the other stores never pay for it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import {
  checkCount,
  checkPlace,
  decodeSnapshot,
  decodeSnapshotHeader,
  encodeRecord,
  groupFolder,
  groupOfFolder,
  newestCommonStep,
  readStoredHead,
  SnapshotError,
  STALE_WRITE_MS,
  stepFileName,
  stepOfFileName,
  stepsToPrune,
  writeError,
  type EncodedSnapshot,
  type Snapshot,
  type SnapshotHeader,
  type SnapshotInput,
  type SnapshotStore,
} from './snapshot.js';

type Sdk = typeof import('@aws-sdk/client-s3');

let sdk: Promise<Sdk> | undefined;
/** Reads of an unreadable manifest before it counts as damaged (see `manifest`). */
const MANIFEST_READS = 5;
/** Reads of an object whose response failed midway before the failure counts (see `getObject`). */
const READS = 4;

const loadSdk = (): Promise<Sdk> => {
  // The pinned SDK supports Node 20; its warning on every process that Node 22 will be needed by SDK versions
  // published after January 2027 is about releases this package does not use (the README says so once). A user's
  // own setting of the variable wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return (sdk ??= import('@aws-sdk/client-s3'));
};

/** A parsed `s3:` address. */
export interface S3Address {
  bucket: string;
  /** Key prefix without leading or trailing slashes; '' for the bucket's root. */
  prefix: string;
  region: string;
  /** The server's URL for S3-compatible stores; undefined for AWS S3 itself. */
  endpoint?: string;
  /** Bucket in the path (`host/bucket/key`) rather than the host name: the default with an `endpoint`. */
  forcePathStyle: boolean;
}

const QUERY_KEYS = new Set(['endpoint', 'region', 'pathStyle']);

/** Parses `s3://bucket/prefix?endpoint=...&region=...&pathStyle=0|1` (or `s3:bucket/prefix?...`). */
export function parseS3Address(uri: string): S3Address {
  const invalid = (why: string): never => {
    throw new SnapshotError('invalid', `snapshot store "${uri}": ${why}`);
  };
  const m = /^s3:(?:\/\/)?([^/?]*)([^?]*)(?:\?(.*))?$/i.exec(uri);
  if (!m) return invalid('not an s3:// address');
  const [, bucket, path, query = ''] = m;
  if (!bucket) invalid('names no bucket (use s3://BUCKET/PREFIX)');
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (!QUERY_KEYS.has(key)) invalid(`unknown parameter "${key}" (use endpoint, region, pathStyle)`);
  }
  const endpoint = params.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]/i.test(endpoint)) {
    invalid(`endpoint "${endpoint}" is not an http(s) URL`);
  }
  const pathStyle = params.get('pathStyle');
  if (pathStyle !== null && pathStyle !== '0' && pathStyle !== '1') {
    invalid(`pathStyle must be 0 or 1, not "${pathStyle}"`);
  }
  return {
    bucket,
    prefix: path.split('/').filter(Boolean).join('/'),
    region: params.get('region') || process.env.AWS_REGION || 'us-east-1',
    endpoint,
    forcePathStyle: pathStyle === null ? endpoint !== undefined : pathStyle === '1',
  };
}

/** One group's published steps, ascending, each with its record's head bytes (what `decodeSnapshotHeader` reads). */
interface ManifestEntry {
  step: number;
  head: string;
}

/** What `group-NNNN/manifest.json` holds. */
interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  group: number;
  steps: ManifestEntry[];
}

const MANIFEST = 'manifest.json';
const MANIFEST_FORMAT = 'codistill-snapshot-manifest';
const MANIFEST_VERSION = 1;
/** Conditional manifest writes lost in a row before giving up: each loss means another writer changed it. */
const MANIFEST_ATTEMPTS = 8;

/** What the SDK's errors carry. */
interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}
const errorName = (e: unknown): string | undefined => (e as SdkError | undefined)?.name;
const httpStatus = (e: unknown): number | undefined => (e as SdkError | undefined)?.$metadata?.httpStatusCode;
const isNoSuchBucket = (e: unknown): boolean => errorName(e) === 'NoSuchBucket';
const isNoSuchKey = (e: unknown): boolean =>
  errorName(e) === 'NoSuchKey' || (httpStatus(e) === 404 && !isNoSuchBucket(e));
/** A conditional write that lost: 412, its condition failed; 409, another one to the same key was in flight. */
const isConflict = (e: unknown): boolean =>
  httpStatus(e) === 412 || httpStatus(e) === 409 || errorName(e) === 'PreconditionFailed';

/** Equal but for `createdAt`: two encodings of the same state. */
const sameContent = (a: SnapshotHeader, b: SnapshotHeader): boolean =>
  a.checksum === b.checksum && JSON.stringify({ ...a, createdAt: '' }) === JSON.stringify({ ...b, createdAt: '' });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A condition on a write: the key must not exist yet, or must still hold the version with this ETag. */
type Condition = { IfNoneMatch: '*' } | { IfMatch: string } | undefined;

export class S3SnapshotStore implements SnapshotStore {
  readonly where: string;
  readonly address: S3Address;
  /** `prefix/` (or '' at the bucket's root): every key starts with it. */
  private readonly base: string;
  private connection?: Promise<{ sdk: Sdk; client: S3Client }>;

  private constructor(uri: string) {
    this.where = uri;
    this.address = parseS3Address(uri);
    this.base = this.address.prefix ? `${this.address.prefix}/` : '';
  }

  /** Opens the store at an `s3:` address; nothing is sent until the first call. */
  static open(uri: string): S3SnapshotStore {
    return new S3SnapshotStore(uri);
  }

  /** The SDK client (created on first use): for tools and tests that need calls the store does not make. */
  async client(): Promise<S3Client> {
    return (await this.connect()).client;
  }

  put(snapshot: SnapshotInput): Promise<SnapshotHeader> {
    return this.putMany([snapshot]).then(([header]) => header);
  }

  async putMany(snapshots: readonly SnapshotInput[]): Promise<SnapshotHeader[]> {
    const encoded = snapshots.map(encodeRecord);
    const headers: SnapshotHeader[] = [];
    for (const record of encoded) headers.push(await this.putOne(record));
    return headers;
  }

  async latest(group: number): Promise<SnapshotHeader | undefined> {
    const last = (await this.manifest(group)).entries.at(-1);
    return last && this.headerOf(group, last);
  }

  async get(group: number, step: number): Promise<Snapshot | undefined> {
    const named = async (): Promise<boolean> => (await this.manifest(group)).entries.some((e) => e.step === step);
    if (!(await named())) return undefined;
    const key = this.recordKey(group, step);
    const label = this.label(key);
    const object = await this.getObject(key);
    if (!object) {
      if (!(await named())) return undefined; // pruned between the two reads
      throw new SnapshotError('corrupt', `${label}: the manifest names this snapshot but its object is missing`);
    }
    const snapshot = decodeSnapshot(object.bytes, label);
    checkPlace(snapshot.header, group, step, label);
    return snapshot;
  }

  async list(group?: number): Promise<SnapshotHeader[]> {
    const groups = group === undefined ? await this.groups() : [group];
    const manifests = await Promise.all(groups.map((g) => this.manifest(g)));
    return manifests.flatMap(({ entries }, i) => entries.map((entry) => this.headerOf(groups[i], entry)));
  }

  async latestCommonStep(groupCount: number): Promise<number | undefined> {
    checkCount('groupCount', groupCount, this.where);
    const groups = Array.from({ length: groupCount }, (_, g) => this.manifest(g));
    return newestCommonStep((await Promise.all(groups)).map(({ entries }) => entries.map((e) => e.step)));
  }

  async prune(group: number, keep: number, protect?: number): Promise<number> {
    let doomed: number[] = [];
    const kept = await this.updateManifest(group, `pruning group ${group}`, (entries) => {
      doomed = stepsToPrune(entries.map((e) => e.step), keep, protect, this.where);
      return entries.filter((e) => !doomed.includes(e.step));
    });
    // Unlisted first, deleted after: a reader holding the old manifest finds the object gone and gets undefined.
    for (const step of doomed) await this.deleteObject(this.recordKey(group, step));
    await this.removeOrphans(group, new Set(kept.map((e) => e.step)));
    return doomed.length;
  }

  /**
   * Stores `text` at `<prefix>/<name>` unless an object is there, and returns the text there afterwards: ours, or
   * the first writer's. An existing object is read first and the write is `If-None-Match: *`, so on a server that
   * ignores that condition the first text still stays, unless two writers race (then both write, and the later
   * one's text is what everyone reads from then on).
   */
  async putTextOnce(name: string, text: string): Promise<string> {
    const first = await this.readText(name);
    if (first !== undefined) return first;
    const key = this.base + name;
    await this.putObject(key, Buffer.from(text, 'utf8'), { IfNoneMatch: '*' }, name);
    const stored = await this.readText(name);
    if (stored === undefined) throw new SnapshotError('io', `${this.label(key)}: written, then not found`);
    return stored;
  }

  /** Stores `text` at `<prefix>/<name>`, replacing any object there (a PUT is atomic on S3). */
  async writeText(name: string, text: string): Promise<void> {
    await this.putObject(this.base + name, Buffer.from(text, 'utf8'), undefined, name);
  }

  /** The text at `<prefix>/<name>`, or undefined when there is no such object. */
  async readText(name: string): Promise<string | undefined> {
    return (await this.getObject(this.base + name))?.bytes.toString('utf8');
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    if (connection) (await connection.catch(() => undefined))?.client.destroy();
  }

  private connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.connection ??= loadSdk().then((sdk) => {
      const { region, endpoint, forcePathStyle } = this.address;
      const client = new sdk.S3Client({
        region,
        endpoint,
        forcePathStyle,
        // Checksums only where the API requires them: S3-compatible servers (s3rver, MinIO, R2) reject or mangle
        // the newer default trailing checksums. The record's own checksums cover its bytes end to end anyway.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return { sdk, client };
    });
    return this.connection;
  }

  /** Writes the record, then names it in the manifest; returns the header of the record stored. */
  private async putOne({ bytes, header, headLength }: EncodedSnapshot): Promise<SnapshotHeader> {
    const { group, step } = header;
    const key = this.recordKey(group, step);
    const what = `group ${group} step ${step}`;
    let stored = { header, head: bytes.subarray(0, headLength) };
    if ((await this.putObject(key, bytes, { IfNoneMatch: '*' }, what)) === 'conflict') {
      // The key exists: a put retried, or a writer that died before naming its record. The same state (only its
      // createdAt differs) is kept; anything else (other weights, an unreadable record) is replaced.
      const existing = await readStoredHead(
        async (length) => (await this.getObject(key, length))?.bytes ?? new Uint8Array(0),
        this.label(key),
      ).catch(() => undefined);
      if (existing && sameContent(existing.header, header)) stored = existing;
      else await this.putObject(key, bytes, undefined, what);
    }
    const entry = { step, head: Buffer.from(stored.head).toString('base64') };
    await this.updateManifest(group, `publishing ${what}`, (entries) =>
      [...entries.filter((e) => e.step !== step), entry].sort((a, b) => a.step - b.step),
    );
    return stored.header;
  }

  /**
   * Read, change, write back with the ETag read as the condition; a lost condition (another writer got there
   * first) re-reads and applies `change` again, so no step another writer published is lost. Returns the entries
   * written (or left, when `change` changed nothing).
   */
  private async updateManifest(
    group: number,
    what: string,
    change: (entries: readonly ManifestEntry[]) => ManifestEntry[],
  ): Promise<ManifestEntry[]> {
    const key = this.manifestKey(group);
    for (let attempt = 1; ; attempt++) {
      const { entries, exists, etag } = await this.manifest(group);
      const next = change(entries);
      if (JSON.stringify(next) === JSON.stringify(entries)) return next;
      const manifest: Manifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, group, steps: next };
      const body = JSON.stringify(manifest);
      const condition: Condition = !exists ? { IfNoneMatch: '*' } : etag ? { IfMatch: etag } : undefined;
      if ((await this.putObject(key, Buffer.from(body), condition, what)) === 'done') return next;
      if (attempt === MANIFEST_ATTEMPTS) {
        throw new SnapshotError(
          'io',
          `${this.label(key)}: ${what}: the manifest changed under every one of ${attempt} conditional writes; ` +
            `is another process writing group ${group}?`,
        );
      }
      await sleep(Math.random() * 10 * 2 ** attempt);
    }
  }

  /** The group's manifest: its entries (ascending by step), whether it exists, and the ETag of the version read. */
  /**
   * The group's manifest. S3 itself never serves a half-replaced object, but some S3-compatible servers (s3rver,
   * which stores an object's bytes and its length apart) can, for a moment, while a writer replaces it: an
   * unreadable manifest is therefore read again a few times, 25 ms apart and longer each time, before it counts as
   * damaged.
   */
  private async manifest(group: number): Promise<{ entries: ManifestEntry[]; exists: boolean; etag?: string }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readManifest(group);
      } catch (e) {
        if (!(e instanceof SnapshotError && e.kind === 'corrupt') || attempt >= MANIFEST_READS) throw e;
        await delay(25 * attempt);
      }
    }
  }

  private async readManifest(group: number): Promise<{ entries: ManifestEntry[]; exists: boolean; etag?: string }> {
    checkCount('group', group, this.where);
    const key = this.manifestKey(group);
    const object = await this.getObject(key);
    if (!object) return { entries: [], exists: false };
    let entries: ManifestEntry[];
    try {
      const m = JSON.parse(object.bytes.toString('utf8')) as Partial<Record<keyof Manifest, unknown>>;
      if (m.format !== MANIFEST_FORMAT || m.group !== group || !Array.isArray(m.steps)) {
        throw new Error('not a manifest');
      }
      if (m.version !== MANIFEST_VERSION) {
        throw new Error(`manifest version ${String(m.version)}; this codistill reads version ${MANIFEST_VERSION}`);
      }
      entries = m.steps as ManifestEntry[];
      if (!entries.every((e) => Number.isSafeInteger(e?.step) && e.step >= 0 && typeof e.head === 'string')) {
        throw new Error('malformed steps');
      }
    } catch (e) {
      throw new SnapshotError('corrupt', `${this.label(key)}: unreadable manifest (${(e as Error).message})`, {
        cause: e,
      });
    }
    return { entries: entries.sort((a, b) => a.step - b.step), exists: true, etag: object.etag };
  }

  private headerOf(group: number, entry: ManifestEntry): SnapshotHeader {
    const label = this.label(this.recordKey(group, entry.step));
    const header = decodeSnapshotHeader(Buffer.from(entry.head, 'base64'), label);
    checkPlace(header, group, entry.step, label);
    return header;
  }

  /** Group numbers that have a folder, ascending. */
  private async groups(): Promise<number[]> {
    const groups: number[] = [];
    await this.listKeys(this.base, '/', ({ CommonPrefixes = [] }) => {
      for (const { Prefix = '' } of CommonPrefixes) {
        const group = groupOfFolder(Prefix.slice(this.base.length).replace(/\/$/, ''));
        if (group !== undefined) groups.push(group);
      }
    });
    return groups.sort((a, b) => a - b);
  }

  /**
   * Deletes the group's records that no manifest entry names and that are over an hour old: left by a writer that
   * died between a record and its manifest entry, or by a prune that died between the manifest and the deletes.
   * Younger ones may be a live writer's record about to be named.
   */
  private async removeOrphans(group: number, named: ReadonlySet<number>): Promise<void> {
    const folder = `${this.base}${groupFolder(group)}/`;
    const orphans: string[] = [];
    await this.listKeys(folder, undefined, ({ Contents = [] }) => {
      for (const { Key = '', LastModified } of Contents) {
        const step = stepOfFileName(Key.slice(folder.length));
        const old = LastModified !== undefined && Date.now() - LastModified.getTime() > STALE_WRITE_MS;
        if (step !== undefined && !named.has(step) && old) orphans.push(Key);
      }
    });
    for (const key of orphans) await this.deleteObject(key);
  }

  private recordKey(group: number, step: number): string {
    return `${this.base}${groupFolder(group)}/${stepFileName(step)}`;
  }

  private manifestKey(group: number): string {
    return `${this.base}${groupFolder(group)}/${MANIFEST}`;
  }

  /** Names an object in messages: the store's address and the object's key. */
  private label(key: string): string {
    return `${this.where} key ${key}`;
  }

  /** A clear error for a failed call; `NoSuchBucket` says what to fix. */
  private failure(e: unknown, key: string, doing: string): SnapshotError {
    if (e instanceof SnapshotError) return e;
    if (isNoSuchBucket(e)) {
      const at = this.address.endpoint ? ` at ${this.address.endpoint}` : '';
      return new SnapshotError(
        'io',
        `${this.where}: bucket "${this.address.bucket}" does not exist${at} (create it, or fix the address)`,
        { cause: e },
      );
    }
    const status = httpStatus(e);
    const message = (e as Error)?.message ?? String(e);
    const detail = `${errorName(e) ?? 'Error'}: ${message}${status ? `, HTTP ${status}` : ''}`;
    return new SnapshotError('io', `${this.label(key)}: ${doing} failed (${detail})`, { cause: e });
  }

  /**
   * The object's bytes (or its first `length` bytes) and ETag; undefined when there is no such key. The SDK retries
   * a failed request, but not a response body cut short (a reset connection, a server that aborts the stream):
   * those are read again, up to `READS` times in all, before the error counts.
   */
  private async getObject(key: string, length?: number): Promise<{ bytes: Buffer; etag?: string } | undefined> {
    const { sdk, client } = await this.connect();
    const range = length === undefined ? undefined : `bytes=0-${length - 1}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await client.send(new sdk.GetObjectCommand({ Bucket: this.address.bucket, Key: key, Range: range }));
        return { bytes: await readBody(out.Body as AsyncIterable<Uint8Array>, out.ContentLength), etag: out.ETag };
      } catch (e) {
        if (isNoSuchKey(e)) return undefined;
        const status = httpStatus(e);
        const transient = !isNoSuchBucket(e) && (status === undefined || status >= 500);
        if (!transient || attempt >= READS) throw this.failure(e, key, 'reading');
        await delay(25 * attempt);
      }
    }
  }

  /** Writes an object; 'conflict' when `condition` failed (nothing was written). */
  private async putObject(
    key: string,
    body: Uint8Array,
    condition: Condition,
    what: string,
  ): Promise<'done' | 'conflict'> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.address.bucket, Key: key, Body: body, ...condition }));
      return 'done';
    } catch (e) {
      if (condition && isConflict(e)) return 'conflict';
      if (isNoSuchBucket(e)) throw this.failure(e, key, 'writing');
      throw writeError(e, this.label(key), what, { bytes: body.byteLength });
    }
  }

  private async deleteObject(key: string): Promise<void> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.address.bucket, Key: key }));
    } catch (e) {
      if (!isNoSuchKey(e)) throw this.failure(e, key, 'deleting');
    }
  }

  /** Every page of a listing of `prefix` (grouped at `delimiter` when given), each handed to `page`. */
  private async listKeys(
    prefix: string,
    delimiter: string | undefined,
    page: (out: ListObjectsV2CommandOutput) => void,
  ): Promise<void> {
    const { sdk, client } = await this.connect();
    let token: string | undefined;
    do {
      const input = { Bucket: this.address.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token };
      let out;
      try {
        out = await client.send(new sdk.ListObjectsV2Command(input));
      } catch (e) {
        throw this.failure(e, prefix, 'listing');
      }
      page(out);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }
}

/**
 * Reads a response body into one buffer of its own (offset 0, so a record's body is 8-aligned and decodes in
 * place): allocated once at the announced length, not grown chunk by chunk.
 */
async function readBody(body: AsyncIterable<Uint8Array>, length: number | undefined): Promise<Buffer> {
  if (length === undefined) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
  const out = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for await (const chunk of body) {
    if (at + chunk.length > length) throw new Error(`the response runs past its Content-Length of ${length}`);
    out.set(chunk, at);
    at += chunk.length;
  }
  if (at !== length) throw new Error(`the response ended after ${at} of its ${length} bytes`);
  return out;
}
