#!/usr/bin/env node
/**
 * Builds codistill's optional native kernels (native/) at `npm install` / `npm ci`, when this machine can:
 * a C compiler, Node's headers and OpenBLAS (Debian: `apt-get install build-essential libopenblas-dev`).
 * It never fails the install: without them it prints one line saying how to get the native path, and codistill
 * runs on the wasm kernels alone.
 *
 *   node scripts/build-native.mjs            build if possible (what npm's install step runs)
 *   node scripts/build-native.mjs --require  fail (exit 1) if the kernels cannot be built
 *
 * CODISTILL_NATIVE=0 skips the build. Node's headers come from this Node's own prefix when it has them (Debian's
 * nodejs package installs them under /usr/include/node), so node-gyp downloads nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const built = join(nativeDir, 'build', 'Release', 'codistill_native.node');
const required = process.argv.includes('--require');
const HOW = 'for native BLAS kernels install a C compiler and OpenBLAS (Debian: apt-get install build-essential libopenblas-dev), then run npm rebuild codistill or node scripts/build-native.mjs';

function skip(reason) {
  if (required) {
    console.error(`codistill: native kernels not built: ${reason}`);
    process.exit(1);
  }
  console.log(`codistill: native kernels not built (${reason}); training uses the wasm kernels; ${HOW}`);
  process.exit(0);
}

if (process.env.CODISTILL_NATIVE === '0') skip('CODISTILL_NATIVE=0');

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const compiler = process.env.CC ?? 'cc';
if (run(compiler, ['--version']) === undefined) skip(`no C compiler (${compiler})`);

// OpenBLAS through pkg-config, else the usual Debian/Fedora places.
let include = run('pkg-config', ['--variable=includedir', 'openblas']);
let libdir = run('pkg-config', ['--variable=libdir', 'openblas']);
if (!include || !existsSync(join(include, 'cblas.h'))) {
  include = ['/usr/include/x86_64-linux-gnu/openblas-pthread', '/usr/include/openblas', '/usr/include'].find((d) =>
    existsSync(join(d, 'cblas.h')) && existsSync(join(d, 'openblas_config.h')),
  );
  libdir = ['/usr/lib/x86_64-linux-gnu/openblas-pthread', '/usr/lib64', '/usr/lib/x86_64-linux-gnu'].find((d) =>
    existsSync(join(d, 'libopenblas.so')),
  );
}
if (!include || !libdir) skip('OpenBLAS not found (no pkg-config openblas, no cblas.h with openblas_config.h)');

// Node's headers: this Node's prefix (Debian: /usr/include/node), else node-gyp's usual download cache.
const prefix = resolve(dirname(process.execPath), '..');
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;

const require = createRequire(import.meta.url);
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const bundled = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    gyp = existsSync(bundled) ? bundled : undefined;
  }
}
if (!gyp) skip('node-gyp not found');

const args = [gyp, 'rebuild', `--directory=${nativeDir}`, `-Dblas_include=${include}`, `-Dblas_libdir=${libdir}`];
if (nodedir) args.push(`--nodedir=${nodedir}`);
const result = spawnSync(process.execPath, args, { cwd: nativeDir, encoding: 'utf8' });
if (result.status !== 0 || !existsSync(built)) {
  rmSync(join(nativeDir, 'build'), { recursive: true, force: true });
  const tail = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
  skip(`the build failed: ${tail || `exit ${result.status}`}`);
}
// Load it once here, so a library that links but does not load is caught at install, not in a run.
try {
  const kernels = require(built);
  console.log(`codistill: native kernels built (${kernels.describe().replace(/, \d+ threads?$/, "")})`);
} catch (err) {
  rmSync(join(nativeDir, 'build'), { recursive: true, force: true });
  skip(`the built module does not load: ${err.message}`);
}
