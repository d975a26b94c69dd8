/**
 * The `codistill` command line. Each command is a thin shell over a library function in src/commands/.
 * Config for every command: `--preset NAME|FILE` then repeated `--set key=value` (see `codistill config --keys`).
 */
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { configCommand } from './commands/config.js';
import { ingestCommand } from './commands/ingest.js';
import { resumeConfig, trainCommand } from './commands/train.js';
import { startCommand } from './commands/start.js';
import { experimentCommand } from './commands/experiment.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface ConfigFlags {
  preset?: string;
  set: string[];
}

function withConfigFlags(cmd: Command, defaultPreset?: string): Command {
  return cmd
    .addOption(new Option('-p, --preset <name>', 'preset from config/ or a JSON file').default(defaultPreset))
    .option('-s, --set <key=value>', 'override one config key (repeatable), e.g. --set model.hidden=64', collect, []);
}

function resolveConfig(flags: ConfigFlags): Config {
  return loadConfig({ preset: flags.preset, set: flags.set });
}

export function buildProgram(): Command {
  const program = new Command('codistill')
    .description('Codistillation for TensorFlow.js: N models, each trained by its own synchronous-SGD group, teaching each other')
    .showHelpAfterError();

  withConfigFlags(program.command('config').description('print the resolved config, or every key with its default'))
    .option('--keys', 'list every config key with its type, default and meaning')
    .option('--markdown', 'with --keys: print a Markdown table')
    .action((flags: ConfigFlags & { keys?: boolean; markdown?: boolean }) => {
      configCommand(flags.keys ? undefined : resolveConfig(flags), flags);
    });

  withConfigFlags(program.command('ingest').description('tokenize text into the LMDB corpus store (default: the bundled books and speeches)'))
    .argument('[paths...]', 'text files or folders (each file is a document); overrides corpus.inputs')
    .option('--force', 'replace an existing corpus built from other input or settings')
    .action(async (paths: string[], flags: ConfigFlags & { force?: boolean }) => {
      const config = resolveConfig(flags);
      if (paths.length) config.corpus.inputs = paths;
      await ingestCommand(config, { force: flags.force });
    });

  withConfigFlags(program.command('train').description('train N codistilled groups (groups=1: plain synchronous SGD)'), 'lm-small')
    .option('--resume <runDir>', 'continue the run in this folder from its newest checkpoint (its saved config, plus --set)')
    .action(async (flags: ConfigFlags & { resume?: string }) => {
      const config = flags.resume ? resumeConfig(flags.resume, flags.set) : resolveConfig(flags);
      await trainCommand(config, { resume: flags.resume });
    });

  withConfigFlags(
    program.command('start').description('the main job: ingest the bundled corpus, codistill 2 models, train the sync-SGD baseline, compare'),
    'lm-small',
  ).action(async (flags: ConfigFlags) => {
    await startCommand(resolveConfig(flags));
  });

  program
    .command('experiment')
    .description("run one of the paper's experiments and write its report folder (re-running resumes it)")
    .argument('<name>', 'scaling | staleness | churn')
    .option('-b, --budget <name>', 'budget from config/experiments/ (test, quick, full) or a JSON file', 'quick')
    .option('-o, --out <dir>', 'report folder (default: results/<name>/<budget>)')
    .option('-s, --set <key=value>', 'override one config key of every arm (repeatable)', collect, [])
    .option('--budget-set <key=value>', 'override one budget key, e.g. scaling.steps=400 (repeatable)', collect, [])
    .action(async (name: string, flags: { budget: string; out?: string; set: string[]; budgetSet: string[] }) => {
      await experimentCommand(name, flags);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    const e = err as Error;
    const known = e instanceof ConfigError || ['CorpusError', 'SnapshotError', 'RunError'].includes(e.name);
    process.stderr.write(`codistill: ${known ? e.message : (e.stack ?? String(e))}\n`);
    return known ? 2 : 1;
  }
}
