/**
 * Byte-pair encoding (Sennrich et al. 2016): learning merges from word counts, and applying them to a word.
 *
 * Learning is the algorithm of Hugging Face's BpeTrainer. We run it here because the Node binding of `tokenizers`
 * only exposes `train()` with the default trainer (30000 tokens, no minimum frequency, progress bars on stderr), so
 * vocabulary size and minimum frequency could not be set. Each step merges the most frequent adjacent pair; ties go
 * to the pair with the smaller symbol ids, so the result depends only on the counts. Pair counts are updated at the
 * merge sites and the heap is lazy (stale entries are re-checked when popped), so a step costs the occurrences of the
 * merged pair, not a pass over all words.
 *
 * Applying merges (BpeEncoder) is the library's rule: merge the adjacent pair of lowest rank until none is left.
 * Doing it here, with a word cache, encodes about ten times faster than the binding and keeps no native memory alive.
 */

export interface BpeTrainingInput {
  /** Distinct words (already mapped to the alphabet) and how often each occurs. */
  words: ReadonlyMap<string, number>;
  /** Tokens placed first (ids 0..): special tokens. No merge may produce one of them. */
  reserved: readonly string[];
  /** Single-symbol tokens that follow the reserved ones; every symbol of every word must be one of them. */
  alphabet: readonly string[];
  /** Stop when the vocabulary (reserved + alphabet + merged tokens) reaches this size. */
  vocabSize: number;
  /** Stop when the best pair occurs fewer times than this. */
  minFrequency: number;
}

export interface BpeModel {
  /** Token strings by id. */
  vocab: string[];
  /** Merges in the order they were learned (their rank). */
  merges: [string, string][];
}

/** Pair keys pack two symbol ids (each < 2^21) into one exact double. */
const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

export function learnBpe(input: BpeTrainingInput): BpeModel {
  if (input.vocabSize >= PAIR_SHIFT) throw new RangeError(`BPE vocabulary of ${input.vocabSize} is too large`);
  const vocab = [...input.reserved, ...input.alphabet];
  const idOf = new Map(vocab.map((tok, id) => [tok, id]));
  const reserved = new Set(input.reserved);

  // Each distinct word as a mutable symbol array; merges shrink it in place.
  const symbols: Int32Array[] = [];
  const lengths: number[] = [];
  const counts: number[] = [];
  for (const [word, count] of input.words) {
    const syms = new Int32Array(word.length);
    for (let i = 0; i < word.length; i++) {
      const id = idOf.get(word[i]);
      if (id === undefined) throw new Error(`BPE: symbol U+${word.charCodeAt(i).toString(16)} is not in the alphabet`);
      syms[i] = id;
    }
    symbols.push(syms);
    lengths.push(word.length);
    counts.push(count);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const addPair = (key: number, n: number, word: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + n);
    if (n > 0) {
      const list = pairWords.get(key);
      if (list) list.push(word);
      else pairWords.set(key, [word]);
    }
  };
  for (let w = 0; w < symbols.length; w++) {
    const s = symbols[w];
    for (let i = 0; i + 1 < lengths[w]; i++) addPair(pairKey(s[i], s[i + 1]), counts[w], w);
  }

  const heap = new PairHeap();
  for (const [key, n] of pairCount) heap.push(n, key);

  const merges: [string, string][] = [];
  const learned = new Set<number>();
  const lastVisit = new Int32Array(symbols.length).fill(-1);
  while (vocab.length < input.vocabSize && heap.size > 0) {
    const { count, key } = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < input.minFrequency) break;
    const a = Math.floor(key / PAIR_SHIFT);
    const b = key % PAIR_SHIFT;
    const merged = vocab[a] + vocab[b];
    // A merge spelling a special token would make ordinary text encode to it: never learn one. A pair merged once
    // can reappear when a later merge re-creates one of its symbols; keeping merges unique keeps ranks unambiguous.
    if (reserved.has(merged) || learned.has(key)) continue;
    learned.add(key);
    const where = pairWords.get(key) ?? [];
    pairWords.delete(key);

    // Two different pairs can spell the same token ("ab"+"c", "a"+"bc"): the second merge reuses the id.
    let id = idOf.get(merged);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(merged);
      idOf.set(merged, id);
    }
    merges.push([vocab[a], vocab[b]]);

    const grown = new Set<number>();
    const visit = merges.length;
    for (const w of where) {
      if (lastVisit[w] === visit) continue;
      lastVisit[w] = visit;
      const s = symbols[w];
      const n = counts[w];
      const len = lengths[w];
      let out = 0;
      for (let i = 0; i < len; i++) {
        if (i + 1 < len && s[i] === a && s[i + 1] === b) {
          // The neighbours' pairs change: (prev, a) becomes (prev, new) and (b, next) becomes (new, next).
          if (out > 0) {
            const prev = s[out - 1];
            addPair(pairKey(prev, a), -n, w);
            addPair(pairKey(prev, id), n, w);
            grown.add(pairKey(prev, id));
          }
          if (i + 2 < len) {
            const next = s[i + 2];
            addPair(pairKey(b, next), -n, w);
            addPair(pairKey(id, next), n, w);
            grown.add(pairKey(id, next));
          }
          s[out++] = id;
          i++;
        } else {
          s[out++] = s[i];
        }
      }
      lengths[w] = out;
    }
    // The merged pair itself no longer occurs anywhere; drop what the neighbour updates wrote to it.
    pairCount.delete(key);
    for (const k of grown) {
      const c = pairCount.get(k) ?? 0;
      if (c > 0) heap.push(c, k);
    }
  }
  return { vocab, merges };
}

/** Applies learned merges to words given as symbol ids. */
export class BpeEncoder {
  /** Pair key -> rank (index in the merge list) and the id of the merged token. */
  private readonly rank = new Map<number, number>();
  private readonly merged = new Map<number, number>();

  constructor(vocab: readonly string[], merges: readonly (readonly [string, string])[]) {
    const idOf = new Map(vocab.map((tok, id) => [tok, id]));
    merges.forEach(([a, b], rank) => {
      const ia = idOf.get(a);
      const ib = idOf.get(b);
      const out = idOf.get(a + b);
      if (ia === undefined || ib === undefined || out === undefined) {
        throw new Error(`BPE merge ${rank} ("${a}" "${b}") uses a token missing from the vocabulary`);
      }
      const key = pairKey(ia, ib);
      if (!this.rank.has(key)) {
        this.rank.set(key, rank);
        this.merged.set(key, out);
      }
    });
  }

  /** Merges `symbols` in place, lowest rank first, and returns the tokens. */
  encode(symbols: number[]): number[] {
    let s = symbols;
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.rank.get(pairKey(s[i], s[i + 1]));
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) return s;
      // Every occurrence of the pair, left to right: the tokens a later merge creates always rank after this one,
      // so this equals the library's one-merge-at-a-time order.
      const a = s[best];
      const b = s[best + 1];
      const id = this.merged.get(pairKey(a, b))!;
      let out = 0;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          s[out++] = id;
          i++;
        } else {
          s[out++] = s[i];
        }
      }
      s.length = out;
    }
  }
}

/** A binary max-heap of (count, pair key): higher count first, then the smaller key. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.before(l, best)) best = l;
        if (r < this.counts.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}
