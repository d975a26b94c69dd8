/**
 * The `codistill` command line. Each command is a thin shell over a library function in src/commands/.
 * Config for every command: `--preset NAME|FILE` then repeated `--set key=value` (see `codistill config --keys`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from './config/load.js';
import { builtInWorkloads, loadWorkload } from './workloads/registry.js';
import type { Config } from './config/schema.js';
import { configCommand } from './commands/config.js';
import { ingestCommand, parsePartFlag, type PartFlag } from './commands/ingest.js';
import { tokenizerLearnCommand } from './commands/tokenizer.js';
import { resumeConfig, trainCommand } from './commands/train.js';
import { startCommand } from './commands/start.js';
import { experimentCommand } from './commands/experiment.js';
import { evaluateCommand, parseGroups, parseStep, parseTopK, predictCommand } from './commands/models.js';
import { serveCommand } from './commands/serve.js';
import { serveFlagNumber } from './serve/options.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** A flag's value parser from a check that throws: commander then says "option '--x <n>' argument 'v' is invalid. WHY". */
const checked =
  <T>(parse: (raw: string) => T) =>
  (raw: string): T => {
    try {
      return parse(raw);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message.replace(/^--[\w-]+ \S*: /, ''));
    }
  };

/** `--resume <runDir>`: a folder holding a run (its config.json). */
const runFolder = checked((dir: string) => {
  if (!existsSync(dir)) throw new Error(`${dir} does not exist`);
  if (!existsSync(join(dir, 'config.json'))) throw new Error(`${dir} is not a run folder: it has no config.json`);
  return dir;
});

/** `--group INDEX`: a whole number (checked against the run's groups once the config is known). */
const groupIndex = checked((raw: string) => {
  if (!/^\s*\d+\s*$/.test(raw)) throw new Error('a group index is a whole number (0 for the first group)');
  return raw.trim();
});

/** A command-line mistake (unknown command or option, a missing or invalid argument): one line, exit code 2. */
class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Commander's errors as one UsageError line naming the flag (`codistill: option '--port <n>' argument 'abc' is
 * invalid. ...`) with a pointer to the command's help, instead of commander's own output and exit.
 */
function oneLineErrors(cmd: Command, path: string): void {
  cmd.exitOverride((err) => {
    if (err.exitCode === 0 || err.code === 'commander.help' || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') throw err;
    throw new UsageError(`${err.message.replace(/^error: /, '')} (see \`${path} --help\`)`);
  });
  cmd.configureOutput({ outputError: () => {} });
  for (const sub of cmd.commands) oneLineErrors(sub, `${path} ${sub.name()}`);
}

interface ConfigFlags {
  preset?: string;
  set: string[];
}

function withConfigFlags(cmd: Command, defaultPreset?: string): Command {
  return cmd
    .addOption(new Option('-p, --preset <name>', 'preset from config/ or a JSON file').default(defaultPreset))
    .option('-s, --set <key=value>', 'override one config key (repeatable), e.g. --set model.hidden=64', collect, []);
}

/** The built-in workload that reads an input format (`--format criteo` without a preset means click prediction). */
function workloadForFormat(format: string): string {
  const kind = builtInWorkloads().find((k) => loadWorkload(k).formats.includes(format));
  if (!kind) {
    const known = builtInWorkloads().flatMap((k) => loadWorkload(k).formats);
    throw new ConfigError(`unknown --format "${format}" (known: ${known.join(', ')})`);
  }
  return kind;
}

function resolveConfig(flags: ConfigFlags): Config {
  return loadConfig({ preset: flags.preset, set: flags.set });
}

