import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from 'tokenizers';
import { learnBpe } from '../src/workloads/lm/corpus/bpe.js';
import { bundledInputs } from '../src/workloads/lm/corpus/inputs.js';
import type { TokenizerMeta } from '../src/workloads/lm/corpus/store.js';
import { EOD_TOKEN, loadTokenizer, MIN_VOCAB_SIZE, TokenizerTrainer } from '../src/workloads/lm/corpus/tokenizer.js';
import { Random } from '../src/util/random.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'text');
const fixtureTexts = ['essays/bees.txt', 'essays/rivers.txt', 'letters/reply.txt', 'letters/to-a-friend.txt',
  'verse/counting.txt', 'verse/unicode-notes.txt'].map((f) => readFileSync(join(fixtures, f), 'utf8'));

function train(texts: readonly string[], vocabSize = 400, minFrequency = 1): TokenizerMeta {
  const trainer = new TokenizerTrainer({ vocabSize, minFrequency });
  for (const text of texts) {
    trainer.add(text);
    trainer.endDocument();
  }
  return trainer.finish();
}

t.test('the same text and settings give the same tokenizer, byte for byte, in any order', async (t) => {
  const a = train(fixtureTexts);
  const b = train([...fixtureTexts].reverse());
  t.equal(a.json, b.json);
  t.equal(a.sha256, b.sha256);
  t.not(train(fixtureTexts, 380).sha256, a.sha256, 'another vocabulary size gives another tokenizer');
});

t.test('the vocabulary has exactly corpus.vocabSize tokens, <|eod|> first, when the text allows it', async (t) => {
  const meta = train(fixtureTexts, 300);
  t.equal(meta.vocabSize, 300);
  t.equal(meta.eod, 0);
  const vocab = (JSON.parse(meta.json) as { model: { vocab: Record<string, number> } }).model.vocab;
  t.equal(Object.keys(vocab).length, 300);
  t.equal(vocab[EOD_TOKEN], 0);
});

t.test('minFrequency stops merging early on a small text', async (t) => {
  const meta = train(fixtureTexts, 4000, 5);
  t.ok(meta.vocabSize > MIN_VOCAB_SIZE && meta.vocabSize < 4000, `stopped at ${meta.vocabSize}`);
});

t.test('a vocabulary smaller than the byte alphabet is refused, naming the key', async (t) => {
  t.throws(() => new TokenizerTrainer({ vocabSize: 200, minFrequency: 1 }), /corpus\.vocabSize = 200 .* at least 243/);
  t.doesNotThrow(() => train(fixtureTexts, 256), 'the tiny preset (256) fits');
});

t.test('encode then decode gives back the text, whatever it holds', async (t) => {
  const tok = loadTokenizer(train(fixtureTexts));
  const samples = [
    ...fixtureTexts,
    'Unseen letters: ĳ ŋ ǆ, Ωμέγα, кириллица, עברית, العربية, हिन्दी, 한국어, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧪🧬',
    'control\tcharacters\u0001\u001f\r\n\u000b\u000c and trailing whitespace \n\n  ',
    `a document that mentions ${EOD_TOKEN} in its text`,
    '',
  ];
  for (const text of samples) {
    const ids = tok.encode(text);
    t.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize), 'ids are in the vocabulary');
    t.equal(tok.decode(ids), text, JSON.stringify(text.slice(0, 30)));
  }
  t.notOk(tok.encode(`x ${EOD_TOKEN} y`).includes(tok.eod), 'the text "<|eod|>" is not the end-of-document token');
  t.equal(tok.decode([...tok.encode('one'), tok.eod, ...tok.encode('two')]), `one${EOD_TOKEN}two`);
  t.equal(tok.decode([...tok.encode('one'), tok.eod], { skipEod: true }), 'one');
  t.throws(() => tok.encode('nul \0 inside'), /NUL/);
});

