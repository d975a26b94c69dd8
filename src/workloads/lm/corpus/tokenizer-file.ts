/**
 * A tokenizer of its own, outside any corpus: the file `codistill tokenizer learn` writes and `corpus.tokenizer`
 * names, so that the parts of a corpus, ingested on many machines, all encode with one tokenizer. corpus.tokenizer
 * may also name an existing corpus store (in one piece or in parts): its tokenizer is taken.
 *
 * The file is JSON: the tokenizer exactly as a corpus stores it (the Hugging Face tokenizer.json as text, with that
 * text's sha256, which every part records) and what it was learned from. It is written to a temporary name and
 * renamed into place.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { CorpusError } from './errors.js';
import { type Settings } from './plan.js';
import { readCorpusMeta, type TokenizerMeta } from './store.js';
import { loadTokenizer } from './tokenizer.js';

export const TOKENIZER_FILE_FORMAT = 'codistill-tokenizer';
export const TOKENIZER_FILE_VERSION = 1;

/** What a tokenizer file says it was learned from. */
export interface LearnedFrom {
  /** Input files listed, files read for the sample, and the sample's documents and bytes. */
  files: number;
  sampledFiles: number;
  documents: number;
  bytes: number;
  settings: Settings;
}

export interface TokenizerFile {
  format: typeof TOKENIZER_FILE_FORMAT;
  version: number;
  tokenizer: TokenizerMeta;
  learnedFrom: LearnedFrom;
  createdAt: string;
}

export function writeTokenizerFile(path: string, file: TokenizerFile): void {
  const tmp = `${path}.partial-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(file)}\n`, { flush: true });
  renameSync(tmp, path);
}

/** The tokenizer file at `path`, checked (format, library, hash); a CorpusError naming the file otherwise. */
export function readTokenizerFile(path: string): TokenizerFile {
  let file: TokenizerFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as TokenizerFile;
  } catch (err) {
    throw new CorpusError(`corpus.tokenizer ${path} cannot be read as a tokenizer file: ${(err as Error).message}`);
  }
  if (file?.format !== TOKENIZER_FILE_FORMAT || typeof file.tokenizer !== 'object') {
    throw new CorpusError(`corpus.tokenizer ${path} is not a codistill tokenizer file (written by \`codistill tokenizer learn\`) nor a corpus store`);
  }
  if (file.version !== TOKENIZER_FILE_VERSION) {
    throw new CorpusError(`corpus.tokenizer ${path} is a tokenizer file of version ${file.version}; this codistill reads version ${TOKENIZER_FILE_VERSION}`);
  }
  checkTokenizer(path, file.tokenizer);
  return file;
}

/**
 * The tokenizer that corpus.tokenizer names: a tokenizer file, or the tokenizer of the corpus store at that path.
 * Errors name the key and the path.
 */
export function readTokenizerSource(source: string): TokenizerMeta {
  if (!existsSync(source)) {
    throw new CorpusError(
      `corpus.tokenizer ${source} does not exist: learn it with \`codistill tokenizer learn -s corpus.tokenizer=${source}\` ` +
        '(with the inputs and settings of the corpus), or name an existing corpus store',
    );
  }
  if (!statSync(source).isDirectory()) return readTokenizerFile(source).tokenizer;
  let meta: TokenizerMeta;
  try {
    meta = readCorpusMeta(source).tokenizer;
  } catch (err) {
    throw new CorpusError(`corpus.tokenizer ${source} is a folder but not a corpus store to take the tokenizer from: ${(err as Error).message}`);
  }
  checkTokenizer(source, meta);
  return meta;
}

function checkTokenizer(source: string, meta: TokenizerMeta): void {
  try {
    loadTokenizer(meta);
  } catch (err) {
    throw new CorpusError(`corpus.tokenizer ${source}: ${(err as Error).message}`);
  }
}
