/**
 * The reader actor: a piscina worker that feeds batch streams with chunks of training windows (reader-messages.ts).
 *
 * Its one task, `serve`, loops until told to stop: take every message waiting on its port, then read one granted task
 * of each open feed, and sleep on the doorbell when nothing is granted. A feed is a group's data order (order.ts)
 * rebuilt here from the stream's spec; this reader plans its own tasks (j mod readers = its index) and steps over
 * the others' without planning them, so the stream's thread never plans spans or waits to hand out work.
 *
 * A read (`readSpans`) takes the task's shards one at a time, because `getBinaryFast` copies a whole shard (below
 * 16 MiB) into one reused buffer that the next read overwrites: each shard is read once and the region its spans lie
 * in is copied out at once, one memcpy a shard (a memcpy a span cost a quarter more: about 55 ns a call on top of
 * the bytes), in the corpus' own dtype, with a row table saying where each span landed. A task is a whole shuffle
 * block, so nearly every byte read is delivered. The filled buffer is transferred to the stream, never cloned.
 *
 * A failure fails the feed it happened in, with an error reply naming this reader ("reader 1: ..."), which says
 * whether the input is at fault (a missing or damaged corpus: `fault: false`) or the reader is. A message the loop
 * cannot handle ends the serve task (the pool fails every feed). Fault injection: a `fault` message makes the reader
 * throw for a feed, or end its worker.
 */
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { Corpus, asTokens, bytesPerToken, corpusIdentity, tokenArrayType } from '../src/workloads/lm/corpus/store.js';
import { type DataOrder, type SpanPlanner, groupOrder } from '../src/workloads/lm/data/order.js';
import type {
  FeedSpec, FromReader, ReadSpansRequest, ReadSpansResult, ServeRequest, ServeResult, ToReader,
} from '../src/protocol.js';
import { enactFault } from '../src/train/faults.js';
import { RequestError } from '../src/util/actor.js';

/** Open corpora by path, with the identity (corpusIdentity) of the store they were opened at. */
const corpora = new Map<string, { corpus: Corpus; identity: string }>();

/**
 * The corpus at `path`, opened once per worker. A re-ingest renames a new store into place, so a changed directory
 * identity means the cached handle reads a deleted store: reopen it (one stat per call).
 */
