/**
 * The reader actor: a stateless piscina worker that copies spans of training windows out of the corpus into chunks
 * (reader-messages.ts).
 *
 * It keeps nothing between tasks but an open handle per corpus and grow-only scratch arrays. A task's spans are
 * grouped by shard first, because `getBinaryFast` copies a whole shard (below 16 MiB) into one reused buffer that the
 * next read overwrites: each shard is read once and its spans are copied out at once, one memcpy a span, in the
 * corpus' own dtype. A task is a whole shuffle block, so nearly every byte read is delivered. The filled buffer is
 * moved to the caller with piscina's transfer list, never structured-cloned.
 */
import { statSync } from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { Corpus, asTokens, bytesPerToken } from '../src/corpus/store.js';
import { copySpans } from '../src/data/windows.js';
import type { ChunksReply, ReadSpansRequest, ReaderReply, ReaderRequest } from './reader-messages.js';

/** Open corpora by path, with the identity (device and inode) of the store directory they were opened at. */
const corpora = new Map<string, { corpus: Corpus; identity: string }>();

/**
 * The corpus at `path`, opened once per worker. A re-ingest renames a new store into place, so a changed directory
 * identity means the cached handle reads a deleted store: reopen it (one stat per task).
 */
function corpusAt(path: string): Corpus {
  const st = statSync(path, { throwIfNoEntry: false });
  const identity = st ? `${st.dev}:${st.ino}` : '';
  const cached = corpora.get(path);
  if (cached && cached.identity === identity) return cached.corpus;
  if (cached) {
    corpora.delete(path);
    cached.corpus.close();
  }
  const corpus = Corpus.open(path);
  corpora.set(path, { corpus, identity });
  return corpus;
}

/** A reply whose buffers piscina moves (its transfer list) instead of cloning. */
class MovedReply {
  constructor(
    private readonly reply: ChunksReply,
    private readonly buffers: ArrayBuffer[],
  ) {}

  get [transferableSymbol](): object {
    return this.buffers;
  }

  get [valueSymbol](): object {
    return this.reply;
  }
}

// Rows and offsets regrouped by shard; grow-only so that steady-state tasks allocate nothing here.
let byShardRows = new Uint32Array(0);
let byShardOffsets = new Uint32Array(0);

function read(req: ReadSpansRequest): ChunksReply {
  const { spanTokens: cols, rows, chunks, shards, spans, split } = req;
  if (!Number.isInteger(cols) || cols < 2) throw new Error(`bad spanTokens ${cols}`);
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`bad rows ${rows}`);
  const total = chunks * rows;
  if (!Number.isInteger(chunks) || chunks < 0 || spans.length < 2 * total) {
    throw new Error(`bad task: ${chunks} chunks of ${rows} rows but ${spans.length / 2} spans listed`);
  }
  const corpus = corpusAt(req.corpusPath);
  const dtype = corpus.meta.tokenDtype;
  const length = total * cols;
  const reserve = Math.max(chunks, req.reserveChunks ?? 0) * rows * cols * bytesPerToken(dtype);
  const data = req.out && req.out.byteLength >= length * bytesPerToken(dtype) ? req.out : new ArrayBuffer(reserve);
  const out = dtype === 'uint16' ? new Uint16Array(data, 0, length) : new Uint32Array(data, 0, length);

  // Counting sort of the spans by shard slot: starts[s] .. starts[s+1] are slot s's spans.
  const starts = new Uint32Array(shards.length + 1);
  for (let r = 0; r < total; r++) {
    const slot = spans[2 * r];
    if (slot >= shards.length) throw new Error(`span ${r} names shard slot ${slot} of ${shards.length}`);
    starts[slot + 1]++;
  }
  for (let s = 0; s < shards.length; s++) starts[s + 1] += starts[s];
  if (byShardRows.length < total) {
    byShardRows = new Uint32Array(total);
    byShardOffsets = new Uint32Array(total);
  }
  const next = starts.slice(0, shards.length);
  for (let r = 0; r < total; r++) {
    const p = next[spans[2 * r]]++;
    byShardRows[p] = r;
    byShardOffsets[p] = spans[2 * r + 1];
  }

  for (let s = 0; s < shards.length; s++) {
    const from = starts[s];
    const to = starts[s + 1];
    if (from === to) continue;
    const tokens = asTokens(corpus.shardBytesFast(split, shards[s]), dtype);
    for (let i = from; i < to; i++) {
      if (byShardOffsets[i] + cols > tokens.length) {
        throw new Error(
          `${req.corpusPath}: a span at token ${byShardOffsets[i]} of ${split} shard ${shards[s]} ` +
            `runs past its end (${tokens.length} tokens)`,
        );
      }
    }
    // Copy before the next read overwrites the shard buffer.
    copySpans(tokens, out, cols, byShardRows, byShardOffsets, from, to);
  }
  return { type: 'chunks', data, dtype, chunks, rows, cols, spans };
}

/** The piscina task handler. */
export default function reader(request: ReaderRequest): ReaderReply | ReturnType<typeof move> {
  try {
    switch (request.type) {
      case 'read': {
        const reply = read(request);
        return move(new MovedReply(reply, [reply.data, reply.spans.buffer as ArrayBuffer]));
      }
      default: {
        const unknown: never = request.type;
        return { type: 'error', message: `reader: unknown request type "${String(unknown)}"` };
      }
    }
  } catch (err) {
    return { type: 'error', message: `reader: ${err instanceof Error ? err.message : String(err)}` };
  }
}
