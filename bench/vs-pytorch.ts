/**
 * codistill against PyTorch on one CPU thread, on the same LSTM language model: embedding 8192 x 128, one LSTM
 * layer of 256, output 256 x 8192, Adam, batch 32 windows of 32 tokens.
 *
 *   npm run bench -- vs-pytorch
 *
 * Each arm runs in a fresh process, one after the other: codistill on the wasm kernels, codistill on the native
 * kernels (when built), and PyTorch (Debian's python3-torch with OpenBLAS, when installed; bench/vs-pytorch.py).
 * For both codistill paths it also times the step of 2-group codistillation (every position distilled towards the
 * other group's probabilities) and the teacher's forward pass that makes that target, and prints the teacher
 * overhead as a share of the student step.
 *
 * Where OPENBLAS_CORETYPE is set in the environment (some machines pin OpenBLAS to an older kernel set), the native
 * and PyTorch arms run a second time without it (and OPENBLAS_L2_SIZE), so that OpenBLAS picks its own kernels for
 * this CPU. The tests and CI never change these variables.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SHAPE = { vocab: 8192, embedding: 128, hidden: 256, batch: 32, window: 32 };
const STEPS = 8;
const ROUNDS = 5;

export interface ArmResult {
  arm: string;
  kernels: string;
  msPerStep: number;
  tokensPerSecond: number;
  /** 2-group codistillation: the student step with a teacher target, and the teacher's forward pass. */
  codistillStepMs?: number;
  /** The teacher's pass as the actor runs it: forward, softmax, the dense target written into its group's shared buffer. */
  teacherMs?: number;
  /** The same pass with the target read out into a new array each time, as the actor did before it used shared buffers. */
  freshReadoutMs?: number;
}

/** Runs inside a child process: one codistill arm, printed as one JSON line. */
async function childArm(kernels: 'wasm' | 'native'): Promise<ArmResult> {
  const { initBackend } = await import('../src/backend.js');
  const { LstmLanguageModel } = await import('../src/workloads/lm/lstm.js');
  const { codistillLoss } = await import('../src/train/loss.js');
  const { teacherTarget, targetBytes } = await import('../src/train/teacher-target.js');
  const { LM_DEFAULTS } = await import('../src/workloads/lm/config.js');
  const info = await initBackend('wasm', { kernels, blasThreads: 1 });
  const model = { ...LM_DEFAULTS.model, embedding: SHAPE.embedding, hidden: SHAPE.hidden, layers: 1, window: SHAPE.window };
  const student = new LstmLanguageModel({ model, classes: SHAPE.vocab, seed: 1 });
  const teacher = new LstmLanguageModel({ model, classes: SHAPE.vocab, seed: 2 });
  const rows = SHAPE.batch;
  const data = new Int32Array(rows * (SHAPE.window + 1));
  let s = 12345;
  for (let k = 0; k < data.length; k++) data[k] = (s = (s * 1103515245 + 12345) >>> 0) % SHAPE.vocab;
  const batch = { rows, fields: { tokens: data } };
  // The optimizer a replica trains with (NativeAdam on the native kernels).
  const { createOptimizer } = await import('../src/train/optim.js');
  const { DEFAULTS } = await import('../src/config/schema.js');
  const opt = createOptimizer({ ...DEFAULTS.optim, lr: 1e-3 });
  const step = (target?: Float32Array) => {
    const cost = tf.tidy(() => {
      const teacherTarget = target ? { kind: 'dense' as const, values: target } : undefined;
      const loss = () => codistillLoss(student.logits(batch), student.labels(batch), { smoothing: 0, alpha: 1, kind: 'ce', teacher: teacherTarget }).total;
      const { value, grads } = tf.variableGrads(loss, student.variables as tf.Variable[]);
      opt.applyGradients(grads);
      return value;
    });
    cost.dataSync();
    cost.dispose();
  };
  // What a teacher actor does for each batch (actors/teacher.ts): the snapshot's probabilities, written into a shared
  // buffer that its group uses again step after step.
  const into = new SharedArrayBuffer(targetBytes(rows * SHAPE.window, SHAPE.vocab, 0));
  const teach = () => {
    const target = teacherTarget([teacher], batch, { output: 'probs', topK: 0 }, into);
    return (target as { values: Float32Array }).values;
  };
  // What it did before: the probabilities read out into a new array, whose fresh pages are slow to fill here.
  const freshReadout = () => {
    const probs = tf.tidy(() => tf.softmax(teacher.logits(batch)));
    probs.dataSync();
    probs.dispose();
  };
  const best = (f: () => void) => {
    f();
    let ms = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      for (let k = 0; k < STEPS; k++) f();
      ms = Math.min(ms, (performance.now() - t0) / STEPS);
    }
    return ms;
  };
  const target = teach();
  const teacherMs = best(() => void teach());
  const freshReadoutMs = best(freshReadout);
  const msPerStep = best(() => step());
  const codistillStepMs = best(() => step(target));
  return {
    arm: `codistill, ${kernels} kernels`,
    kernels: info.kernels,
    msPerStep,
    tokensPerSecond: (rows * SHAPE.window * 1000) / msPerStep,
    codistillStepMs,
    teacherMs,
    freshReadoutMs,
  };
}

