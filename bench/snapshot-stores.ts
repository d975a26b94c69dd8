/**
 * Publish and load cost of one snapshot (a single float32 tensor of 1, 16, 100 and 400 MB) through each store:
 * LMDB, a shared directory (`file:`), and an S3-compatible object store (s3rver on loopback, its objects in a temp
 * directory), against a plain `writeFile` + fsync and a `readFile` of the same encoded bytes in the same run.
 *
 *   npm run build && node dist/bench/run.js snapshot-stores
 *
 * `put` includes encoding and each store's publishing (LMDB commit and flush; the directory store's fsync and
 * rename; the object store's record PUT and manifest update, the SDK hashing the body to sign it over plain
 * http); `get` includes verifying the record's checksums. Times are medians; ratios are store ms / plain file ms.
 * Each put is a new step, pruned (untimed) to the newest two, like a run checkpointing every K steps.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { writeDurably } from '../src/store/dir-store.js';
import { encodeSnapshot, openSnapshotStore, type SnapshotInput } from '../src/store/index.js';

/** A local S3-compatible server (s3rver) holding the bucket `bucket` in `directory`, on a free loopback port. */
export interface LocalS3 {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  bucket: string;
  /** A store address under the bucket: `s3://bucket/prefix?endpoint=...`. */
  address(prefix: string): string;
  close(): Promise<void>;
}

/** The parts of s3rver 3.7 used here (it ships no types). */
interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  store: S3rverFilesystemStore;
}
interface S3rverObject {
  bucket: string;
  key: string;
  content: Readable | Buffer;
  metadata: Record<string, string>;
}
interface S3rverFilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObject(object: S3rverObject): Promise<{ size: number; md5: string }>;
}
type S3rverClass = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rverServer;

/**
 * Starts s3rver (a dev dependency, untyped: loaded by name). It accepts the access key `S3RVER` with the secret
 * `S3RVER`; those are set in this process's environment unless credentials are there already, for the SDK's default
 * credential chain to find.
 */
export async function startLocalS3(directory: string, bucket = 'test'): Promise<LocalS3> {
  const { default: S3rver } = (await import('s3rver' as string)) as { default: S3rverClass };
  const options = { address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: bucket }] };
  const server = new S3rver(options);
  server.store.putObject = putObjectWhole;
  const { port } = await server.run();
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    address: (prefix) => `s3://${bucket}/${prefix}?endpoint=${endpoint}&region=us-east-1`,
    close: () => server.close(),
  };
}

/**
 * s3rver's own putObject resolves (and the server answers the PUT) when the request body has been read, not when
 * its file is written, so a GET right after a PUT can read a partial object, which no S3 does. This one writes the
 * object to a temp file, renames it into place, then writes its metadata, all before the PUT is answered.
 */
async function putObjectWhole(
  this: S3rverFilesystemStore,
  object: S3rverObject,
): Promise<{ size: number; md5: string }> {
  const path = this.getResourcePath(object.bucket, object.key, 'object');
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await mkdir(dirname(path), { recursive: true });
  const md5 = createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  const count = async function* (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      md5.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  };
  await pipeline(content, count, createWriteStream(temp));
  await rename(temp, path);
  const digest = md5.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
}

const SIZES_MB = [1, 16, 100, 400];
/** Runs per size and store (the median is reported): 3 keeps the whole bench near a minute and a half on 2 cores. */
const REPEATS: Record<number, number> = { 1: 5, 16: 3, 100: 3, 400: 3 };

function makeSnapshot(mb: number): SnapshotInput {
  const n = Math.floor((mb * 1e6) / 4);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i); // not all zeros: no layer can shortcut it
  return {
    header: { runId: 'bench', group: 0, step: 0, model: 'lm', extra: { config: { bench: true } } },
    tensors: [{ name: 'weights/w', shape: [n], data }],
  };
}

/** Median of `repeats` runs of `f`, each timing itself (so untimed work can sit between runs). */
async function medianMs(repeats: number, f: (i: number) => Promise<number>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) times.push(await f(i));
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** One row per size: plain-file times, then each store's put/get ms and their ratios to the plain file. */
export async function benchSnapshotStores(): Promise<Record<string, number | string>[]> {
  const root = mkdtempSync(join(tmpdir(), 'codistill-bench-stores-'));
  const s3 = await startLocalS3(join(root, 's3rver'));
  const rows: Record<string, number | string>[] = [];
  try {
    for (const mb of SIZES_MB) {
      const repeats = REPEATS[mb];
      const snapshot = makeSnapshot(mb);
      const bytes = encodeSnapshot(snapshot);
      const plain = join(root, `plain-${mb}.bin`);
      const plainWriteMs = await medianMs(repeats, () => timed(() => writeDurably(plain, bytes)));
      const plainReadMs = await medianMs(repeats, () => timed(() => readFile(plain)));
      rmSync(plain);
      const row: Record<string, number | string> = {
        size: `${mb} MB`,
        'file write+fsync ms': round(plainWriteMs),
        'file read ms': round(plainReadMs),
      };
      const uris = {
        lmdb: `lmdb:${join(root, `lmdb-${mb}`)}`,
        file: `file:${join(root, `file-${mb}`)}`,
        s3: s3.address(`s3-${mb}`),
      };
      for (const [name, uri] of Object.entries(uris)) {
        const store = openSnapshotStore(uri);
        try {
          const putMs = await medianMs(repeats, async (i) => {
            snapshot.header.step = i + 1;
            const ms = await timed(() => store.put(snapshot));
            await store.prune(0, 2);
            return ms;
          });
          const step = (await store.latest(0))!.step;
          const getMs = await medianMs(repeats, () => timed(() => store.get(0, step)));
          await store.prune(0, 0);
          Object.assign(row, {
            [`${name} put ms`]: round(putMs),
            [`${name} put/file`]: round(putMs / plainWriteMs),
            [`${name} get ms`]: round(getMs),
            [`${name} get/file`]: round(getMs / plainReadMs),
          });
        } finally {
          await store.close();
        }
      }
      rows.push(row);
    }
  } finally {
    await s3.close();
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchSnapshotStores());
}
