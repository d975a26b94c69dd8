/**
 * Resolving a config: defaults <- preset file <- `--set key=value` overrides, then validation.
 * Every error names the key and what is allowed.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { JsonFileError, readJsonFile } from '../util/json-file.js';
import { canonicalWorkload, loadWorkload } from '../workloads/registry.js';
import type { Workload } from '../workloads/workload.js';
import { type CommonConfig, type Config, commonShape } from './schema.js';

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

/**
 * A user's JSON file as a ConfigError on failure: a syntax error names the file, line and column
 * (`what FILE:LINE:COL: not valid JSON: ...`), a missing or unreadable file names the file.
 */
export function readJsonConfigFile(file: string, what: string): unknown {
  try {
    return readJsonFile(file);
  } catch (err) {
    if (err instanceof JsonFileError) throw new ConfigError(`${what} ${err.message}`);
    throw err;
  }
}

function readPreset(preset: string, seen: readonly string[] = []): Tree {
  const file = preset.endsWith('.json') || preset.includes('/') ? resolve(preset) : join(presetDir(), `${preset}.json`);
  if (!existsSync(file)) {
    throw new ConfigError(`preset "${preset}" not found (looked for ${file})` + (seen.length ? ` (named by "extends" in ${seen[seen.length - 1]})` : ''));
  }
  if (seen.includes(file)) throw new ConfigError(`preset ${file}: "extends" goes round in a circle (${[...seen, file].join(' -> ')})`);
  const parsed = readJsonConfigFile(file, 'preset');
  if (!isTree(parsed)) throw new ConfigError(`preset ${file} must hold a JSON object`);
  const { extends: base, ...rest } = parsed;
  // A workload module named relative to the preset file is found from the preset's folder, wherever the run starts.
  if (typeof rest.workload === 'string' && rest.workload.startsWith('.')) rest.workload = resolve(dirname(file), rest.workload);
  if (base === undefined) return rest;
  if (typeof base !== 'string') throw new ConfigError(`preset ${file}: "extends" must name another preset`);
  return merge(readPreset(base, [...seen, file]), rest);
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

const schemas = new WeakMap<Workload, z.ZodObject>();

/** The schema of a run of `workload`: the common sections plus the workload's own (each strict, with defaults). */
export function schemaOf(workload: Workload): z.ZodObject {
  let schema = schemas.get(workload);
  if (!schema) {
    const own = Object.fromEntries(
      // A section may be left out of a config: its defaults apply (prefault parses `{}` through the section).
      Object.entries(workload.sections).map(([k, s]) => [k, s instanceof z.ZodObject ? s.prefault({}) : s]),
    );
    schema = z.strictObject({ ...commonShape, ...own });
    schemas.set(workload, schema);
  }
  return schema;
}

/** The workload a config tree names (default: the language model), as a ConfigError when it cannot be loaded. */
function workloadOfTree(tree: unknown): Workload {
  const name = isTree(tree) && tree.workload !== undefined ? tree.workload : 'lm';
  if (typeof name !== 'string') throw new ConfigError('config key "workload": expected a workload name or a module path');
  try {
    return loadWorkload(name);
  } catch (err) {
    throw new ConfigError(`config key "workload": ${(err as Error).message}`);
  }
}

function formatIssue(schema: z.ZodObject, issue: z.core.$ZodIssue): string {
  const where = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const section = shapeOf(schema, issue.path);
    const allowed = section instanceof z.ZodObject ? Object.keys(section.shape).join(', ') : '';
    return issue.keys
      .map((k) => `unknown config key "${where ? `${where}.` : ''}${k}"${allowed ? ` (allowed here: ${allowed})` : ''}`)
      .join('\n');
  }
  return `config key "${where}": ${issue.message}`;
}

/** Checks of the common sections that need more than one key. */
export function checkConsistency(c: CommonConfig): string[] {
  const problems: string[] = [];
  if (c.optim.batch % c.replicas !== 0 || c.optim.batch < c.replicas) {
    problems.push(
      `config key "replicas": ${c.replicas} replicas cannot split optim.batch = ${c.optim.batch} evenly ` +
        `(optim.batch must be a multiple of replicas)`,
    );
  }
  if (c.optim.warmupSteps > c.steps) {
    problems.push(`config key "optim.warmupSteps": ${c.optim.warmupSteps} is longer than the run (steps = ${c.steps})`);
  }
  return problems;
}

/** Validates an already-merged tree into a Config, or throws a ConfigError naming every bad key. */
export function validateConfig(tree: unknown): Config {
  const workload = workloadOfTree(tree);
  const schema = schemaOf(workload);
  const parsed = schema.safeParse(tree);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => formatIssue(schema, i)).join('\n'));
  // A module path is kept absolute, so that resuming from another folder and every worker thread find the module.
  const config = { ...parsed.data, workload: canonicalWorkload(parsed.data.workload as string) } as Config;
  const problems = [...checkConsistency(config), ...(workload.check?.(config) ?? [])];
  if (problems.length) throw new ConfigError(problems.join('\n'));
  return config;
}

/** The workload of a validated config. */
export const workloadOf = (config: Config): Workload => loadWorkload(config.workload);

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

/** Every key of a run of `workload` (default: the language model) with its type, default and documentation. */
export function describeKeys(workload: Workload = loadWorkload('lm'), only?: 'common' | 'workload'): KeyDoc[] {
  const out: KeyDoc[] = [];
  const schema = schemaOf(workload);
  const defaults = schema.parse({ workload: workload.kind }) as Tree;
  const common = new Set(Object.keys(commonShape));
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
  walk(schema, '', defaults);
  if (!only) return out;
  return out.filter((k) => common.has(k.key.split('.')[0]) === (only === 'common'));
}
