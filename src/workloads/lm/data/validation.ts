/**
 * The validation windows: the first `count` windows of the validation split, in order, the same for every group and
 * every evaluation, so that losses are comparable across groups and steps. Read on the calling thread (evaluation
 * reads a few hundred windows, once per pass).
 */
import { type Corpus, CorpusError, asTokens } from '../corpus/store.js';
import type { TokenBatch } from '../tokens.js';
import { shardLayout, tokensInShard } from './partition.js';
import { windowsInShard } from './windows.js';

/** Up to `count` windows of `window`+1 tokens (fewer if the split holds fewer), as an int32 batch. */
export function readValidationWindows(corpus: Corpus, window: number, count: number): TokenBatch {
  if (!Number.isInteger(window) || window < 1) throw new RangeError(`window must be a positive integer, got ${window}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  const layout = shardLayout(corpus.meta, 'validation');
  const cols = window + 1;
  let available = 0;
  for (let s = 0; s < layout.shards && available < count; s++) available += windowsInShard(tokensInShard(layout, s), window);
  const rows = Math.min(count, available);
  if (rows === 0) {
    throw new CorpusError(`${corpus.path}: the validation split holds no window of ${cols} tokens`);
  }
  const data = new Int32Array(rows * cols);
  let row = 0;
  for (let s = 0; row < rows; s++) {
    // A reused buffer that the next read overwrites: copy the windows out before reading on.
    const tokens = asTokens(corpus.shardBytesFast('validation', s), corpus.meta.tokenDtype);
    const n = Math.min(windowsInShard(tokens.length, window), rows - row);
    for (let k = 0; k < n; k++, row++) data.set(tokens.subarray(k * window, k * window + cols), row * cols);
  }
  return { data, rows, cols };
}
