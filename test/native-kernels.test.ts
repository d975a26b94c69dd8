/**
 * The native kernels (src/tf/native-kernels.ts) against tfjs's own wasm kernels, on random shapes: every product
 * with and without transposed operands and batch broadcasting, odd sizes, the fused dense layer, the LSTM
 * recurrence, the cross-entropy and a whole model's gradients; values and gradients within float rounding.
 *
 * Where the native kernels are not built the file skips, unless CODISTILL_REQUIRE_NATIVE=1 (CI sets it after it
 * installs OpenBLAS): then their absence fails.
 */
import t, { type Test } from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { activeNativeKernels, broadcastPairs, nativeStatus } from '../src/tf/native-kernels.js';
import { lstmRecurrence } from '../src/workloads/lm/lstm-recurrence.js';
import { LstmLanguageModel } from '../src/workloads/lm/lstm.js';
import { affine } from '../src/tf/affine.js';
import { codistillLoss } from '../src/train/loss.js';
import { createOptimizer, loadOptimizerState, optimizerState } from '../src/train/optim.js';
import { DEFAULTS } from '../src/config/schema.js';
import { Random } from '../src/util/random.js';
import { randomBatch } from './helpers/batches.js';
import { lossAndGrads, tinyModel } from './helpers/lm-train.js';