const here = dirname(fileURLToPath(import.meta.url));

/** A Python that imports torch: CODISTILL_PYTHON, else Debian's /usr/bin/python3, else python3 on the PATH. */
function torchPython(): string | undefined {
  for (const py of [process.env.CODISTILL_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!py) continue;
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** The environment with OpenBLAS left to choose its own kernels (only for the second round of arms). */
function ownCoreEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

function runChild(args: string[], env: NodeJS.ProcessEnv, cmd = process.execPath): ArmResult | string {
  const out = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  if (out.status !== 0 || !line.startsWith('{')) return `failed: ${(out.stderr || line).trim().split('\n').slice(-2).join(' | ')}`;
  return JSON.parse(line) as ArmResult;
}

export interface VsPytorch {
  arms: (ArmResult & { env: string })[];
  ratios: Record<string, number | string>;
}

export async function benchVsPytorch(): Promise<VsPytorch> {
  const { nativeStatus } = await import('../src/tf/native-kernels.js');
  const self = join(here, 'vs-pytorch.js');
  const script = resolve(here, '..', '..', 'bench', 'vs-pytorch.py');
  const py = torchPython();
  const envs: [string, NodeJS.ProcessEnv][] = [['as set', process.env]];
  if (process.env.OPENBLAS_CORETYPE) envs.push([`without OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE}`, ownCoreEnv()]);
  const arms: (ArmResult & { env: string })[] = [];
  const notes: Record<string, string> = {};
  for (const [label, env] of envs) {
    const paths = label === 'as set' ? ['wasm', 'native'] : ['native'];
    for (const path of paths) {
      if (path === 'native' && !nativeStatus().available) {
        notes.native = `not built (${(nativeStatus() as { reason: string }).reason})`;
        continue;
      }
      const r = runChild([self, '--child', path], env);
      if (typeof r === 'string') notes[`${path} (${label})`] = r;
      else arms.push({ ...r, env: label });
    }
    if (!py || !existsSync(script)) {
      notes.pytorch = 'not installed (Debian: apt-get install python3-torch)';
      continue;
    }
    // One thread each: torch.set_num_threads(1) bounds PyTorch's own pool, but OpenBLAS keeps a thread per core
    // unless told otherwise (on 2 cores that made PyTorch's step 20% faster, measured here).
    const single = { ...env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
    const t = runChild([script, ...Object.entries(SHAPE).flatMap(([k, v]) => [`--${k}`, String(v)]), '--steps', String(STEPS), '--rounds', String(ROUNDS)], single, py);
    if (typeof t === 'string') notes[`pytorch (${label})`] = t;
    else {
      const torch = t as unknown as { torch: string; msPerStep: number; tokensPerSecond: number };
      arms.push({ arm: `PyTorch ${torch.torch}`, kernels: 'OpenBLAS (Debian python3-torch)', msPerStep: torch.msPerStep, tokensPerSecond: torch.tokensPerSecond, env: label });
    }
  }
  const find = (prefix: string, env: string) => arms.find((a) => a.arm.startsWith(prefix) && a.env === env);
  const ratios: Record<string, number | string> = { ...notes };
  const wasm = find('codistill, wasm', 'as set');
  for (const [label] of envs) {
    const native = find('codistill, native', label);
    const torch = find('PyTorch', label);
    const tag = label === 'as set' ? '' : ` (${label})`;
    if (native && wasm) ratios[`native / wasm tokens/s${tag}`] = native.tokensPerSecond / wasm.tokensPerSecond;
    if (native && torch) ratios[`native / PyTorch tokens/s${tag}`] = native.tokensPerSecond / torch.tokensPerSecond;
    if (wasm && torch && !tag) ratios['wasm / PyTorch tokens/s'] = wasm.tokensPerSecond / torch.tokensPerSecond;
    for (const [name, arm] of [['native', native], ['wasm', tag ? undefined : wasm]] as const) {
      if (!arm?.teacherMs || !arm.codistillStepMs) continue;
      ratios[`${name} teacher overhead: the teacher's pass (into a shared buffer) / student step${tag}`] = arm.teacherMs / arm.codistillStepMs;
      ratios[`${name} teacher overhead before shared buffers: read out into a new array / student step${tag}`] = arm.freshReadoutMs! / arm.codistillStepMs;
    }
  }
  return { arms, ratios };
}

if (process.argv[2] === '--child') {
  const r = await childArm(process.argv[3] as 'wasm' | 'native');
  console.log(JSON.stringify(r));
  process.exit(0);
}
