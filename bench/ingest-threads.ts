/**
 * Ingest on 1 and on 2 encoder threads, on at least 2 GB of input, in the same run: tokens/s of each, their ratio,
 * each run's peak RSS, and whether the two stores hold the same shards. Then 2 threads on a tenth of the input: its
 * peak RSS against the whole input's says whether memory stays flat as the input grows.
 *
 *   npm run bench -- ingest-threads                      # 2048 MB of input
 *   npm run build && node dist/bench/ingest-threads.js --mb 300
 *
 * The input is the bundled corpus written again and again (as UTF-8) into a folder under the system's temporary
 * directory, removed afterwards. The tokenizer is learned once beforehand (`codistill tokenizer learn`, timed on its
 * own), and both ingests take it from corpus.tokenizer, as the parts of a corpus do: what is compared is the ingest
 * proper, scan, encode and write, which is what grows with the input. Each ingest runs in a fresh process of its own,
 * after the input has been read once, so both find it in the page cache and each peak RSS is that ingest's alone.
 * On a shared machine, each run also says how many cores other work kept busy while it ran.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LM_DEFAULTS } from '../src/workloads/lm/config.js';
import { Corpus, SPLITS } from '../src/workloads/lm/corpus/store.js';
import { TOKENIZER_FILE_FORMAT, TOKENIZER_FILE_VERSION, writeTokenizerFile } from '../src/workloads/lm/corpus/tokenizer-file.js';
import { learnFromInputs } from '../src/workloads/lm/corpus/tokenizer-learn.js';
import { measureInChild, repeatBundled, type RunStats } from './ingest.js';

/** The paper's language model corpus, in tokens. */
const PAPER_TOKENS = 6e11;

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** sha256 over every shard of a store, split after split. */
function shardsDigest(path: string): string {
  const corpus = Corpus.open(path);
  try {
    const hash = createHash('sha256');
    for (const split of SPLITS) for (let i = 0; i < corpus.shardCount(split); i++) hash.update(corpus.shardBytesFast(split, i));
    return hash.digest('hex');
  } finally {
    corpus.close();
  }
}

/** The machine's CPU time counters (/proc/stat, Linux): busy and total, in clock ticks; undefined elsewhere. */
function cpuTimes(): { busy: number; total: number } | undefined {
  if (!existsSync('/proc/stat')) return undefined;
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, x) => sum + x, 0);
  return { busy: total - fields[3] - fields[4], total }; // less idle and iowait
}

/** Cores kept busy by everything but the measured run, on average over it. */
function othersBusyCores(a: ReturnType<typeof cpuTimes>, b: ReturnType<typeof cpuTimes>, run: RunStats): number | undefined {
  if (!a || !b || b.total === a.total) return undefined;
  const busyCoreSeconds = ((b.busy - a.busy) / (b.total - a.total)) * cpus().length * run.seconds;
  return round(Math.max(0, busyCoreSeconds - run.cpuSeconds) / run.seconds);
}

export async function benchIngestThreads(opts: { mb?: number } = {}): Promise<Record<string, number | string>> {
  const mb = opts.mb ?? 2048;
  const root = mkdtempSync(join(tmpdir(), 'codistill-bench-ingest-threads-'));
  const out: Record<string, number | string> = { input_MB: mb };
  try {
    const inputDir = join(root, 'input');
    await repeatBundled(inputDir, mb);
    const tokenizer = join(root, 'tokenizer.json');
    const started = performance.now();
    const { meta, learnedFrom } = await learnFromInputs({ ...LM_DEFAULTS.corpus, inputs: [inputDir] }, LM_DEFAULTS.corpus.splitSeed);
    writeTokenizerFile(tokenizer, { format: TOKENIZER_FILE_FORMAT, version: TOKENIZER_FILE_VERSION, tokenizer: meta, learnedFrom, createdAt: new Date().toISOString() });
    out['tokenizer_learn.seconds'] = round((performance.now() - started) / 1000);
    out['tokenizer_learn.sample_MB'] = round(learnedFrom.bytes / 1e6, 1);
    const runs: RunStats[] = [];
    for (const threads of [1, 2]) {
      const store = join(root, `corpus-${threads}`);
      const before = cpuTimes();
      const run = measureInChild(inputDir, store, { threads, tokenizer });
      runs.push(run);
      for (const [k, v] of Object.entries(run)) out[`threads_${threads}.${k}`] = v;
      // This machine may be shared: the cores others kept busy meanwhile say how many were left to the ingest.
      const others = othersBusyCores(before, cpuTimes(), run);
      if (others !== undefined) out[`threads_${threads}.cores_busy_with_other_work`] = others;
      out[`threads_${threads}.shards_sha256`] = shardsDigest(store).slice(0, 16);
      if (threads === 2) rmSync(join(root, 'corpus-1'), { recursive: true, force: true });
    }
    const [one, two] = runs;
    out['shards_equal'] = out['threads_1.shards_sha256'] === out['threads_2.shards_sha256'] ? 'yes' : 'NO';
    rmSync(join(root, 'corpus-2'), { recursive: true, force: true });
    // The input's first copies of the bundled text, a tenth of it (repeatBundled writes a folder a copy).
    const copies = readdirSync(inputDir).sort();
    const tenth = copies.slice(0, Math.max(1, Math.round(copies.length / 10))).map((c) => join(inputDir, c));
    const small = measureInChild(tenth, join(root, 'corpus-tenth'), { threads: 2, tokenizer });
    out['tenth_threads_2.inputMB'] = small.inputMB;
    out['tenth_threads_2.peakRssMB'] = small.peakRssMB;
    out['peak_rss_ratio_whole_vs_tenth_at_2_threads'] = round(two.peakRssMB / small.peakRssMB);
    if (small.peakAnonMB !== undefined && two.peakAnonMB !== undefined) {
      out['tenth_threads_2.peakAnonMB'] = small.peakAnonMB;
      out['peak_anon_ratio_whole_vs_tenth_at_2_threads'] = round(two.peakAnonMB / small.peakAnonMB);
    }
    out['tokens_per_s_ratio_2_vs_1'] = round(two.tokensPerSecond / one.tokensPerSecond);
    out['peak_rss_ratio_2_vs_1'] = round(two.peakRssMB / one.peakRssMB);
    // What the paper's corpus would take at these rates: on one core, and per machine of two.
    out['paper_6e11_tokens.core_days_at_1_thread'] = round(PAPER_TOKENS / one.tokensPerSecond / 86400, 1);
    out['paper_6e11_tokens.days_at_2_threads'] = round(PAPER_TOKENS / two.tokensPerSecond / 86400, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--mb');
  const mb = at >= 0 ? Number(process.argv[at + 1]) : undefined;
  if (mb !== undefined && !(mb > 0)) throw new Error('--mb must be a positive number of megabytes');
  const results = await benchIngestThreads({ mb });
  for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(44)} ${v}`);
}