function corpusAt(path: string): Corpus {
  const identity = corpusIdentity(path);
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

// Per shard slot of a read: the first and last span start, and where its region goes; grow-only scratch.
let lows = new Uint32Array(0);
let highs = new Int32Array(0);
let regions = new Uint32Array(0);

/**
 * Reads the spans of `req` into one buffer laid out as ChunksReply describes: per shard, one copy of the region from
 * its first span's start to its last span's end, and a row table of where each span landed. Throws an Error naming
 * the corpus, shard and span on bad input.
 */
export function readSpans(req: ReadSpansRequest, corpus: Corpus = corpusAt(req.corpusPath)): ReadSpansResult {
  const { spanTokens: cols, rows, chunks, shards, spans, split } = req;
  if (!Number.isInteger(cols) || cols < 2) throw new RequestError(`bad spanTokens ${cols}`);
  if (!Number.isInteger(rows) || rows < 1) throw new RequestError(`bad rows ${rows}`);
  const total = chunks * rows;
  if (!Number.isInteger(chunks) || chunks < 0 || spans.length < 2 * total) {
    throw new RequestError(`bad task: ${chunks} chunks of ${rows} rows but ${spans.length / 2} spans listed`);
  }
  const slots = shards.length;
  if (lows.length < slots) {
    lows = new Uint32Array(slots);
    highs = new Int32Array(slots);
    regions = new Uint32Array(slots);
  }
  lows.fill(0xffffffff, 0, slots);
  highs.fill(-1, 0, slots);
  for (let r = 0; r < total; r++) {
    const slot = spans[2 * r];
    if (slot >= slots) throw new RequestError(`span ${r} names shard slot ${slot} of ${slots}`);
    const at = spans[2 * r + 1];
    if (at < lows[slot]) lows[slot] = at;
    if (at > highs[slot]) highs[slot] = at;
  }
  let tokens = 0;
  for (let s = 0; s < slots; s++) {
    regions[s] = tokens;
    if (highs[s] >= 0) tokens += highs[s] - lows[s] + cols;
  }

  const dtype = corpus.meta.tokenDtype;
  const tokenOffset = total * Uint32Array.BYTES_PER_ELEMENT;
  const bytes = tokenOffset + tokens * bytesPerToken(dtype);
  const data = req.out && req.out.byteLength >= bytes ? req.out : new ArrayBuffer(Math.max(bytes, req.reserveBytes ?? 0));
  const out = new (tokenArrayType(dtype))(data, tokenOffset, tokens);
  for (let s = 0; s < slots; s++) {
    if (highs[s] < 0) continue;
    const shard = asTokens(corpus.shardBytesFast(split, shards[s]), dtype);
    const end = highs[s] + cols;
    if (end > shard.length) {
      throw new RequestError(
        `${req.corpusPath}: a span at token ${highs[s]} of ${split} shard ${shards[s]} runs past its end ` +
          `(${shard.length} tokens)`,
      );
    }
    // One copy a shard, before the next read overwrites the shard buffer.
    out.set(shard.subarray(lows[s], end), regions[s]);
  }
  const rowStarts = new Uint32Array(data, 0, total);
  for (let r = 0; r < total; r++) {
    const slot = spans[2 * r];
    rowStarts[r] = regions[slot] + spans[2 * r + 1] - lows[slot];
  }
  return { data, dtype, tokenOffset, tokens };
}

/** A feed as one reader sees it: its own tasks of a group's stream. */
class Feed {
  private readonly corpus: Corpus;
  private readonly order: DataOrder;
  private readonly planner: SpanPlanner;
  /** Bytes of a new task buffer: room for any task of the order. */
  private readonly reserve: number;
  /** The next task of this reader (its planner is positioned there), and how many of the feed's tasks are granted. */
  private task: number;
  private granted = 0;
  private readonly buffers: ArrayBuffer[] = [];
  private spans: Uint32Array | undefined;
  failed = false;

  constructor(
    readonly id: number,
    private readonly spec: FeedSpec,
    private readonly readers: number,
    reader: number,
  ) {
    this.corpus = corpusAt(spec.corpusPath);
    this.order = groupOrder(spec, this.corpus.meta); // the store it reads, not another open of the path
    this.reserve = this.order.taskBytes(bytesPerToken(this.corpus.meta.tokenDtype));
    this.planner = this.order.planner(spec.cursor);
    this.task = reader;
    for (let j = 0; j < reader; j++) this.planner.stepOver();
  }

  grant(task: number, buffer?: ArrayBuffer): void {
    this.granted = Math.max(this.granted, task + 1);
    if (buffer) this.buffers.push(buffer);
  }

  /** Reads this reader's next task if it is granted; false when there is nothing to do. */
  produce(port: MessagePort): boolean {
    if (this.failed || this.task >= this.granted) return false;
    const o = this.order;
    const plan = this.planner.next(this.spans);
    this.spans = plan.spans;
    const read = readSpans({
      corpusPath: this.spec.corpusPath, split: this.spec.split, spanTokens: o.spanTokens, rows: o.batch,
      chunks: plan.chunks, shards: plan.shards, spans: plan.spans, out: this.buffers.pop(),
      reserveBytes: this.reserve,
    }, this.corpus);
    const reply: FromReader = {
      type: 'chunks', feed: this.id, task: this.task, epoch: plan.epoch, firstChunk: plan.firstChunk,
      chunks: plan.chunks, rows: o.batch, cols: o.spanTokens, ...read,
    };
    port.postMessage(reply, [read.data]);
    for (let j = 1; j < this.readers; j++) this.planner.stepOver();
    this.task += this.readers;
    return true;
  }

  /** The task a failure is charged to: the next one this reader owes. */
  get pending(): number {
    return this.task;
  }
}

/**
 * Whether an error is the input's fault rather than the reader's: the corpus store's own errors (missing, damaged,
 * replaced) and a read the corpus cannot serve; the same read would fail on any reader.
 */
const inputError = (err: unknown): boolean => err instanceof Error && (err.name === 'CorpusError' || err.name === 'RequestError');

/**
 * The reader's loop: messages first, then one task of each feed with a grant, round after round; the doorbell wakes
 * it when there was nothing to do. Ends (resolving the piscina task) on `stop`.
 */
function serve({ port, doorbell, reader, readers }: ServeRequest): ServeResult {
  const bell = new Int32Array(doorbell);
  const feeds = new Map<number, Feed>();
  /** Fails a feed at `task`; `input`: the feed's input is at fault (else the reader is, unless the error says so). */
  const fail = (feed: number, task: number, err: unknown, input = false): void => {
    const message = `reader ${reader}: ${err instanceof Error ? err.message : String(err)}`;
    const reply: FromReader = { type: 'error', feed, task, reader, message, fault: !(input || inputError(err)) };
    port.postMessage(reply);
  };
  for (;;) {
    const rung = Atomics.load(bell, 0);
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
      const msg = m.message as ToReader;
      switch (msg.type) {
        case 'open':
          try {
            feeds.set(msg.feed, new Feed(msg.feed, msg.spec, readers, reader));
          } catch (err) {
            // The stream built the same order from the same corpus a moment ago: what fails here is the input.
            fail(msg.feed, reader, err, true);
          }
          break;
        case 'grant':
          feeds.get(msg.feed)?.grant(msg.task, msg.buffer);
          break;
        case 'close':
          feeds.delete(msg.feed);
          break;
        case 'stop':
          port.close();
          return { type: 'stopped' };
        case 'fault':
          // Fault injection: 'exit' ends this worker here; 'throw' fails the feed as a bug in reading it would.
          try {
            enactFault(msg.kind, `injected fault at batch ${msg.atBatch}`);
          } catch (err) {
            const feed = feeds.get(msg.feed);
            if (feed) feed.failed = true;
            fail(msg.feed, msg.task, err);
          }
          break;
        default: {
          const unknown: never = msg;
          throw new Error(`unknown message ${JSON.stringify(unknown)}`);
        }
      }
    }
    let busy = false;
    for (const feed of feeds.values()) {
      try {
        if (feed.produce(port)) busy = true;
      } catch (err) {
        feed.failed = true;
        fail(feed.id, feed.pending, err);
      }
    }
    if (!busy) Atomics.wait(bell, 0, rung);
  }
}

/** The piscina task handler. */
export default function handler(request: ServeRequest): ServeResult {
  if (request?.type !== 'serve') throw new Error(`unknown request type "${String(request?.type)}"`);
  return serve(request);
}
