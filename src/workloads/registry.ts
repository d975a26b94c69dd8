/**
 * Where a workload's name becomes a Workload: the built-ins by kind, or a user's module by path. The one file
 * outside a workload's folder that lists them; a new built-in adds one line here.
 *
 * A user's module is loaded synchronously (Node 20 `require` of an ES module without top-level await), so that
 * config validation stays synchronous and every actor (worker thread) resolves the same name the same way.
 */
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { clickWorkload } from './click/index.js';
import { imageWorkload } from './image/index.js';
import { lmWorkload } from './lm/index.js';
import type { Workload } from './workload.js';

const BUILT_IN: Readonly<Record<string, Workload>> = { lm: lmWorkload, click: clickWorkload, image: imageWorkload };

export const builtInWorkloads = (): string[] => Object.keys(BUILT_IN);

export class WorkloadError extends Error {
  override name = 'WorkloadError';
}

/** A workload module is named by a path (it has a slash or ends in .js or .mjs); anything else is a built-in. */
const isModulePath = (name: string): boolean => /[\\/]/.test(name) || /\.m?js$/.test(name);

/** The absolute form of a module path (relative paths are taken from the working directory), or the kind itself. */
export function canonicalWorkload(name: string): string {
  return isModulePath(name) && !isAbsolute(name) ? resolve(name) : name;
}

const loaded = new Map<string, Workload>();
const requireHere = createRequire(import.meta.url);

export function loadWorkload(name: string): Workload {
  const builtIn = BUILT_IN[name];
  if (builtIn) return builtIn;
  if (!isModulePath(name)) {
    throw new WorkloadError(`unknown workload "${name}": use one of ${builtInWorkloads().join(', ')}, or the path of a module that exports a workload`);
  }
  const path = canonicalWorkload(name);
  const cached = loaded.get(path);
  if (cached) return cached;
  let mod: { default?: unknown };
  try {
    mod = requireHere(path) as { default?: unknown };
  } catch (err) {
    throw new WorkloadError(`workload module ${path} could not be loaded: ${(err as Error).message}`);
  }
  const w = mod.default as Partial<Workload> | undefined;
  const missing = (['sections', 'open', 'buildModel', 'ingest', 'dataPath', 'describe'] as const).filter((k) => w?.[k] === undefined);
  if (!w || missing.length) {
    throw new WorkloadError(`workload module ${path} must export a Workload as its default export (missing: ${missing.join(', ') || 'everything'})`);
  }
  loaded.set(path, w as Workload);
  return w as Workload;
}
