/**
 * The corpus tokenizer: a byte-level BPE (GPT-2 style) trained on the training split and stored in the corpus
 * metadata as a Hugging Face tokenizer.json.
 *
 * Byte level means text is first turned into its UTF-8 bytes, each byte one base symbol, so every text encodes
 * without an unknown token and decodes back to exactly the same string. Valid UTF-8 never holds the bytes C0, C1 and
 * F5..FF, and ingestion refuses NUL, so the base alphabet is the remaining 242 bytes; with `<|eod|>` (id 0) the
 * smallest vocabulary is 243. `<|eod|>` is an ordinary vocabulary entry, not a Hugging Face "added token": a
 * document that happens to contain the text "<|eod|>" encodes it as plain text, never as a document boundary.
 *
 * Words are split with GPT-2's pre-tokenizer regex, the one the library's ByteLevel pre-tokenizer uses; encoding and
 * training run here (bpe.ts). The stored JSON loads in the `tokenizers` library (checked when it is trained), which
 * encodes every text to the same ids except around letters added to Unicode after its regex tables (JavaScript's are
 * newer). The store records `codistill-bpe@1` as the library: the implementation whose ids are in the shards.
 */
import { createHash } from 'node:crypto';
import { Tokenizer } from 'tokenizers';
import { BpeEncoder, learnBpe } from './bpe.js';
import { CorpusError, type TokenizerMeta } from './store.js';

export const EOD_TOKEN = '<|eod|>';
export const EOD_ID = 0;

/** Name and version of the encoding implementation; bump the version whenever the ids of any text could change. */
export const TOKENIZER_LIBRARY_NAME = 'codistill-bpe';
export const TOKENIZER_LIBRARY = `${TOKENIZER_LIBRARY_NAME}@1`;

/** GPT-2's byte -> printable character table (what the library's ByteLevel pre-tokenizer and decoder use). */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) table.push(String.fromCharCode(printable(b) ? b : 256 + shifted++));
  return table;
})();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((ch, b) => [ch, b]));

/** Bytes that can occur in NUL-free valid UTF-8, in byte order. */
const ALPHABET: readonly string[] = BYTE_TO_CHAR.filter((_, b) => b !== 0 && b !== 0xc0 && b !== 0xc1 && b < 0xf5);

export const MIN_VOCAB_SIZE = 1 + ALPHABET.length;

/** GPT-2 pre-tokenization: contractions, letter runs, digit runs, other runs, each with at most one leading space. */
const WORD = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Encoded words kept for reuse; cleared when full (the ids never depend on it). */
const WORD_CACHE_SIZE = 100_000;

const utf8 = new TextEncoder();
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export interface TokenizerSettings {
  vocabSize: number;
  minFrequency: number;
}

/** Throws a CorpusError naming corpus.vocabSize when it cannot hold the byte alphabet and `<|eod|>`. */
export function checkVocabSize(vocabSize: number): void {
  if (vocabSize < MIN_VOCAB_SIZE) {
    throw new CorpusError(
      `corpus.vocabSize = ${vocabSize} is too small: a byte-level BPE needs at least ${MIN_VOCAB_SIZE} ` +
        `tokens (${ALPHABET.length} byte symbols and ${EOD_TOKEN})`,
    );
  }
}

/** Counts the words of the texts it is given, then learns the BPE. */
export class TokenizerTrainer {
  private readonly counts = new Map<string, number>();

  constructor(private readonly settings: TokenizerSettings) {
    checkVocabSize(settings.vocabSize);
  }

  private readonly words = new WordSplitter();

  /** Counts the words of the next piece of a document; call `endDocument()` after its last piece. */
  add(text: string): void {
    this.words.push(text, (word) => this.counts.set(word, (this.counts.get(word) ?? 0) + 1));
  }

  endDocument(): void {
    this.words.end((word) => this.counts.set(word, (this.counts.get(word) ?? 0) + 1));
  }

  finish(): TokenizerMeta {
    this.endDocument();
    const words = new Map<string, number>();
    // Sorted, so the merges never depend on the order the texts came in.
    for (const word of [...this.counts.keys()].sort()) {
      const symbols = byteSymbols(word);
      words.set(symbols, (words.get(symbols) ?? 0) + this.counts.get(word)!);
    }
    const { vocab, merges } = learnBpe({
      words,
      reserved: [EOD_TOKEN],
      alphabet: ALPHABET,
      vocabSize: this.settings.vocabSize,
      minFrequency: this.settings.minFrequency,
    });
    const json = tokenizerJson(vocab, merges);
    Tokenizer.fromString(json); // throws if the library would not read what we store
    const size = vocab.length;
    return { kind: 'bpe', library: TOKENIZER_LIBRARY, vocabSize: size, json, sha256: sha256(json), eod: EOD_ID };
  }
}

function byteSymbols(word: string): string {
  let symbols = '';
  for (const byte of utf8.encode(word)) symbols += BYTE_TO_CHAR[byte];
  return symbols;
}

/** A Hugging Face tokenizer.json for a byte-level BPE, keys in the library's own order. */
function tokenizerJson(vocab: readonly string[], merges: readonly [string, string][]): string {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((tok, id) => [tok, id])),
      merges,
    },
  });
}

