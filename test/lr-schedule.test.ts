/** The learning-rate schedule: linear warm-up, then the configured decay down to its floor. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { DEFAULTS, type OptimConfig } from '../src/config/schema.js';
import { createOptimizer, setLearningRate } from '../src/train/optim.js';
import { learningRate } from '../src/train/schedule.js';

const base: OptimConfig = { ...DEFAULTS.optim, lr: 1, warmupSteps: 10, minLrRatio: 0.1 };
const at = (decay: OptimConfig['decay'], step: number, total = 110) => learningRate({ ...base, decay }, step, total);

t.test('warm-up rises linearly and reaches lr at its last step', async (t) => {
  t.equal(at('none', 0), 0.1);
  t.equal(at('none', 4), 0.5);
  t.equal(at('none', 9), 1);
  t.equal(learningRate({ ...base, warmupSteps: 0 }, 0, 100), 1, 'no warm-up: full rate from the start');
});

t.test('none keeps the peak rate', async (t) => {
  t.equal(at('none', 10), 1);
  t.equal(at('none', 109), 1);
});

t.test('cosine falls from lr to the floor over the remaining steps', async (t) => {
  t.equal(at('cosine', 10), 1);
  t.ok(Math.abs(at('cosine', 60) - 0.55) < 1e-12, 'halfway: midway between lr and the floor');
  t.ok(Math.abs(at('cosine', 110) - 0.1) < 1e-12, 'the end: the floor');
  t.ok(Math.abs(at('cosine', 500) - 0.1) < 1e-12, 'past the end: still the floor');
});

t.test('linear falls in a straight line to the floor', async (t) => {
  t.equal(at('linear', 10), 1);
  t.ok(Math.abs(at('linear', 35) - 0.775) < 1e-12);
  t.ok(Math.abs(at('linear', 110) - 0.1) < 1e-12);
});

t.test('inverse-sqrt continues from the warm-up as sqrt(warmup / step), floored', async (t) => {
  t.equal(at('inverse-sqrt', 10), 1);
  t.equal(at('inverse-sqrt', 40), 0.5);
  t.equal(at('inverse-sqrt', 1000), 0.1, 'sqrt(10/1000) = 0.1');
  t.equal(at('inverse-sqrt', 4000), 0.1, 'never below the floor');
  t.equal(learningRate({ ...base, warmupSteps: 0, decay: 'inverse-sqrt' }, 4, 100), 0.5, 'without warm-up: 1/sqrt(step)');
});

t.test('setLearningRate changes the rate every optimizer uses', async (t) => {
  await tf.setBackend('cpu');
  for (const optimizer of ['adam', 'momentum', 'adagrad'] as const) {
    const step = (lr: number) => {
      const v = tf.variable(tf.scalar(1));
      const opt = createOptimizer({ ...DEFAULTS.optim, optimizer, lr: 1 });
      setLearningRate(opt, lr);
      opt.applyGradients({ [v.name]: tf.scalar(1) });
      const moved = 1 - v.dataSync()[0];
      opt.dispose();
      v.dispose();
      return moved;
    };
    const small = step(0.001);
    const large = step(0.002);
    t.ok(small > 0 && Math.abs(large / small - 2) < 1e-3, `${optimizer}: twice the rate, twice the step (${small}, ${large})`);
  }
});
