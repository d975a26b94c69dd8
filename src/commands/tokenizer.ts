/**
 * `codistill tokenizer learn`: the language model's tokenizer, learned once into a file (corpus.tokenizer) ahead of
 * a corpus built in parts, so that every part, on whatever machine, encodes with it.
 */
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { terminalSink } from './ingest.js';

export async function tokenizerLearnCommand(config: Config, flags: { inputs?: string[]; force?: boolean }): Promise<void> {
  if (config.workload !== 'lm') {
    throw new ConfigError(`\`codistill tokenizer learn\` learns the language model's tokenizer (workload lm), not one for workload ${config.workload}`);
  }
  const { learnTokenizerFile } = await import('../workloads/lm/data.js');
  const sink = terminalSink();
  try {
    const notes = await learnTokenizerFile(config, { ...flags, progress: sink });
    sink.stop();
    process.stdout.write(notes.map((l) => `${l}\n`).join(''));
  } finally {
    sink.stop();
  }
}
