/**
 * Backend selection: `auto` takes the best tfjs backend that loads, in the order
 * tfjs-node-gpu, tfjs-node, wasm, cpu; an explicit choice that cannot load is an error naming what to install.
 *
 * tfjs-node(-gpu) are optional peers whose install downloads libtensorflow: they are imported through a variable
 * specifier so that TypeScript compiles, and the package runs, without them. Every path installs the gradient
 * fixes (src/tf/grad-fixes.ts) before returning, so no actor can train without them.
 *
 * On wasm, `kernels` says whether the native BLAS kernels (src/tf/native-kernels.ts) take over the heavy kernels:
 * `auto` uses them when they were built at install, `native` requires them, `wasm` keeps tfjs's own.
 */
import * as tf from '@tensorflow/tfjs';
import type { Config } from './config/schema.js';
import { installGradFixes } from './tf/grad-fixes.js';
import { installNativeKernels, NATIVE_HOW, nativeStatus, uninstallNativeKernels } from './tf/native-kernels.js';

export type BackendChoice = Config['backend'];
export type KernelChoice = Config['kernels'];

export interface KernelOptions {
  /** auto (native when built), native (required), wasm (tfjs's own). */
  kernels?: KernelChoice;
  /** BLAS threads of the native kernels (one setting per process). */
  blasThreads?: number;
}
export type ConcreteBackend = Exclude<BackendChoice, 'auto'>;

export interface BackendAttempt {
  choice: ConcreteBackend;
  package: string;
  /** Why it was passed over: "not installed" or the loader's error. */
  reason: string;
}

export interface BackendInfo {
  /** The tfjs backend name now active (`tensorflow`, `wasm`, `cpu`). */
  name: string;
  /** What the config asked for. */
  requested: BackendChoice;
  /** What was loaded. */
  choice: ConcreteBackend;
  /** The npm package that provides it. */
  package: string;
  /** Details worth printing, e.g. `SIMD, 1 thread` for wasm. */
  detail: string;
  /** Backends tried before this one (auto only), best first. */
  fallbacks: BackendAttempt[];
  /** The kernel set now in use: `native (OpenBLAS 0.3.21 ..., 1 thread)`, `wasm`, or the backend's own. */
  kernels: string;
}

interface Candidate {
  choice: ConcreteBackend;
  package: string;
  /** Loads the package and activates its backend; returns the detail line. Throws if it cannot. */
  load(): Promise<string>;
}

const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

async function activate(name: string, pkg: string): Promise<void> {
  if (tf.findBackendFactory(name) == null) {
    throw new Error(`${pkg} loaded but registered no '${name}' backend with this @tensorflow/tfjs (versions must match 4.22)`);
  }
  if (!(await tf.setBackend(name))) throw new Error(`the '${name}' backend failed to initialise`);
}

async function loadNode(pkg: string): Promise<string> {
  // A variable specifier: TypeScript neither resolves nor requires the optional package.
  const specifier: string = pkg;
  await import(specifier);
  await activate('tensorflow', pkg);
  return pkg.endsWith('-gpu') ? 'libtensorflow (CUDA)' : 'libtensorflow (CPU)';
}

const CANDIDATES: Record<ConcreteBackend, Candidate> = {
  'tensorflow-gpu': { choice: 'tensorflow-gpu', package: '@tensorflow/tfjs-node-gpu', load: () => loadNode('@tensorflow/tfjs-node-gpu') },
  tensorflow: { choice: 'tensorflow', package: '@tensorflow/tfjs-node', load: () => loadNode('@tensorflow/tfjs-node') },
  wasm: {
    choice: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    load: async () => {
      await import('@tensorflow/tfjs-backend-wasm');
      // One thread, as tfjs does under Node anyway: results then do not depend on thread scheduling, and
      // parallelism comes from our own worker threads.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      await activate('wasm', '@tensorflow/tfjs-backend-wasm');
      return tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD';
    },
  },
  cpu: {
    choice: 'cpu',
    package: '@tensorflow/tfjs-backend-cpu',
    load: async () => {
      await activate('cpu', '@tensorflow/tfjs-backend-cpu');
      return 'pure JavaScript';
    },
  },
};

function isNotInstalled(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? '';
  // Node sets the code; some loaders (tsx, used by the tests) rethrow with only the message.
  const missing = e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(message);
  return missing && message.includes(`'${pkg}'`);
}

