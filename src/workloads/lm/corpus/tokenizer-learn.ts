/**
 * Learning the corpus tokenizer, on one thread (the merges depend on every count: learning is not split up).
 *
 * During an ingest it learns from a sample of the training split (plan.ts, tokenizerSample). Ahead of a corpus in
 * parts, `codistill tokenizer learn` learns it once for all parts without reading the whole input: it reads an evenly
 * spaced sample of the input files, as many as corpus.tokenizerSampleBytes holds, splits their documents with the
 * corpus' seeded split and learns from the same sample of their training side. When every input fits in that budget,
 * that is exactly what an ingest of the inputs in one piece learns.
 */
import type { CorpusConfig } from '../config.js';
import { CorpusError } from './errors.js';
import type { IngestProgress } from './ingest.js';
import { type InputFile, listInputs, readDocumentChunks, scanFiles } from './inputs.js';
import { type PlannedDocument, settingsOf, splitDocuments, tokenizerSample } from './plan.js';
import type { TokenizerMeta } from './store.js';
import { TokenizerTrainer } from './tokenizer.js';
import type { LearnedFrom } from './tokenizer-file.js';

/** Learns the tokenizer from the training documents among `docs` (at most corpus.tokenizerSampleBytes of them). */
export async function learnTokenizer(
  docs: readonly PlannedDocument[],
  corpus: CorpusConfig,
  report: (p: IngestProgress) => void,
): Promise<{ meta: TokenizerMeta; documents: number; bytes: number }> {
  const trainer = new TokenizerTrainer(corpus);
  const sample = tokenizerSample(docs, corpus.tokenizerSampleBytes);
  if (sample.length === 0) throw new CorpusError('the training split is empty: no text to learn a tokenizer from');
  const bytesTotal = sample.reduce((sum, d) => sum + d.span.end - d.span.start, 0);
  let bytesDone = 0;
  for (const [i, doc] of sample.entries()) {
    for (const text of readDocumentChunks(doc.file, doc.span)) trainer.add(text);
    trainer.endDocument();
    bytesDone += doc.span.end - doc.span.start;
    report({ phase: 'tokenizer', bytesDone, bytesTotal, tokens: 0, documents: i + 1 });
  }
  return { meta: trainer.finish(), documents: sample.length, bytes: bytesTotal };
}

/**
 * The files a tokenizer learned ahead of an ingest reads: all of them when they fit in `budget` bytes, else every
 * k-th (k = ceil(total / budget)) until the budget is spent, at least one, so the sample spans the whole list.
 */
export function sampleFiles(files: readonly InputFile[], budget: number): InputFile[] {
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  const stride = Math.max(1, Math.ceil(total / budget));
  const chosen: InputFile[] = [];
  let bytes = 0;
  for (let i = 0; i < files.length; i += stride) {
    if (bytes + files[i].bytes > budget && chosen.length > 0) break;
    chosen.push(files[i]);
    bytes += files[i].bytes;
  }
  return chosen;
}

/** `codistill tokenizer learn`: the tokenizer of corpus.inputs, learned from a sample of the files (see above). */
export async function learnFromInputs(
  corpus: CorpusConfig,
  seed: number,
  report: (p: IngestProgress) => void = () => {},
): Promise<{ meta: TokenizerMeta; learnedFrom: LearnedFrom }> {
  const files = listInputs(corpus.inputs);
  const chosen = sampleFiles(files, corpus.tokenizerSampleBytes);
  const scanned = await scanFiles(chosen, corpus.maxDocumentBytes, corpus.invalidUtf8, (bytesDone, bytesTotal, documents) =>
    report({ phase: 'scan', bytesDone, bytesTotal, tokens: 0, documents }),
  );
  const docs = splitDocuments(scanned, seed, corpus.validationFraction);
  if (docs.length === 0) {
    throw new CorpusError(
      `no text to learn a tokenizer from: the ${scanned.length} file(s) sampled are invalid UTF-8 and corpus.invalidUtf8=skip leaves them out ` +
        `(first: ${scanned[0].path}); set corpus.invalidUtf8=replace to keep them`,
    );
  }
  const learned = await learnTokenizer(docs, corpus, report);
  const settings = settingsOf(corpus, seed, scanned.some((f) => f.invalidUtf8 !== undefined));
  return {
    meta: learned.meta,
    learnedFrom: { files: files.length, sampledFiles: chosen.length, documents: learned.documents, bytes: learned.bytes, settings },
  };
}
