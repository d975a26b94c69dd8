/**
 * A corpus built in parts (`codistill ingest --part i/P`, one machine or job step a part): which input files each
 * part ingests, the checks that every part belongs to one corpus, and the manifest the last part to finish writes.
 *
 * Parts get whole files. Every part lists the same inputs (in the same order, with the same sizes) and deals them
 * alike, so the parts are disjoint and cover the list without talking to each other: each file in turn goes to the
 * part holding the fewest bytes so far (the lowest-numbered on a tie). That balances the parts' bytes to within a
 * file, and deals neighbouring files to different parts, so each part is a sample of the whole list.
 *
 * Parts of one corpus share the tokenizer (corpus.tokenizer), the ingest version and every setting that changes
 * shards; a part that does not is refused, naming the part and what differs, before it is built next to the others
 * and again when the manifest is written. The manifest (parts-folder.ts) is written last, once all parts are there.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CorpusError } from './errors.js';
import type { InputFile } from './inputs.js';
import {
  type CorpusManifest,
  MANIFEST,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  partLabel,
  partName,
  type PartRef,
  parsePartName,
  readManifest,
  scanPartsFolder,
  writeManifest,
} from './parts-folder.js';
import type { Settings } from './plan.js';
import { type CorpusMeta, readCorpusMeta } from './store.js';

/** sha256 of the input list as every part sees it: each file's name and size, in order (no file is read). */
export function listingFingerprint(files: readonly InputFile[]): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${JSON.stringify([f.name, f.bytes])}\n`);
  return hash.digest('hex');
}

/** The files of part `part` (see the header), in listing order; a CorpusError when it gets none. */
export function filesOfPart(files: readonly InputFile[], part: PartRef): InputFile[] {
  const loads = new Array<number>(part.count).fill(0);
  const mine: InputFile[] = [];
  for (const file of files) {
    let least = 0;
    for (let p = 1; p < part.count; p++) if (loads[p] < loads[least]) least = p;
    loads[least] += file.bytes;
    if (least === part.index) mine.push(file);
  }
  if (mine.length === 0) {
    throw new CorpusError(
      `${partLabel(part)} gets no input files: ${files.length} file(s) cannot fill ${part.count} parts (parts get whole files); use at most ${files.length} parts`,
    );
  }
  return mine;
}

/**
 * Readies corpus.path for a part and returns the part's store path. The folder may be new, empty, or hold parts of
 * this corpus; a corpus in one piece, parts of another count or anything else there is refused.
 */
export function preparePartsFolder(dir: string, part: PartRef): string {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new CorpusError(`corpus.path ${dir} is a file, not the folder of a corpus in parts`);
    if (existsSync(join(dir, 'data.mdb'))) {
      throw new CorpusError(`corpus.path ${dir} holds a corpus built in one piece; a corpus in parts needs a folder of its own (set corpus.path)`);
    }
    const stray = readdirSync(dir).filter((name) => !belongsToParts(name));
    if (stray.length > 0) {
      throw new CorpusError(`corpus.path ${dir} holds other files (${stray.slice(0, 3).join(', ')}): not writing a corpus in parts into it (set corpus.path to a new folder)`);
    }
    const other = [...scanPartsFolder(dir).counts.keys()].filter((count) => count !== part.count);
    if (other.length > 0) {
      throw new CorpusError(
        `corpus.path ${dir} holds a corpus in ${other[0]} parts, not ${part.count}: run --part i/${other[0]}, or remove the folder to build it in ${part.count} parts`,
      );
    }
  }
  mkdirSync(dir, { recursive: true });
  return join(dir, partName(part));
}

/** A part's folder, a part's unfinished or replaced write, or the manifest and its temporary files. */
function belongsToParts(name: string): boolean {
  if (name === MANIFEST || name.startsWith(`${MANIFEST}.`)) return true;
  return parsePartName(name.replace(/\.(partial|old)-\d+$/, '')) !== undefined;
}

/** Settings of a part that the other parts of its corpus must share: all but which part it is and the UTF-8 policy. */
function shared(settings: Settings | undefined): Settings {
  const { part: _part, invalidUtf8: _policy, ...rest } = settings ?? {};
  return rest;
}

/** What part `b` differs from part `a` in, of what they must share ("tokenizer (sha256 ..., not ...)"); undefined if nothing. */
function difference(a: CorpusMeta, b: Pick<CorpusMeta, 'tokenizer' | 'inputs'>): string | undefined {
  if (a.tokenizer.sha256 !== b.tokenizer.sha256) {
    return `tokenizer (sha256 ${b.tokenizer.sha256.slice(0, 12)}, not ${a.tokenizer.sha256.slice(0, 12)})`;
  }
  const sa = shared(a.inputs.settings);
  const sb = shared(b.inputs.settings);
  if (sa.ingest !== sb.ingest) return `codistill ingest version (${sb.ingest ?? 'unknown'}, not ${sa.ingest})`;
  if (sa.listing !== sb.listing) return 'input list (every part must list the same inputs, with the same sizes)';
  const keys = [...new Set([...Object.keys(sa), ...Object.keys(sb)])].filter((k) => sa[k] !== sb[k]);
  if (keys.length > 0) return `settings: ${keys.map((k) => `${k} ${sb[k] ?? '(unset)'}, not ${sa[k] ?? '(unset)'}`).join('; ')}`;
  return undefined;
}

/** The metadata of every part of `count` built in `dir` so far, by index; a part that cannot be read is an error naming it. */
function builtParts(dir: string, count: number): Map<number, CorpusMeta> {
  const found = new Map<number, CorpusMeta>();
  for (const index of scanPartsFolder(dir).counts.get(count) ?? []) {
    const path = join(dir, partName({ index, count }));
    try {
      found.set(index, readCorpusMeta(path));
    } catch (err) {
      throw new CorpusError(`${partLabel({ index, count })} at ${path} cannot be used: ${(err as Error).message}`);
    }
  }
  return found;
}

/**
 * Refuses to build `part` with `meta` (its settings and tokenizer) next to parts that were built otherwise: the
 * message names the first such part and what differs.
 */
export function checkSiblingParts(dir: string, part: PartRef, meta: Pick<CorpusMeta, 'tokenizer' | 'inputs'>): void {
  for (const [index, other] of builtParts(dir, part.count)) {
    if (index === part.index) continue;
    const why = difference(other, meta);
    if (why) {
      throw new CorpusError(
        `not building ${partLabel(part)} into ${dir}: it differs from ${partLabel({ index, count: part.count })} there in its ${why}. ` +
          'The parts of a corpus share one corpus.tokenizer and the settings: use the config the other parts were built with, ' +
          'or remove the folder to build every part again',
      );
    }
  }
}

/** How far a corpus in parts is: the parts built, those still missing, and the manifest once every part is there. */
export interface PartsProgress {
  count: number;
  built: number[];
  missing: number[];
  manifest?: CorpusManifest;
}

/**
 * Writes the manifest of the corpus in `dir` if all `count` parts are there and agree (left as it is when it already
 * says the same); otherwise says which parts are missing. A part that disagrees with part 0 is an error naming it.
 */
export function completeParts(dir: string, count: number): PartsProgress {
  const parts = builtParts(dir, count);
  const built = [...parts.keys()].sort((a, b) => a - b);
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !parts.has(i));
  if (missing.length > 0) return { count, built, missing };
  const metas = built.map((i) => parts.get(i)!);
  const first = metas[0];
  for (const [index, meta] of metas.entries()) {
    const why = difference(first, meta);
    if (why) {
      throw new CorpusError(
        `the corpus in ${dir} is not finished: ${partLabel({ index, count })} differs from part 0/${count} in its ${why}: ` +
          `rebuild it with \`codistill ingest --part ${index}/${count} --force\` and the config of the other parts`,
      );
    }
  }
  const hash = createHash('sha256');
  for (const meta of metas) hash.update(`${meta.inputs.fingerprint}\n`);
  const manifest: CorpusManifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    fingerprint: hash.digest('hex'),
    parts: metas.map((meta, index) => ({ path: partName({ index, count }), fingerprint: meta.inputs.fingerprint, splits: meta.splits })),
    tokenizer: { library: first.tokenizer.library, sha256: first.tokenizer.sha256, vocabSize: first.tokenizer.vocabSize },
    tokenDtype: first.tokenDtype,
    shardTokens: first.shardTokens,
    listing: String(first.part?.listing ?? ''),
    createdAt: metas.map((m) => m.createdAt).sort().at(-1)!,
  };
  if (!sameManifest(dir, manifest)) writeManifest(dir, manifest);
  return { count, built, missing, manifest };
}

function sameManifest(dir: string, manifest: CorpusManifest): boolean {
  if (!existsSync(join(dir, MANIFEST))) return false;
  try {
    return JSON.stringify(readManifest(dir)) === JSON.stringify(manifest);
  } catch {
    return false;
  }
}
