/**
 * The reader actor: a stateless piscina worker that copies training windows out of the corpus (reader-messages.ts).
 *
 * It keeps nothing between tasks but an open handle per corpus and grow-only scratch arrays. A task's rows are
 * grouped by shard first, because `getBinaryFast` copies a whole shard (below 16 MiB) into one reused buffer that the
 * next read overwrites: each shard is read once and its windows are copied out at once. The filled buffers are moved
 * to the caller with piscina's transfer list, never structured-cloned.
 */
import { statSync } from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { Corpus, asTokens } from '../src/corpus/store.js';
import { type WindowTarget, bytesPerElement, copyWindows, windowDtype, windowView } from '../src/data/windows.js';
import type { ReadWindowsRequest, ReaderReply, ReaderRequest, WindowsReply } from './reader-messages.js';

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
    private readonly reply: WindowsReply,
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

function read(req: ReadWindowsRequest): WindowsReply {
  const { window, rows, rowsPerOutput, shards, windows, split } = req;
  if (!Number.isInteger(window) || window < 1) throw new Error(`bad window ${window}`);
  if (!Number.isInteger(rows) || rows < 0 || windows.length < 2 * rows) {
    throw new Error(`bad task: ${rows} rows but ${windows.length / 2} windows listed`);
  }
  if (!Number.isInteger(rowsPerOutput) || rowsPerOutput < 1) throw new Error(`bad rowsPerOutput ${rowsPerOutput}`);
  const corpus = corpusAt(req.corpusPath);
  const cols = window + 1;
  const dtype = windowDtype(req.format, corpus.meta.tokenDtype);
  const data: ArrayBuffer[] = [];
  const target: WindowTarget = { outputs: [], rowsPerOutput, cols };
  for (let first = 0, i = 0; first < rows; first += rowsPerOutput, i++) {
    const length = Math.min(rowsPerOutput, rows - first) * cols;
    const bytes = length * bytesPerElement(dtype);
    const spent = req.out?.[i];
    const buffer = spent && spent.byteLength >= bytes ? spent : new ArrayBuffer(bytes);
    data.push(buffer);
    target.outputs.push(windowView(buffer, dtype, length));
  }

  // Counting sort of the rows by shard slot: starts[s] .. starts[s+1] are slot s's rows.
  const starts = new Uint32Array(shards.length + 1);
  for (let r = 0; r < rows; r++) {
    const slot = windows[2 * r];
    if (slot >= shards.length) throw new Error(`row ${r} names shard slot ${slot} of ${shards.length}`);
    starts[slot + 1]++;
  }
  for (let s = 0; s < shards.length; s++) starts[s + 1] += starts[s];
  if (byShardRows.length < rows) {
    byShardRows = new Uint32Array(rows);
    byShardOffsets = new Uint32Array(rows);
  }
  const next = starts.slice(0, shards.length);
  for (let r = 0; r < rows; r++) {
    const p = next[windows[2 * r]]++;
    byShardRows[p] = r;
    byShardOffsets[p] = windows[2 * r + 1];
  }

  for (let s = 0; s < shards.length; s++) {
    const from = starts[s];
    const to = starts[s + 1];
    if (from === to) continue;
    const tokens = asTokens(corpus.shardBytesFast(split, shards[s]), corpus.meta.tokenDtype);
    for (let i = from; i < to; i++) {
      if (byShardOffsets[i] + cols > tokens.length) {
        throw new Error(
          `${req.corpusPath}: a window at token ${byShardOffsets[i]} of ${split} shard ${shards[s]} ` +
            `runs past its end (${tokens.length} tokens)`,
        );
      }
    }
    // Copy before the next read overwrites the shard buffer.
    copyWindows(tokens, target, byShardRows, byShardOffsets, from, to);
  }
  return { type: 'windows', data, rowsPerOutput, dtype, rows, cols, windows };
}

/** The piscina task handler. */
export default function reader(request: ReaderRequest): ReaderReply | ReturnType<typeof move> {
  try {
    switch (request.type) {
      case 'read': {
        const reply = read(request);
        return move(new MovedReply(reply, [...reply.data, reply.windows.buffer as ArrayBuffer]));
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