export function buildProgram(): Command {
  const program = new Command('codistill')
    .description('Codistillation for TensorFlow.js: N models, each trained by its own synchronous-SGD group, teaching each other');

  withConfigFlags(program.command('config').description('print the resolved config, or every key with its default'))
    .option('--keys', 'list every config key with its type, default and meaning')
    .option('--markdown', 'with --keys: print a Markdown table')
    .action((flags: ConfigFlags & { keys?: boolean; markdown?: boolean }) => {
      configCommand(flags.keys ? undefined : resolveConfig(flags), flags);
    });

  withConfigFlags(
    program
      .command('ingest')
      .description("build the workload's LMDB store: the token corpus (default: the bundled books and speeches), click rows, or images"),
  )
    .argument('[paths...]', "input files or folders: text for the language model (each file a document), Criteo-format rows for click prediction; overrides the config's inputs")
    .option('-f, --format <format>', 'input format: text (language model), criteo (click prediction: picks the click workload unless the preset names one), idx (MNIST images)')
    .option('--force', 'replace an existing store built from other input or settings')
    .option(
      '--part <i/P>',
      'ingest only part i (from 0) of P of the inputs (whole files) into its own store in the corpus folder, with the shared corpus.tokenizer; the last part to finish writes the manifest. /P takes i from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or $SLURM_PROCID (Slurm)',
      checked(parsePartFlag),
    )
    .action(async (paths: string[], flags: ConfigFlags & { force?: boolean; format?: string; part?: PartFlag }) => {
      const set = flags.format && !flags.preset ? [`workload=${workloadForFormat(flags.format)}`, ...flags.set] : flags.set;
      const config = resolveConfig({ ...flags, set });
      await ingestCommand(config, { force: flags.force, inputs: paths.length ? paths : undefined, format: flags.format, part: flags.part });
    });

  const tokenizer = program.command('tokenizer').description("the language model's tokenizer, learned once for a corpus built in parts");
  withConfigFlags(
    tokenizer
      .command('learn')
      .description('learn the BPE tokenizer from a sample of the input files into the file corpus.tokenizer names, for every part to share'),
  )
    .argument('[paths...]', "input files or folders (overrides corpus.inputs): the same as every part's ingest gets")
    .option('--force', 'replace a tokenizer file that holds another tokenizer')
    .action(async (paths: string[], flags: ConfigFlags & { force?: boolean }) => {
      await tokenizerLearnCommand(resolveConfig(flags), { inputs: paths.length ? paths : undefined, force: flags.force });
    });

  withConfigFlags(program.command('train').description('train N codistilled groups (groups=1: plain synchronous SGD)'), 'lm-small')
    .option('--resume <runDir>', 'continue the run in this folder from its newest checkpoint (its saved config, plus --set)', runFolder)
    .option('--overwrite', 'start a new run in a folder that holds one (its checkpoints and logs are deleted first)')
    .option(
      '--group [index]',
      "train only this group of a run whose groups meet in store.url (one machine or pod each); without an index, from $JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or $SLURM_PROCID (Slurm)",
      groupIndex,
    )
    .action(async (flags: ConfigFlags & { resume?: string; group?: string | true; overwrite?: boolean }) => {
      if (flags.resume && flags.group !== undefined) throw new ConfigError('--group continues from the store by itself: drop --resume');
      if (flags.resume && flags.overwrite) throw new ConfigError('--overwrite starts a new run: drop --resume (or --overwrite)');
      const config = flags.resume ? resumeConfig(flags.resume, flags.set) : resolveConfig(flags);
      await trainCommand(config, { resume: flags.resume, group: flags.group, overwrite: flags.overwrite });
    });

  withConfigFlags(
    program.command('start').description('the main job: ingest the bundled corpus, codistill 2 models, train the sync-SGD baseline, compare'),
    'lm-small',
  ).action(async (flags: ConfigFlags) => {
    await startCommand(resolveConfig(flags));
  });

  program
    .command('evaluate')
    .description("validation loss and measures of a trained run's models and their ensemble, from a checkpoint")
    .argument('<runDir>', 'the run folder')
    .option('--step <n>', 'the checkpoint step (default: the newest every group has)', checked(parseStep))
    .action(async (runDir: string, flags: { step?: number }) => {
      await evaluateCommand(runDir, flags);
    });

  program
    .command('predict')
    .description("a trained run's prediction for an input: next tokens for text, p(click) for Criteo rows, classes for images")
    .argument('<runDir>', 'the run folder')
    .argument('<input>', 'the input: text, a Criteo line, or with --json a JSON value (an array of rows, of pixels); - reads standard input')
    .option('--step <n>', 'the checkpoint step (default: the newest every group has)', checked(parseStep))
    .option('--groups <list>', 'the groups whose averaged probabilities answer, e.g. 0 or 0,1 (default: all, the ensemble)', checked(parseGroups))
    .option('-k, --top-k <k>', 'how many of the most likely classes to list (the language model\'s next tokens)', checked(parseTopK), 5)
    .option('--json', 'parse the input as JSON')
    .action(async (runDir: string, input: string, flags: { step?: number; groups?: number[]; topK?: number; json?: boolean }) => {
      await predictCommand(runDir, input, flags);
    });

  program
    .command('serve')
    .description('the HTTP service: start, stop, resume and watch runs, predictions, reports, Prometheus metrics, a dashboard')
    .option('-c, --config <file>', 'a JSON file of serve options (host, port, runs, results, token, bodyLimit, predictors)')
    .option('--host <address>', 'address to listen on (default 127.0.0.1: this machine only)')
    .option('--port <n>', 'port to listen on (default 8470; 0: any free port)', checked((v) => serveFlagNumber('port', v)))
    .option('--runs <dir>', 'folder of the runs it starts and lists (default runs)')
    .option('--results <dir>', 'folder of experiment reports (default results)')
    .option('--body-limit <bytes>', 'largest request body accepted (default 1048576)', checked((v) => serveFlagNumber('bodyLimit', v)))
    .action(async (flags: { config?: string; host?: string; port?: number; runs?: string; results?: string; bodyLimit?: number }) => {
      await serveCommand(flags.config, { host: flags.host, port: flags.port, runs: flags.runs, results: flags.results, bodyLimit: flags.bodyLimit });
    });

  program
    .command('experiment')
    .description("run one of the paper's experiments and write its report folder (re-running resumes it)")
    .argument('<name>', 'scaling | staleness | churn')
    .option('-p, --preset <name>', 'run on this preset\'s workload, with its own budgets from config/experiments/<preset>/ (e.g. criteo-small, mnist-small); default the language model')
    .option('-b, --budget <name>', 'budget from config/experiments/ (test, quick, full) or a JSON file', 'quick')
    .option('-o, --out <dir>', 'report folder (default: results/<name>/<budget>)')
    .option('-s, --set <key=value>', 'override one config key of every arm (repeatable)', collect, [])
    .option('--budget-set <key=value>', 'override one budget key, e.g. scaling.steps=400 (repeatable)', collect, [])
    .action(async (name: string, flags: { preset?: string; budget: string; out?: string; set: string[]; budgetSet: string[] }) => {
      await experimentCommand(name, flags);
    });

  oneLineErrors(program, 'codistill');
  return program;
}

const BUILT_IN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'AggregateError']);

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    // --help, --version, and a bare `codistill`: commander has printed the help already.
    if (err instanceof CommanderError) return err.exitCode;
    const e = err as Error;
    // The project's own errors (ConfigError, RunError, a workload's input errors...) say what is wrong in their
    // message; JavaScript's built-in ones are bugs, shown with their stack.
    const known = e instanceof ConfigError || (/Error$/.test(e.name) && !BUILT_IN_ERRORS.has(e.name));
    process.stderr.write(`codistill: ${known ? e.message : (e.stack ?? String(e))}\n`);
    // A run stopped by a signal exits with the signal's code (128 + its number), as a shell expects.
    const exitCode = (e as { exitCode?: unknown }).exitCode;
    if (typeof exitCode === 'number') return exitCode;
    return known ? 2 : 1;
  }
}
