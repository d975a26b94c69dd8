/**
 * Where the package's own files are, whether we run from src/ (tsx, tests) or dist/src/ (built).
 * Worker threads always load compiled JavaScript from dist/ (TypeScript workers cannot load under tsx),
 * so `npm run build` (run by `npm ci`, `npm test` and `npm start`) must precede any use of a pool.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('codistill: cannot find the package root from ' + fileURLToPath(import.meta.url));
}

/** The package root (the folder holding package.json). */
export const packageRoot: string = findRoot();

/** Absolute path of a compiled module of the package, e.g. `compiledFile('actors', 'reader')` -> <root>/dist/actors/reader.js. */
export function compiledFile(...path: string[]): string {
  const file = join(packageRoot, 'dist', ...path.slice(0, -1), `${path[path.length - 1]}.js`);
  if (!existsSync(file)) {
    throw new Error(`codistill: ${file} is missing: run \`npm run build\` first (workers and group processes load compiled JavaScript)`);
  }
  return file;
}

/** Absolute path of a compiled actor module, e.g. `actorFile('reader')` -> <root>/dist/actors/reader.js. */
export const actorFile = (name: string): string => compiledFile('actors', name);
