/**
 * Ingestion speed, and whether its memory stays flat as the input grows.
 *
 *   npm run build && node dist/bench/ingest.js [--big-mb 500]
 *
 * Always: the default config on the bundled corpus (about 23 MB), in tokens/s and MB/s of input. With --big-mb N:
 * the bundled text copied (as UTF-8) into a temp folder until it holds 50 MB, and again until it holds N MB; each is
 * ingested in its own child process, whose peak RSS (sampled every 50 ms, and the kernel's maxRSS) is compared: flat
 * memory means a ratio near 1, however large N is. Every run starts from an empty store (nothing is skipped).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULTS } from '../src/config/schema.js';
import { LM_DEFAULTS } from '../src/workloads/lm/config.js';
import { ingest } from '../src/workloads/lm/corpus/ingest.js';
import { bundledInputs, readDocument } from '../src/workloads/lm/corpus/inputs.js';

const SMALL_MB = 50;

export interface RunStats {
  inputMB: number;
  seconds: number;
  tokens: number;
  tokensPerSecond: number;
  MBps: number;
  peakRssMB: number;
  maxRssMB: number;
  /**
   * Peak of the process's anonymous memory (Linux `RssAnon`: heaps, stacks, buffers), without the pages of files it
   * maps: LMDB's written pages count in RSS and grow with the store, but the kernel may drop them at any time.
   */
  peakAnonMB?: number;
  /** Encoder threads that ran. */
  threads: number;
  /** CPU time of the whole process, all its threads. */
  cpuSeconds: number;
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** How one measured ingest runs: its encoder threads (default one per core) and a tokenizer to take (corpus.tokenizer). */
export interface MeasureOptions {
  threads?: number;
  tokenizer?: string;
}

/**
 * Ingests `inputs` (empty: the bundled corpus) into `path` in this process, sampling RSS meanwhile (the encoder
 * workers are threads of this process: their memory counts).
 */
export async function measure(inputs: string[], path: string, o: MeasureOptions = {}): Promise<RunStats> {
  let peak = process.memoryUsage().rss;
  let peakAnon = anonRss();
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss);
    if (peakAnon !== undefined) peakAnon = Math.max(peakAnon, anonRss() ?? 0);
  };
  const sampler = setInterval(sample, 50);
  try {
    let inputBytes = 0;
    const result = await ingest({
      corpus: { ...LM_DEFAULTS.corpus, path, inputs, tokenizer: o.tokenizer ?? '' },
      seed: DEFAULTS.seed,
      threads: o.threads,
      onProgress: (p) => {
        if (p.phase === 'scan') inputBytes = p.bytesTotal;
      },
    });
    const { train, validation } = result.meta.splits;
    const tokens = train.tokens + validation.tokens;
    return {
      inputMB: round(inputBytes / 1e6, 1),
      seconds: round(result.seconds),
      tokens,
      tokensPerSecond: Math.round(result.tokensPerSecond),
      MBps: round(inputBytes / 1e6 / result.seconds, 1),
      peakRssMB: Math.round(Math.max(peak, process.memoryUsage().rss) / 1e6),
      ...(peakAnon !== undefined && { peakAnonMB: Math.round(Math.max(peakAnon, anonRss() ?? 0) / 1e6) }),
      maxRssMB: Math.round((process.resourceUsage().maxRSS * 1024) / 1e6), // maxRSS is in kilobytes
      threads: result.threads,
      cpuSeconds: round((process.cpuUsage().user + process.cpuUsage().system) / 1e6, 1),
    };
  } finally {
    clearInterval(sampler);
  }
}

/** This process's anonymous resident memory in bytes (Linux's `RssAnon`), or undefined where /proc has none. */
function anonRss(): number | undefined {
  try {
    const kB = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kB === undefined ? undefined : Number(kB) * 1024;
  } catch {
    return undefined;
  }
}

/** The same measurement in a fresh process, so that its peak RSS is this ingest's alone. */
export function measureInChild(inputs: string | string[], path: string, o: MeasureOptions = {}): RunStats {
  const list = JSON.stringify(typeof inputs === 'string' ? [inputs] : inputs);
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', list, path, JSON.stringify(o)];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop()!) as RunStats;
}

/** Writes copies of the bundled corpus (as UTF-8) under `dir` until they hold `mb` MB. */
export async function repeatBundled(dir: string, mb: number): Promise<void> {
  const texts: { name: string; text: string }[] = [];
  for (const file of bundledInputs()) {
    texts.push({ name: file.name.replaceAll('/', '_'), text: await readDocument(file, { start: 0, end: file.bytes }) });
  }
  let bytes = 0;
  for (let copy = 0; bytes < mb * 1e6; copy++) {
    const sub = join(dir, `copy-${String(copy).padStart(4, '0')}`);
    mkdirSync(sub, { recursive: true });
    for (const { name, text } of texts) {
      if (bytes >= mb * 1e6) break;
      writeFileSync(join(sub, name), text);
      bytes += Buffer.byteLength(text);
    }
  }
}

export async function benchIngest(opts: { bigMB?: number } = {}): Promise<Record<string, number | string>> {
  const root = mkdtempSync(join(tmpdir(), 'codistill-bench-ingest-'));
  const out: Record<string, number | string> = {};
  try {
    const bundled = await measure([], join(root, 'bundled'));
    Object.assign(out, {
      'bundled.input_MB': bundled.inputMB,
      'bundled.tokens': bundled.tokens,
      'bundled.seconds': bundled.seconds,
      'bundled.tokens_per_s': bundled.tokensPerSecond,
      'bundled.MB_per_s': bundled.MBps,
    });
    if (opts.bigMB) {
      const runs: Record<string, RunStats> = {};
      for (const [key, mb] of [['small', SMALL_MB], ['big', opts.bigMB]] as const) {
        const inputDir = join(root, `${key}-input`);
        await repeatBundled(inputDir, mb);
        runs[key] = measureInChild(inputDir, join(root, `${key}-corpus`));
        rmSync(inputDir, { recursive: true, force: true });
        rmSync(join(root, `${key}-corpus`), { recursive: true, force: true });
        for (const [k, v] of Object.entries(runs[key])) out[`${key}.${k}`] = v;
      }
      out['peak_rss_ratio_big_vs_small'] = round(runs.big.peakRssMB / runs.small.peakRssMB);
      out['max_rss_ratio_big_vs_small'] = round(runs.big.maxRssMB / runs.small.maxRssMB);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const inputs = JSON.parse(args[1]) as string[];
    process.stdout.write(`${JSON.stringify(await measure(inputs, args[2], JSON.parse(args[3] ?? '{}') as MeasureOptions))}\n`);
  } else {
    const at = args.indexOf('--big-mb');
    const bigMB = at >= 0 ? Number(args[at + 1]) : undefined;
    if (bigMB !== undefined && !(bigMB > SMALL_MB)) throw new Error(`--big-mb must be a number above ${SMALL_MB}`);
    const results = await benchIngest({ bigMB });
    for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(32)} ${v}`);
  }
}
