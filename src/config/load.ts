/**
 * Resolving a config: defaults <- preset file <- `--set key=value` overrides, then validation.
 * Every error names the key and what is allowed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type Config, configSchema } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The repository's config/ folder (presets), found from this module's location in src/ or dist/src/. */
export function presetDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'config', 'tiny.json'))) return join(dir, 'config');
    dir = dirname(dir);
  }
  throw new ConfigError('cannot find the config/ preset folder next to the package');
}

export interface LoadOptions {
  /** A preset name from config/ (e.g. `tiny`) or a path to a JSON file. */
  preset?: string;
  /** `key=value` overrides, dotted keys for sections (`model.hidden=64`). Values parse as JSON, else as strings. */
  set?: readonly string[];
  /** Overrides given as an object (library use); applied after `set`. */
  overrides?: Record<string, unknown>;
}

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readPreset(preset: string): Tree {
  const file = preset.endsWith('.json') || preset.includes('/') ? resolve(preset) : join(presetDir(), `${preset}.json`);
  if (!existsSync(file)) {
    throw new ConfigError(`preset "${preset}" not found (looked for ${file})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`preset ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isTree(parsed)) throw new ConfigError(`preset ${file} must hold a JSON object`);
  const { extends: base, ...rest } = parsed;
  if (base === undefined) return rest;
  if (typeof base !== 'string') throw new ConfigError(`preset ${file}: "extends" must name another preset`);
  return merge(readPreset(base), rest);
}

/** Deep-merges two config trees (objects merge key by key; anything else in `over` wins). */
export function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
  }
  return out;
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Turns `a.b=1` into `{a: {b: 1}}` merged into `tree`; `flag` names the option in errors. */
export function applySet(tree: Tree, assignment: string, flag = '--set'): Tree {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`${flag} "${assignment}": expected key=value`);
  const path = assignment.slice(0, eq).trim().split('.');
  let value: unknown = parseValue(assignment.slice(eq + 1));
  for (let i = path.length - 1; i >= 0; i--) value = { [path[i]]: value };
  return merge(tree, value as Tree);
}

/** Strips default/prefault/optional wrappers down to the schema they wrap. */
function unwrapSchema(s: z.ZodType): z.ZodType {
  while (!(s instanceof z.ZodObject) && typeof (s as { unwrap?: unknown }).unwrap === 'function') {
    s = (s as unknown as { unwrap(): z.ZodType }).unwrap();
  }
  return s;
}

function shapeOf(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const key of path) {
    s = s && unwrapSchema(s);
    if (!(s instanceof z.ZodObject)) return undefined;
    s = (s.shape as Record<string, z.ZodType>)[String(key)];
  }
  return s && unwrapSchema(s);
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const section = shapeOf(configSchema, issue.path);
    const allowed = section instanceof z.ZodObject ? Object.keys(section.shape).join(', ') : '';
    return issue.keys
      .map((k) => `unknown config key "${where ? `${where}.` : ''}${k}"${allowed ? ` (allowed here: ${allowed})` : ''}`)
      .join('\n');
  }
  return `config key "${where}": ${issue.message}`;
}

/** Checks that need more than one key. */
export function checkConsistency(c: Config): string[] {
  const problems: string[] = [];
  if (c.optim.batch % c.replicas !== 0 || c.optim.batch < c.replicas) {
    problems.push(
      `config key "replicas": ${c.replicas} replicas cannot split optim.batch = ${c.optim.batch} evenly ` +
        `(optim.batch must be a multiple of replicas)`,
    );
  }
  if (c.distill.topK >= c.corpus.vocabSize) {
    problems.push(`config key "distill.topK": ${c.distill.topK} must be below corpus.vocabSize = ${c.corpus.vocabSize} (0 = all)`);
  }
  if (c.optim.warmupSteps > c.steps) {
    problems.push(`config key "optim.warmupSteps": ${c.optim.warmupSteps} is longer than the run (steps = ${c.steps})`);
  }
  return problems;
}

/** Validates an already-merged tree into a Config, or throws a ConfigError naming every bad key. */
export function validateConfig(tree: unknown): Config {
  const parsed = configSchema.safeParse(tree);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(formatIssue).join('\n'));
  const problems = checkConsistency(parsed.data);
  if (problems.length) throw new ConfigError(problems.join('\n'));
  return parsed.data;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  let tree: Tree = opts.preset ? readPreset(opts.preset) : {};
  for (const s of opts.set ?? []) tree = applySet(tree, s);
  if (opts.overrides) tree = merge(tree, opts.overrides);
  return validateConfig(tree);
}

export interface KeyDoc {
  key: string;
  type: string;
  default: unknown;
  doc: string;
}

function typeName(s: z.ZodType): string {
  const def = (s as unknown as { def: { type: string; entries?: Record<string, string>; innerType?: z.ZodType; element?: z.ZodType } }).def;
  if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional') return typeName(def.innerType!);
  if (def.type === 'enum') return Object.values(def.entries!).join(' | ');
  if (def.type === 'array') return `${typeName(def.element!)}[]`;
  return def.type;
}

/** Every key with its type, default and documentation, in schema order. */
export function describeKeys(): KeyDoc[] {
  const out: KeyDoc[] = [];
  const defaults = configSchema.parse({}) as Tree;
  const walk = (obj: z.ZodObject, prefix: string, defs: Tree) => {
    for (const [k, s] of Object.entries(obj.shape as Record<string, z.ZodType>)) {
      const unwrapped = unwrapSchema(s);
      if (unwrapped instanceof z.ZodObject) {
        walk(unwrapped, `${prefix}${k}.`, defs[k] as Tree);
      } else {
        out.push({ key: `${prefix}${k}`, type: typeName(s), default: defs[k], doc: s.description ?? '' });
      }
    }
  };
  walk(configSchema, '', defaults);
  return out;
}