/** A tokenizer loaded from a corpus store: encode, decode, and the end-of-document id. */
export class CorpusTokenizer {
  readonly eod: number;
  readonly vocabSize: number;
  private readonly vocab: string[];
  private readonly bpe: BpeEncoder;
  private readonly byteIds: number[];
  private readonly cache = new Map<string, readonly number[]>();

  constructor(meta: TokenizerMeta) {
    const model = (JSON.parse(meta.json) as { model: { vocab: Record<string, number>; merges: [string, string][] } })
      .model;
    this.vocab = [];
    for (const [tok, id] of Object.entries(model.vocab)) this.vocab[id] = tok;
    this.bpe = new BpeEncoder(this.vocab, model.merges);
    this.byteIds = BYTE_TO_CHAR.map((ch) => model.vocab[ch] ?? -1);
    this.eod = meta.eod;
    this.vocabSize = meta.vocabSize;
  }

  /** Token ids of `text` (no end-of-document token). */
  encode(text: string): number[] {
    const ids: number[] = [];
    this.encodeWords(text, (word) => {
      for (const id of word) ids.push(id);
    });
    return ids;
  }

  /** Streams the ids of `text` word by word (the arrays are shared: read them, do not keep them). */
  encodeWords(text: string, emit: (ids: readonly number[]) => void): void {
    for (const [word] of text.matchAll(WORD)) emit(this.encodeWord(word));
  }

  /**
   * Encodes a document that arrives in pieces: the ids are those of the whole text. Call `push` with each piece
   * and `end` after the last.
   */
  encodeStream(emit: (ids: readonly number[]) => void): { push(text: string): void; end(): void } {
    const words = new WordSplitter();
    const each = (word: string) => emit(this.encodeWord(word));
    return { push: (text) => words.push(text, each), end: () => words.end(each) };
  }

  private encodeWord(word: string): readonly number[] {
    let ids = this.cache.get(word);
    if (!ids) {
      ids = this.bpe.encode(this.byteIdsOf(word));
      if (this.cache.size >= WORD_CACHE_SIZE) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  private byteIdsOf(word: string): number[] {
    const symbols: number[] = [];
    for (const byte of utf8.encode(word)) {
      const id = this.byteIds[byte];
      // Only NUL and bytes that valid UTF-8 never holds are missing; JavaScript strings encode to valid UTF-8.
      if (id < 0) throw new CorpusError('cannot encode text holding a NUL character');
      symbols.push(id);
    }
    return symbols;
  }

  /** The text of `ids`; end-of-document tokens show as `<|eod|>` unless `skipEod`. */
  decode(ids: ArrayLike<number>, opts: { skipEod?: boolean } = {}): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (opts.skipEod && id === this.eod) continue;
      const tok = this.vocab[id];
      if (tok === undefined) throw new CorpusError(`token id ${id} is outside the vocabulary (${this.vocabSize})`);
      for (const ch of tok) bytes.push(CHAR_TO_BYTE.get(ch)!);
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
}

/** Rebuilds the stored tokenizer; refuses one from another implementation or one whose JSON does not match its hash. */
export function loadTokenizer(meta: TokenizerMeta): CorpusTokenizer {
  if (meta.kind !== 'bpe' || meta.library !== TOKENIZER_LIBRARY) {
    throw new CorpusError(
      `the corpus tokenizer is a ${meta.kind} tokenizer from ${meta.library}; this codistill reads ` +
        `${TOKENIZER_LIBRARY} BPE tokenizers: rebuild the corpus with \`codistill ingest --force\``,
    );
  }
  if (sha256(meta.json) !== meta.sha256) {
    throw new CorpusError(
      'the corpus tokenizer is damaged (its JSON does not match its sha256): run `codistill ingest --force`',
    );
  }
  return new CorpusTokenizer(meta);
}

/** Letters, digits, punctuation and symbols: never whitespace, in any regex engine. */
const WORD_END = /[\p{L}\p{N}\p{P}\p{S}]/u;

/**
 * Splits text that arrives in pieces into the words it would give in one piece. Words are emitted up to the last
 * "safe cut" of the text so far (a space or newline right after a letter, digit, punctuation mark or symbol) and
 * the rest waits for the next piece. No word spans a safe cut: words end before whitespace, and whitespace runs
 * start after it; and the regex matches at the cut without looking behind it. So the words, and hence the ids, are
 * those of the whole text.
 */
class WordSplitter {
  private carry = '';

  push(piece: string, each: (word: string) => void): void {
    const text = this.carry + piece;
    // The carry holds no safe cut (the last one is where it starts), so only places from its end on are new.
    const lowest = Math.max(1, this.carry.length);
    let cut = text.length - 1;
    while (cut >= lowest && !((text[cut] === ' ' || text[cut] === '\n') && WORD_END.test(text[cut - 1]))) cut--;
    if (cut < lowest) {
      this.carry = text; // no safe cut yet: a document holds at most corpus.maxDocumentBytes
      return;
    }
    for (const [word] of text.slice(0, cut).matchAll(WORD)) each(word);
    this.carry = text.slice(cut);
  }

  end(each: (word: string) => void): void {
    for (const [word] of this.carry.matchAll(WORD)) each(word);
    this.carry = '';
  }
}
