/**
 * The encoder actor: a piscina worker that turns documents into token ids, so that `codistill ingest` tokenizes on
 * every core (src/protocol.ts, the encoder's protocol; corpus/encode-pool.ts is the other side).
 *
 * It loads the corpus tokenizer once, from the pool's workerData, and then serves requests of consecutive
 * documents: it reads each one from its file in small pieces, encodes it and appends the end-of-document token,
 * writing the ids straight into one buffer in the corpus dtype, which it moves back. The ids of a text do not
 * depend on which worker encodes it, nor on what it encoded before (the word cache only saves work), so the
 * shards the ingest packs from them are the same on any number of workers.
 *
 * Errors come back as data: an input error (a file that changed since it was scanned) keeps its message naming
 * the file, and says that the input is at fault.
 */
import { workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { EncodeRequest, EncodedReply, EncoderData } from '../src/protocol.js';
import { readDocumentChunks } from '../src/workloads/lm/corpus/inputs.js';
import { bytesPerToken, type TokenArray, tokenArrayType } from '../src/workloads/lm/corpus/store.js';
import { type CorpusTokenizer, loadTokenizer } from '../src/workloads/lm/corpus/tokenizer.js';
import { errorReply } from '../src/workloads/lm/corpus/worker-tasks.js';

let tokenizer: CorpusTokenizer | undefined;

function encode(req: EncodeRequest, tok: CorpusTokenizer, { dtype }: EncoderData): EncodedReply {
  const docs = req.documents;
  const width = bytesPerToken(dtype);
  const Ids = tokenArrayType(dtype);
  const tokenOffset = docs.length * Uint32Array.BYTES_PER_ELEMENT;
  const bytes = docs.reduce((sum, d) => sum + d.end - d.start, 0);
  // Text runs at about 4 bytes a token; at most one token a UTF-8 byte. Start at half the bytes, grow past that.
  const wanted = tokenOffset + (Math.ceil(bytes / 2) + docs.length) * width;
  let data = req.out && req.out.byteLength >= wanted ? req.out : new ArrayBuffer(wanted);
  let ids: TokenArray = new Ids(data, tokenOffset, Math.floor((data.byteLength - tokenOffset) / width));
  let n = 0;
  const room = (more: number) => {
    if (n + more <= ids.length) return;
    const grown = new ArrayBuffer(tokenOffset + Math.max(2 * ids.length, n + more) * width);
    const next = new Ids(grown, tokenOffset, (grown.byteLength - tokenOffset) / width);
    next.set(ids.subarray(0, n));
    data = grown;
    ids = next;
  };
  const emit = (word: readonly number[]) => {
    room(word.length);
    for (let i = 0; i < word.length; i++) ids[n++] = word[i];
  };
  const counts = new Uint32Array(docs.length);
  for (const [i, doc] of docs.entries()) {
    const start = n;
    const stream = tok.encodeStream(emit);
    for (const text of readDocumentChunks(doc, doc)) stream.push(text);
    stream.end();
    room(1);
    ids[n++] = tok.eod;
    counts[i] = n - start;
  }
  new Uint32Array(data, 0, docs.length).set(counts);
  return { type: 'encoded', data, documents: docs.length, tokenOffset, tokens: n };
}

/** The piscina task handler: one request, one reply (its buffer moved, not copied). */
export default function handler(req: EncodeRequest): unknown {
  try {
    if (req?.type !== 'encode') throw new Error(`unknown request type "${String(req?.type)}"`);
    const data = workerData as EncoderData;
    tokenizer ??= loadTokenizer(data.tokenizer);
    const reply = encode(req, tokenizer, data);
    // Piscina's Transferable shape (its symbols are not in its types): the reply, and the buffer to move with it.
    const movable = { [Piscina.transferableSymbol]: [reply.data], [Piscina.valueSymbol]: reply };
    return Piscina.move(movable as unknown as Parameters<typeof Piscina.move>[0]);
  } catch (err) {
    return errorReply(err);
  }
}
