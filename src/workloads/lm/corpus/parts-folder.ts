/**
 * The folder of a corpus built in parts (`codistill ingest --part i/P`): one corpus store per part, each an LMDB
 * environment named `part-00002-of-00008`, and `manifest.json`, written last, once every part is there and they all
 * agree (parts.ts). A folder without the manifest is a corpus still being built: nothing reads it.
 *
 * The manifest is small (a line per part) and names the parts by their folder, relative to it, so the whole folder
 * can be copied or mounted anywhere. It is written to a temporary name and renamed into place: a reader sees the
 * old manifest, none, or the new one, never half of one.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CorpusError } from './errors.js';
import type { Split, SplitMeta, TokenDtype } from './store.js';

export const MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 'codistill-corpus-parts';
export const MANIFEST_VERSION = 1;

/** Part `index` of `count` (0-based). */
export interface PartRef {
  index: number;
  count: number;
}

const pad = (n: number): string => String(n).padStart(5, '0');
const PART_FOLDER = /^part-(\d{5,})-of-(\d{5,})$/;

/** The folder name of a part: `part-00002-of-00008`. */
export const partName = (p: PartRef): string => `part-${pad(p.index)}-of-${pad(p.count)}`;

/** How messages name a part: `part 2/8`. */
export const partLabel = (p: PartRef): string => `part ${p.index}/${p.count}`;

/** The part a folder name stands for, if it is one. */
export function parsePartName(name: string): PartRef | undefined {
  const m = PART_FOLDER.exec(name);
  if (!m) return undefined;
  const ref = { index: Number(m[1]), count: Number(m[2]) };
  return ref.index < ref.count && name === partName(ref) ? ref : undefined;
}

export interface ManifestPart {
  /** The part's store, relative to the manifest's folder. */
  path: string;
  /** The part's input fingerprint: a part rebuilt since the manifest was written no longer matches. */
  fingerprint: string;
  splits: Record<Split, SplitMeta>;
}

export interface CorpusManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  /** sha256 of the parts' input fingerprints, in order: the corpus' fingerprint. */
  fingerprint: string;
  /** Every part, by index. */
  parts: ManifestPart[];
  tokenizer: { library: string; sha256: string; vocabSize: number };
  tokenDtype: TokenDtype;
  shardTokens: number;
  /** Fingerprint of the whole input list that was cut into the parts (names and sizes, in order). */
  listing: string;
  /** The newest part's: writers that race to write the manifest write the same bytes. */
  createdAt: string;
}

/** What a folder holds: the indices of the part stores found, for each part count seen, and whether a manifest is there. */
export interface PartsFolder {
  counts: Map<number, number[]>;
  manifest: boolean;
}

export function scanPartsFolder(dir: string): PartsFolder {
  const counts = new Map<number, number[]>();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return { counts, manifest: false };
  for (const name of readdirSync(dir).sort()) {
    const ref = parsePartName(name);
    if (!ref || !statSync(join(dir, name)).isDirectory()) continue;
    counts.set(ref.count, [...(counts.get(ref.count) ?? []), ref.index]);
  }
  return { counts, manifest: existsSync(join(dir, MANIFEST)) };
}

/** Whether `dir` is the folder of a corpus in parts, finished or not. */
export function isPartsFolder(dir: string): boolean {
  const found = scanPartsFolder(dir);
  return found.manifest || found.counts.size > 0;
}

/** The manifest of a finished corpus in parts; a CorpusError naming the folder when it is missing or not one. */
export function readManifest(dir: string): CorpusManifest {
  const file = join(dir, MANIFEST);
  let manifest: CorpusManifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as CorpusManifest;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it has no manifest' : `its manifest cannot be read (${(err as Error).message})`;
    throw new CorpusError(`${dir} is not a finished corpus in parts: ${why}`);
  }
  if (manifest?.format !== MANIFEST_FORMAT || !Array.isArray(manifest.parts)) {
    throw new CorpusError(`${file} is not a codistill corpus manifest (no "${MANIFEST_FORMAT}" format)`);
  }
  if (manifest.version !== MANIFEST_VERSION) {
    throw new CorpusError(
      `${file} is a corpus manifest of version ${manifest.version}; this codistill reads version ${MANIFEST_VERSION}: ` +
        'rebuild the parts with `codistill ingest --part i/P --force`',
    );
  }
  return manifest;
}

/** Writes the manifest atomically (a temporary file renamed over it). */
export function writeManifest(dir: string, manifest: CorpusManifest): void {
  // Named by host and process: parts finishing at once on several machines of a shared file system never collide.
  const tmp = join(dir, `${MANIFEST}.${hostname()}-${process.pid}.tmp`);
  // A line a part, so that a manifest of thousands of parts stays readable.
  const { parts, ...rest } = manifest;
  const head = JSON.stringify(rest, null, 1).slice(0, -2);
  const text = `${head},\n "parts": [\n${parts.map((p) => `  ${JSON.stringify(p)}`).join(',\n')}\n ]\n}\n`;
  writeFileSync(tmp, text, { flush: true });
  renameSync(tmp, join(dir, MANIFEST));
}

/** Takes the manifest away before a part changes: until it is written again, the corpus is not used. */
export function removeManifest(dir: string): void {
  rmSync(join(dir, MANIFEST), { force: true });
}
