/**
 * The language model's predictor: a prompt in, the most likely next tokens out, in the corpus tokenizer's words.
 *
 * Input: a string, or `{ text }`. The text is encoded by the tokenizer stored with the corpus (the one whose ids the
 * model was trained on) and its last `model.window` tokens fill one batch row. A shorter prompt is left-padded with
 * the end-of-document token: the corpus writes that token after every document, so in training the text of a
 * document follows it, and a padded prompt reads as the start of a document after earlier ones (the LSTM runs left
 * to right from a zero state, so the padding is context it has seen, never tokens it must ignore). The row's last
 * token, the label slot of a training row (window + 1 tokens), is never read: it holds the padding token too.
 *
 * Answer: `{ next: [{ token, id, p }, ...] }`, the `topK` most likely next tokens (at most the vocabulary), most
 * likely first (ties: the lower id first). `token` is the token's text; a byte-level token that holds part of a
 * multi-byte character shows it as U+FFFD, and the end-of-document token as `<|eod|>`.
 */
import type { Config } from '../../config/schema.js';
import { describeValue } from '../predict-input.js';
import type { Predictor } from '../workload.js';
import { lmConfig } from './config.js';
import { readCorpusMeta } from './corpus/store.js';
import { loadTokenizer } from './corpus/tokenizer.js';

export function lmPredictor(config: Config): Predictor {
  const c = lmConfig(config);
  const tokenizer = loadTokenizer(readCorpusMeta(c.corpus.path).tokenizer);
  const T = c.model.window;
  const pad = tokenizer.eod;
  return {
    encode(input) {
      const text = typeof input === 'string' ? input : (input as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') {
        throw new Error(`the language model continues a text: pass a string or { text: string }, not ${describeValue(input)}`);
      }
      if (text.length === 0) throw new Error('the text is empty: the language model needs a prompt to continue');
      let ids: number[];
      try {
        ids = tokenizer.encode(text);
      } catch (err) {
        throw new Error(`the text cannot be encoded: ${(err as Error).message}`);
      }
      const row = new Int32Array(T + 1).fill(pad);
      const last = ids.slice(-T);
      row.set(last, T - last.length);
      // One row; its positions 0..T-1 predict the token after each input token: the answer is the last one's.
      return { batch: { rows: 1, fields: { tokens: row } }, positions: Int32Array.of(T - 1) };
    },
    decode(probs, classes, { topK }) {
      const k = Math.min(topK, classes);
      const order = Array.from({ length: classes }, (_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
      return { next: order.slice(0, k).map((id) => ({ token: tokenizer.decode([id]), id, p: probs[id] })) };
    },
  };
}
