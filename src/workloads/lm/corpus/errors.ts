/** The corpus' own error: bad input, a store or part that cannot be used, a setting that cannot work. */
export class CorpusError extends Error {
  override name = 'CorpusError';
}
