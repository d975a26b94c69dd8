/**
 * Checkpoint write/read cost: a 4 MiB and a 40 MiB snapshot through the wire format and both stores, against a raw
 * `fs.writeFileSync` / `fs.readFileSync` of the same bytes.
 *
 *   npm run build && node dist/bench/checkpoint.js
 *
 * Store writes include encoding and are durable (LMDB commit plus flush; the directory store's fsync and rename),
 * which the raw baseline is not: the ratio is the price of durability and atomic publishing. Times are medians.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  bodyChecksum,
  decodeSnapshot,
  encodeSnapshot,
  openSnapshotStore,
  type NamedArray,
  type SnapshotInput,
} from '../src/store/index.js';

const SIZES_MIB = [4, 40];
const REPEATS: Record<number, number> = { 4: 9, 40: 5 };

/** A snapshot of about `mib` MiB: four weight tensors, their Adam slots would look the same, plus a step counter. */
function makeSnapshot(mib: number, step: number): SnapshotInput {
  const floats = (mib << 20) / 4 / 4;
  let seed = 12345;
  const tensors: NamedArray[] = [0, 1, 2, 3].map((i) => {
    const data = new Float32Array(floats);
    for (let j = 0; j < floats; j++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
      data[j] = seed / 2 ** 31;
    }
    return { name: `weights/layer${i}`, shape: [floats / 256, 256], data };
  });
  tensors.push({ name: 'optimizer/step', shape: [], data: Int32Array.of(step) });
  return { header: { runId: 'bench', group: 0, step, model: 'lm', extra: { config: { bench: true } } }, tensors };
}

/** Median milliseconds of `repeats` runs of `f` (after one warm-up run). */
async function timeMs(repeats: number, f: (i: number) => unknown): Promise<number> {
  await f(-1);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f(i);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const mbps = (bytes: number, ms: number): number => round(bytes / 1e6 / (ms / 1000), 0);

export async function benchCheckpoint(): Promise<Record<string, number | string>> {
  const root = mkdtempSync(join(tmpdir(), 'codistill-bench-checkpoint-'));
  const out: Record<string, number | string> = {};
  try {
    for (const mib of SIZES_MIB) {
      const n = REPEATS[mib];
      const snapshot = makeSnapshot(mib, 1);
      const bytes = encodeSnapshot(snapshot);
      const key = `${mib}MiB`;
      out[`${key}.bytes`] = bytes.length;

      const encodeMs = await timeMs(n, () => encodeSnapshot(snapshot));
      const decodeMs = await timeMs(n, () => decodeSnapshot(bytes));
      const body = new Uint8Array(snapshot.tensors[0].data.buffer); // any bytes: the hash's speed is content-blind
      const checksumMs = await timeMs(n, () => bodyChecksum(body));
      Object.assign(out, {
        [`wire.${key}.encode_ms`]: round(encodeMs),
        [`wire.${key}.decode_ms`]: round(decodeMs),
        [`wire.${key}.checksum_GBps`]: round(body.length / 1e9 / (checksumMs / 1000)),
      });

      const rawFile = join(root, `raw-${mib}.bin`);
      const rawWriteMs = await timeMs(n, () => writeFileSync(rawFile, bytes));
      const rawReadMs = await timeMs(n, () => readFileSync(rawFile));
      Object.assign(out, {
        [`raw.${key}.write_ms`]: round(rawWriteMs),
        [`raw.${key}.write_MBps`]: mbps(bytes.length, rawWriteMs),
        [`raw.${key}.read_ms`]: round(rawReadMs),
        [`raw.${key}.read_MBps`]: mbps(bytes.length, rawReadMs),
      });

      for (const scheme of ['lmdb', 'dir']) {
        const store = openSnapshotStore(`${scheme}:${join(root, `${scheme}-${mib}`)}`);
        try {
          // A new step each time, pruned to the last two, like a run checkpointing every K steps.
          const writeMs = await timeMs(n, async (i) => {
            snapshot.header.step = i + 2;
            await store.put(snapshot);
            await store.prune(0, 2);
          });
          const latest = (await store.latest(0))!.step;
          const readMs = await timeMs(n, () => store.get(0, latest));
          Object.assign(out, {
            [`${scheme}.${key}.write_ms`]: round(writeMs),
            [`${scheme}.${key}.write_MBps`]: mbps(bytes.length, writeMs),
            [`${scheme}.${key}.write_vs_raw`]: round(writeMs / rawWriteMs),
            [`${scheme}.${key}.read_ms`]: round(readMs),
            [`${scheme}.${key}.read_MBps`]: mbps(bytes.length, readMs),
            [`${scheme}.${key}.read_vs_raw`]: round(readMs / rawReadMs),
          });
        } finally {
          await store.close();
        }
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchCheckpoint();
  for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(32)} ${v}`);
}