function reasonOf(err: unknown, pkg: string): string {
  if (isNotInstalled(err, pkg)) return 'not installed';
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0];
}

function installHint(c: Candidate): string {
  if (c.choice === 'wasm' || c.choice === 'cpu') return `reinstall the dependencies (npm ci): ${c.package} ships with codistill`;
  return `npm install ${c.package}@4.22.0 (its install downloads libtensorflow and needs internet), or set backend to auto or wasm`;
}

async function load(requested: BackendChoice): Promise<Omit<BackendInfo, 'kernels'>> {
  const order = requested === 'auto' ? AUTO_ORDER : [requested];
  const fallbacks: BackendAttempt[] = [];
  for (const choice of order) {
    const c = CANDIDATES[choice];
    try {
      const detail = await c.load();
      return { name: tf.getBackend(), requested, choice, package: c.package, detail, fallbacks };
    } catch (err) {
      const reason = reasonOf(err, c.package);
      if (requested !== 'auto') {
        throw new Error(`backend '${choice}' cannot load: ${c.package} ${reason === 'not installed' ? 'is not installed' : `failed (${reason})`}. Fix: ${installHint(c)}`, { cause: err });
      }
      fallbacks.push({ choice, package: c.package, reason });
    }
  }
  // cpu ships inside @tensorflow/tfjs, so auto cannot get here unless tfjs itself is broken.
  throw new Error(`no tfjs backend could load: ${fallbacks.map((f) => `${f.choice}: ${f.reason}`).join('; ')}`);
}

const loaded = new Map<BackendChoice, Promise<Omit<BackendInfo, 'kernels'>>>();

/**
 * Loads and activates the backend for `choice` in this thread, then installs the gradient fixes and (on wasm) the
 * native kernels that `kernels` asks for. Idempotent: the same choice loads once; a later call with another choice
 * switches the thread's active backend.
 */
export async function initBackend(choice: BackendChoice, o: KernelOptions = {}): Promise<BackendInfo> {
  let pending = loaded.get(choice);
  if (!pending) {
    pending = load(choice);
    loaded.set(choice, pending);
    pending.catch(() => loaded.delete(choice));
  }
  const info = await pending;
  if (tf.getBackend() !== info.name) await activate(info.name, info.package);
  installGradFixes();
  const kernels = chooseKernels(info.name, o);
  // The same answer object for the same question: callers may compare them.
  const key = `${choice}|${kernels.kernels}`;
  let answer = answers.get(key);
  if (!answer) answers.set(key, (answer = { ...info, ...kernels }));
  return answer;
}

const answers = new Map<string, BackendInfo>();

function chooseKernels(backend: string, o: KernelOptions): Pick<BackendInfo, 'kernels'> {
  const want = o.kernels ?? 'auto';
  if (backend !== 'wasm') {
    if (want === 'native') throw new Error(`kernels = native runs under the wasm backend, not '${backend}': set backend to wasm (or auto without tfjs-node)`);
    return { kernels: backend === 'tensorflow' ? 'libtensorflow' : backend };
  }
  const status = want === 'wasm' ? undefined : nativeStatus();
  if (!status?.available) {
    uninstallNativeKernels();
    if (want === 'native') throw new Error(`kernels = native, but the native kernels are unavailable (${status && !status.available ? status.reason : 'not loaded'}); ${NATIVE_HOW}`);
    return { kernels: 'wasm' };
  }
  installNativeKernels(status.addon, { threads: o.blasThreads ?? 1 });
  return { kernels: `native (${status.addon.describe()})` };
}

/** The backend and kernels in a few words, as runs record them: `wasm`, `wasm + native kernels (OpenBLAS ...)`. */
export function backendName(info: BackendInfo): string {
  return info.kernels.startsWith('native') ? `${info.name} + ${info.kernels.replace(/^native/, 'native kernels')}` : info.name;
}

/** One line for the console: `backend: wasm (SIMD) — @tensorflow/tfjs-backend-wasm; tried tensorflow-gpu: not installed, ...`. */
export function describeBackend(info: BackendInfo): string {
  const tried = info.fallbacks.length ? `; tried ${info.fallbacks.map((f) => `${f.choice}: ${f.reason}`).join(', ')}` : '';
  const kernels = info.name === 'wasm' ? `; kernels: ${info.kernels}` : '';
  return `backend: ${info.choice} (${info.detail}) — ${info.package}${tried}${kernels}`;
}