/** Seeded text full of the places where cutting is delicate: whitespace runs, newlines, punctuation, emoji. */
function trickyText(rng: Random, length: number): string {
  const atoms = ['a', 'b', 'é', 'Z', '7', '42', ' ', ' ', '  ', '\n', '\n\n', '\t', '.', ',', "'s", "'ll", '--', '😀', '日本', ' \n', '\r\n'];
  let text = '';
  while (text.length < length) text += atoms[rng.int(atoms.length)];
  return text;
}

/** `text` in pieces of 1 to `max` characters, never splitting a surrogate pair (as a streaming decoder delivers it). */
function pieces(rng: Random, text: string, max: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + 1 + rng.int(max));
    if (/[\ud800-\udbff]/.test(text[end - 1] ?? '')) end++;
    out.push(text.slice(at, end));
    at = end;
  }
  return out;
}

t.test('a document streamed in pieces encodes to the ids of the whole text', async (t) => {
  const rng = new Random(11);
  const tok = loadTokenizer(train([...fixtureTexts, trickyText(rng, 5000)]));
  for (const [i, text] of [...fixtureTexts, trickyText(rng, 20_000), trickyText(rng, 20_000)].entries()) {
    for (const max of [3, 40, 1000]) {
      const ids: number[] = [];
      const stream = tok.encodeStream((word) => ids.push(...word));
      for (const piece of pieces(rng, text, max)) stream.push(piece);
      stream.end();
      t.same(ids, tok.encode(text), `text ${i} in pieces of up to ${max}`);
    }
  }
});

t.test('a trainer fed pieces learns the tokenizer it learns from whole documents', async (t) => {
  const rng = new Random(5);
  const texts = [...fixtureTexts, trickyText(rng, 10_000)];
  const streamed = new TokenizerTrainer({ vocabSize: 400, minFrequency: 1 });
  for (const text of texts) {
    for (const piece of pieces(rng, text, 30)) streamed.add(piece);
    streamed.endDocument();
  }
  const whole = new TokenizerTrainer({ vocabSize: 400, minFrequency: 1 });
  for (const text of texts) {
    whole.add(text);
    whole.endDocument();
  }
  t.equal(streamed.finish().sha256, whole.finish().sha256);
});

t.test('the stored JSON encodes to the same ids in the Hugging Face tokenizers library', async (t) => {
  const book = readFileSync(bundledInputs().find((f) => f.name.endsWith('carroll-alice.txt'))!.path, 'latin1');
  const meta = train([book, ...fixtureTexts], 1000, 2);
  const ours = loadTokenizer(meta);
  const library = Tokenizer.fromString(meta.json);
  for (const text of [book.slice(0, 60_000), ...fixtureTexts]) {
    const theirs = (await library.encode(text, null, { addSpecialTokens: false })).getIds();
    t.same(ours.encode(text), theirs);
  }
});

t.test('loading refuses a tokenizer from another library, or a damaged one', async (t) => {
  const meta = train(fixtureTexts);
  t.throws(() => loadTokenizer({ ...meta, library: 'sentencepiece@0.2.0' }), /sentencepiece@0\.2\.0.*ingest --force/);
  t.throws(() => loadTokenizer({ ...meta, library: 'codistill-bpe@0' }), /codistill-bpe@0/);
  t.throws(() => loadTokenizer({ ...meta, json: meta.json.replace('"a"', '"b"') }), /does not match its sha256/);
});

t.test('BPE never learns a merge that spells a special token', async (t) => {
  const words = new Map([['<|eod|>', 1000], ['<|', 5]]);
  const alphabet = [...new Set('<|eod>')];
  const { vocab } = learnBpe({ words, reserved: ['<|eod|>'], alphabet, vocabSize: 50, minFrequency: 1 });
  t.equal(vocab.indexOf('<|eod|>'), 0, 'only the reserved entry spells it');
  t.equal(vocab.lastIndexOf('<|eod|>'), 0);
  t.ok(vocab.some((tok) => tok.length >= 5 && '<|eod|>'.includes(tok)), 'merges short of it are still learned');
});
