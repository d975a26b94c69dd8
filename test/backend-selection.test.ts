/** Backend selection: auto falls back to wasm here and says why; explicit choices load or fail naming the package. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend } from '../src/backend.js';
import { gradFixesInstalled } from '../src/tf/grad-fixes.js';
import { activeNativeKernels, nativeStatus } from '../src/tf/native-kernels.js';

t.test('auto picks wasm where tfjs-node is not installed, and says what it tried', async (t) => {
  const info = await initBackend('auto');
  t.equal(info.name, 'wasm');
  t.equal(tf.getBackend(), 'wasm');
  t.equal(info.requested, 'auto');
  t.equal(info.package, '@tensorflow/tfjs-backend-wasm');
  t.same(info.fallbacks.map((f) => [f.choice, f.reason]), [
    ['tensorflow-gpu', 'not installed'],
    ['tensorflow', 'not installed'],
  ]);
  t.ok(gradFixesInstalled(), 'gradient fixes installed');
  t.equal(tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'), false, 'single-threaded wasm');
  t.match(
    describeBackend(info),
    /^backend: wasm \((no )?SIMD\) — @tensorflow\/tfjs-backend-wasm; tried tensorflow-gpu: not installed, tensorflow: not installed; kernels: (wasm|native \(OpenBLAS .*\))$/,
  );
  t.equal(info.kernels.startsWith('native'), nativeStatus().available, 'auto takes the native kernels exactly when they are built');
});

t.test('kernels = wasm keeps the stock kernels; kernels = native without the build is an error saying how to get it', async (t) => {
  const info = await initBackend('wasm', { kernels: 'wasm' });
  t.equal(info.kernels, 'wasm');
  t.equal(activeNativeKernels(), undefined);
  if (!nativeStatus().available) await t.rejects(initBackend('wasm', { kernels: 'native' }), /apt-get install build-essential libopenblas-dev/);
  await initBackend('auto');
});

t.test('initBackend is idempotent', async (t) => {
  t.equal(await initBackend('auto'), await initBackend('auto'), 'the same info object');
});

t.test('an explicit backend that cannot load is an error naming the package to install', async (t) => {
  await t.rejects(initBackend('tensorflow'), /@tensorflow\/tfjs-node is not installed.*npm install @tensorflow\/tfjs-node@4\.22\.0/);
  await t.rejects(initBackend('tensorflow-gpu'), /@tensorflow\/tfjs-node-gpu is not installed/);
  t.equal(tf.getBackend(), 'wasm', 'the active backend is unchanged');
});

t.test('cpu loads on request, and a later call switches back', async (t) => {
  const cpu = await initBackend('cpu');
  t.equal(cpu.name, 'cpu');
  t.same(cpu.fallbacks, []);
  t.equal(tf.getBackend(), 'cpu');
  t.equal(tf.tidy(() => tf.add(1, 2).dataSync()[0]), 3);
  t.equal(describeBackend(cpu), 'backend: cpu (pure JavaScript) — @tensorflow/tfjs-backend-cpu');
  await initBackend('wasm');
  t.equal(tf.getBackend(), 'wasm');
});