const status = nativeStatus();
if (!status.available) {
  if (process.env.CODISTILL_REQUIRE_NATIVE === '1') t.fail(`the native kernels are required here but ${status.reason}`);
  else t.plan(0, `native kernels ${status.reason}`);
} else {
  await initBackend('wasm', { kernels: 'wasm' });
  const rng = new Random(2026);
  const random = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.float() * 2 - 1), shape);

  /** fn's outputs (values) on the stock wasm kernels and on the native ones. */
  async function both<T>(fn: () => T): Promise<{ stock: T; native: T }> {
    await initBackend('wasm', { kernels: 'wasm' });
    const stock = fn();
    await initBackend('wasm', { kernels: 'native' });
    const native = fn();
    await initBackend('wasm', { kernels: 'wasm' });
    return { stock, native };
  }

  /** Largest |a - b| relative to the largest |a| (1 when a is all zero). */
  const relativeError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(a[i]));
    }
    return worst / (scale || 1);
  };
  const values = (x: tf.Tensor | tf.Tensor[]) => (Array.isArray(x) ? x : [x]).map((y) => Array.from(y.dataSync()));
  const close = (t: Test, stock: number[][], native: number[][], tolerance: number, what: string) => {
    t.equal(native.length, stock.length, `${what}: as many outputs`);
    stock.forEach((s, i) => {
      t.equal(native[i].length, s.length, `${what} [${i}]: same size`);
      const err = relativeError(s, native[i]);
      t.ok(err < tolerance, `${what} [${i}]: relative error ${err.toExponential(2)} < ${tolerance}`);
    });
  };

  t.test('the native kernels take over only when asked, and only on wasm', async (t) => {
    await initBackend('wasm', { kernels: 'wasm' });
    t.equal(activeNativeKernels(), undefined);
    const info = await initBackend('wasm', { kernels: 'native', blasThreads: 1 });
    t.match(info.kernels, /^native \(OpenBLAS [\d.]+, \S+ core, 1 thread\)$/);
    t.ok(activeNativeKernels());
    await initBackend('cpu');
    t.equal(activeNativeKernels(), undefined, 'registered for wasm; the cpu backend keeps its own');
    await t.rejects(initBackend('cpu', { kernels: 'native' }), /kernels = native runs under the wasm backend/);
    await initBackend('wasm', { kernels: 'wasm' });
  });

  t.test('broadcast pairs name the operands of each output matrix', async (t) => {
    t.same(Array.from(broadcastPairs([2, 1], [1, 3], [2, 3])), [0, 0, 0, 1, 0, 2, 1, 0, 1, 1, 1, 2]);
    t.same(Array.from(broadcastPairs([], [4], [4])), [0, 0, 0, 1, 0, 2, 0, 3]);
    t.same(Array.from(broadcastPairs([3], [3], [3])), [0, 0, 1, 1, 2, 2]);
  });

  t.test('BatchMatMul equals the wasm kernel on random shapes, transposes and broadcasts', async (t) => {
    const cases: [number[], number[], boolean, boolean][] = [];
    for (let c = 0; c < 24; c++) {
      const m = 1 + rng.int(37);
      const n = 1 + rng.int(41);
      const k = 1 + rng.int(70);
      const ta = c % 2 === 1;
      const tb = c % 4 >= 2;
      const outer = [[], [3], [2, 3], [1], [4]][c % 5];
      const outerB = c % 3 === 0 ? outer.map(() => 1) : outer;
      cases.push([[...outer, ...(ta ? [k, m] : [m, k])], [...outerB, ...(tb ? [n, k] : [k, n])], ta, tb]);
    }
    cases.push([[1, 5, 7], [3, 7, 2], false, false], [[512, 300], [257, 300], false, true], [[0, 4], [4, 3], false, false]);
    for (const [sa, sb, ta, tb] of cases) {
      const a = random(sa);
      const b = random(sb);
      const { stock, native } = await both(() => values(tf.matMul(a, b, ta, tb)));
      t.same(native.length, 1);
      close(t, stock, native, 1e-5, `[${sa}]${ta ? 'ᵀ' : ''} x [${sb}]${tb ? 'ᵀ' : ''}`);
      tf.dispose([a, b]);
    }
    const a = random([2, 3, 4]);
    const b = random([3, 5, 6]);
    await initBackend('wasm', { kernels: 'native' });
    t.throws(() => tf.matMul(a, b), /inner shapes/);
    // An empty inner dimension sums nothing: zeros, as on the cpu backend (the wasm kernel leaves memory unwritten).
    t.same(Array.from(tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 2])).dataSync()), [0, 0, 0, 0, 0, 0]);
    await initBackend('wasm', { kernels: 'wasm' });
    tf.dispose([a, b]);
  });

  t.test('the fused dense layer and its gradients equal affine on the wasm kernels', async (t) => {
    for (const [m, k, n] of [[1, 1, 1], [7, 13, 5], [96, 33, 257]]) {
      const x = random([m, k]);
      const w = random([k, n]);
      const b = random([n]);
      const dy = random([m, n]);
      const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(affine(x as tf.Tensor2D, w, b), dy));
      const { stock, native } = await both(() => {
        const out = affine(x as tf.Tensor2D, w, b);
        return [...values(out), ...values(tf.grads(f)([x, w, b]))];
      });
      close(t, stock, native, 1e-5, `dense ${m}x${k} -> ${n}`);
      tf.dispose([x, w, b, dy]);
    }
  });

  t.test('the native LSTM recurrence and its gradients equal the taped one', async (t) => {
    for (const [T, B, H] of [[1, 1, 1], [3, 2, 5], [9, 4, 16]]) {
      const xw = random([T * B, 4 * H]);
      const u = random([H, 4 * H]).mul(0.5);
      const h0 = random([B, H]);
      const c0 = random([B, H]);
      const dSeq = random([T * B, H]);
      const dH = random([B, H]);
      const dC = random([B, H]);
      const f = (xw: tf.Tensor, u: tf.Tensor, h0: tf.Tensor, c0: tf.Tensor) => {
        const r = lstmRecurrence(xw as tf.Tensor2D, u as tf.Tensor2D, h0 as tf.Tensor2D, c0 as tf.Tensor2D);
        return tf.addN([tf.sum(tf.mul(r.sequence, dSeq)), tf.sum(tf.mul(r.h, dH)), tf.sum(tf.mul(r.c, dC))]);
      };
      const { stock, native } = await both(() => {
        const r = lstmRecurrence(xw as tf.Tensor2D, u as tf.Tensor2D, h0 as tf.Tensor2D, c0 as tf.Tensor2D);
        return [...values([r.sequence, r.h, r.c]), ...values(tf.grads(f)([xw, u, h0, c0]))];
      });
      close(t, stock, native, 2e-5, `LSTM T=${T} B=${B} H=${H}`);
      tf.dispose([xw, u, h0, c0, dSeq, dH, dC]);
    }
  });

  t.test('the cross-entropy with and without teachers equals the wasm path, values and gradients', async (t) => {
    const P = 37;
    const C = 53;
    const logits = random([P, C]).mul(4);
    const labels = tf.tensor1d(Array.from({ length: P }, () => rng.int(C)), 'int32');
    const probs = (rows: number) => {
      const raw = Float32Array.from({ length: rows * C }, () => rng.float());
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += raw[r * C + c];
        for (let c = 0; c < C; c++) raw[r * C + c] /= s;
      }
      return raw;
    };
    const positions = Int32Array.from({ length: 11 }, (_, i) => i * 3);
    const targets = {
      none: undefined,
      dense: { kind: 'dense' as const, values: probs(P) },
      'dense at some positions': { kind: 'dense' as const, values: probs(positions.length), positions },
      'top-k': { kind: 'topk' as const, k: 3, indices: Int32Array.from({ length: P * 3 }, (_, i) => (i * 7) % C), probs: Float32Array.from({ length: P * 3 }, () => 0.3) },
    };
    for (const [name, teacher] of Object.entries(targets)) {
      for (const smoothing of [0, 0.1]) {
        const opts = { smoothing, alpha: 0.7, kind: 'ce' as const, teacher };
        const { stock, native } = await both(() => {
          const { value, grads } = tf.valueAndGrads((z: tf.Tensor) => codistillLoss(z as tf.Tensor2D, labels, opts).total)([logits]);
          const parts = codistillLoss(logits as tf.Tensor2D, labels, opts);
          return [...values([value, parts.task, parts.distill]), ...values(grads)];
        });
        close(t, stock, native, 2e-6, `${name}, smoothing ${smoothing}`);
      }
    }
    await initBackend('wasm', { kernels: 'native' });
    const poisoned = logits.add(tf.oneHot([3], P).reshape([P, 1]).mul(NaN));
    t.ok(Number.isNaN(codistillLoss(poisoned as tf.Tensor2D, labels, { smoothing: 0, alpha: 0, kind: 'ce' }).total.dataSync()[0]), 'a NaN logit gives a NaN loss');
    await initBackend('wasm', { kernels: 'wasm' });
    tf.dispose([logits, labels, poisoned]);
  });

  t.test("a language model's gradients on the native kernels equal the wasm kernels'", async (t) => {
    const spec = { model: tinyModel({ layers: 2, layerNorm: true, hidden: 24 }), classes: 50, seed: 5 };
    const batch = randomBatch(11, 3, spec.model.window + 1, spec.classes);
    const { stock, native } = await both(() => {
      const model = new LstmLanguageModel(spec);
      const { loss, grads } = lossAndGrads(model, batch);
      const out = [...values(loss), ...model.variables.map((v) => Array.from(grads[v.name].dataSync()))];
      tf.dispose([loss, ...Object.values(grads)]);
      model.dispose();
      return out;
    });
    close(t, stock, native, 1e-4, 'loss and gradients');
  });

  t.test("the native Adam's steps equal tfjs's Adam on the wasm kernels, its state round-trips, and no tensor is left", async (t) => {
    const shapes = [[37, 5], [300], [1]];
    const start = shapes.map((shape) => Array.from(random(shape).dataSync()));
    const gradients = [0, 1, 2].map(() => shapes.map((shape) => Array.from(random(shape).dataSync())));
    const train = (opt: tf.Optimizer) => {
      const vars = shapes.map((shape, i) => tf.variable(tf.tensor(start[i], shape), true, `adam-test-${opt.constructor.name}-${i}`));
      const before = tf.memory().numTensors;
      for (const g of gradients) {
        tf.tidy(() => opt.applyGradients(Object.fromEntries(vars.map((v, i) => [v.name, tf.tensor(g[i], shapes[i])]))));
      }
      const grew = tf.memory().numTensors - before;
      const out = vars.map((v) => Array.from(v.dataSync()));
      tf.dispose(vars);
      return { out, grew };
    };
    const { stock, native } = await both(() => train(createOptimizer({ ...DEFAULTS.optim, lr: 0.01 })));
    await initBackend('wasm', { kernels: 'native' });
    t.equal(createOptimizer(DEFAULTS.optim).constructor.name, 'NativeAdam', 'a replica on the native kernels takes it');
    await initBackend('wasm', { kernels: 'wasm' });
    close(t, stock.out, native.out, 1e-6, 'weights after 3 Adam steps');
    t.equal(native.grew, 6, 'only its two moments per variable stay (as with tfjs Adam)');
    t.equal(stock.grew, native.grew);

    // Saved after one step and loaded into a fresh one, it continues as if never stopped.
    await initBackend('wasm', { kernels: 'native' });
    const v = tf.variable(tf.tensor(start[1]), true, 'adam-resume');
    const grad = (k: number) => ({ 'adam-resume': tf.tensor(gradients[k][1]) });
    const a = createOptimizer(DEFAULTS.optim);
    tf.tidy(() => a.applyGradients(grad(0)));
    const saved = await optimizerState(a);
    const b = createOptimizer(DEFAULTS.optim);
    await loadOptimizerState(b, saved);
    const w1 = v.clone();
    tf.tidy(() => a.applyGradients(grad(1)));
    const wa = Array.from(v.dataSync());
    v.assign(w1);
    tf.tidy(() => b.applyGradients(grad(1)));
    t.same(Array.from(v.dataSync()), wa, 'a restored NativeAdam takes the same step, bit for bit');
    tf.dispose([v, w1]);
    a.dispose();
    b.dispose();
    await initBackend('wasm', { kernels: 'wasm' });
  });

  t.test('the native kernels leave no tensor behind and give the same bits twice', async (t) => {
    await initBackend('wasm', { kernels: 'native' });
    const spec = { model: tinyModel({ hidden: 16 }), classes: 40, seed: 9 };
    const batch = randomBatch(3, 4, spec.model.window + 1, spec.classes);
    const run = () => {
      const model = new LstmLanguageModel(spec);
      const before = tf.memory().numTensors;
      const { loss, grads } = lossAndGrads(model, batch);
      const bits = model.variables.map((v) => Array.from(grads[v.name].dataSync()));
      tf.dispose([loss, ...Object.values(grads)]);
      const after = tf.memory().numTensors;
      model.dispose();
      return { bits, leaked: after - before };
    };
    const a = run();
    const b = run();
    t.equal(a.leaked, 0, 'tensor count flat');
    t.same(b.bits, a.bits, 'bitwise the same');
    await initBackend('wasm', { kernels: 'wasm' });
  });
}
