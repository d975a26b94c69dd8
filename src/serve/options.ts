/**
 * What `codistill serve` is configured with: a JSON file (`--config`), flags on top, and the bearer token from the
 * file or the environment (`CODISTILL_TOKEN`). Unknown keys and wrong types are refused, naming the key.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, readJsonConfigFile } from '../config/load.js';

export const serveSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1').describe('address to listen on (127.0.0.1: this machine only)'),
  port: z.number().int().min(0).max(65535).default(8470).describe('port to listen on (0: any free port)'),
  runs: z.string().min(1).default('runs').describe('folder of the runs the service starts and lists'),
  results: z.string().min(1).default('results').describe('folder of experiment reports (results/<experiment>/<name>/report.md)'),
  token: z
    .string()
    .min(16)
    .optional()
    .describe('bearer token for every request that changes something (else $CODISTILL_TOKEN, else a random one printed at start)'),
  bodyLimit: z.number().int().min(1024).default(1_048_576).describe('largest request body accepted, in bytes'),
  predictors: z.number().int().min(1).default(4).describe('predictors (run, step, groups) kept open between requests'),
});

export type ServeOptions = z.output<typeof serveSchema>;

/** The options from a JSON file (optional) with `flags` on top; errors name the file and the key. */
export function loadServeOptions(file: string | undefined, flags: Partial<Record<keyof ServeOptions, unknown>> = {}): ServeOptions {
  let tree: Record<string, unknown> = {};
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`${file}: no such serve config file`);
    const parsed = readJsonConfigFile(file, 'serve config');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`serve config ${file} must hold a JSON object of options (${Object.keys(serveSchema.shape).join(', ')})`);
    }
    tree = { ...(parsed as Record<string, unknown>) };
  }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) tree[k] = v;
  const parsed = serveSchema.safeParse(tree);
  if (!parsed.success) {
    const where = file ? `${file}: ` : '';
    throw new ConfigError(parsed.error.issues.map((i) => `${where}${i.path.join('.') || '(top level)'}: ${i.message}`).join('\n'));
  }
  return parsed.data;
}

/**
 * A numeric command-line flag of `codistill serve` (`--port`, `--body-limit`): a whole number within the key's
 * range, checked against the same schema as the file's, or an Error saying what is allowed.
 */
export function serveFlagNumber(key: 'port' | 'bodyLimit' | 'predictors', raw: string): number {
  const allowed = key === 'port' ? 'a port is a whole number from 0 to 65535 (0: any free port)' : key === 'bodyLimit' ? 'a whole number of bytes, at least 1024' : 'a whole number, at least 1';
  if (!/^\s*\d+\s*$/.test(raw)) throw new ConfigError(allowed);
  const value = Number(raw);
  if (!serveSchema.shape[key].safeParse(value).success) throw new ConfigError(allowed);
  return value;
}
