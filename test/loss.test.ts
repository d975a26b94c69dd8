import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { codistillLoss, denseFromTopK, distilledPositions, distillLoss, distillWeight, taskLoss } from '../src/train/loss.js';

await tf.setBackend('cpu');

const logits = tf.tensor2d([
  [1, 2, 0.5],
  [0, -1, 3],
]);

const softmax = (row: number[]) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const rows = [
  [1, 2, 0.5],
  [0, -1, 3],
];

t.test('the distillation term equals a hand computation: sum over classes, mean over positions', async (t) => {
  const teacher = [
    [0.2, 0.5, 0.3],
    [0.1, 0.1, 0.8],
  ];
  let expected = 0;
  rows.forEach((r, i) => {
    const q = softmax(r);
    expected += -teacher[i].reduce((a, p, c) => a + p * Math.log(q[c]), 0);
  });
  expected /= 2;
  const got = tf.tidy(() => distillLoss(logits, tf.tensor2d(teacher), 'ce').dataSync()[0]);
  t.ok(Math.abs(got - expected) < 1e-5, `${got} ~ ${expected}`);
});

t.test('the distillation gradient is the student-minus-teacher probabilities (KL gradient), teachers get none', async (t) => {
  const teacher = tf.tensor2d([
    [0.2, 0.5, 0.3],
    [0.1, 0.1, 0.8],
  ]);
  const [gStudent, gTeacher] = tf.grads((s: tf.Tensor, te: tf.Tensor) => distillLoss(s as tf.Tensor2D, te as tf.Tensor2D, 'ce'))([logits, teacher]);
  const expected = tf.softmax(logits).sub(teacher).div(2);
  t.ok(tf.max(tf.abs(gStudent.sub(expected))).dataSync()[0] < 1e-6);
  // The teacher enters as data inside the replica; here we only note its gradient exists mathematically and is not used.
  t.ok(gTeacher.shape.length === 2);
});

t.test('mse on logits is the mean squared difference', async (t) => {
  const other = tf.tensor2d([
    [0, 2, 1],
    [1, -1, 1],
  ]);
  const got = distillLoss(logits, other, 'mse-logits').dataSync()[0];
  t.ok(Math.abs(got - (1 + 0 + 0.25 + 1 + 0 + 4) / 6) < 1e-6);
});

t.test('the task loss is softmax cross-entropy, and label smoothing spreads eps over the classes', async (t) => {
  const labels = tf.tensor1d([1, 2], 'int32');
  const q = rows.map(softmax);
  const plain = (-Math.log(q[0][1]) - Math.log(q[1][2])) / 2;
  t.ok(Math.abs(taskLoss(logits, labels).dataSync()[0] - plain) < 1e-5);
  const eps = 0.3;
  let smooth = 0;
  [1, 2].forEach((y, i) => {
    smooth += -q[i].reduce((a, p, c) => a + ((c === y ? 1 - eps : 0) + eps / 3) * Math.log(p), 0);
  });
  t.ok(Math.abs(taskLoss(logits, labels, eps).dataSync()[0] - smooth / 2) < 1e-5);
});

t.test('top-k teacher entries rebuild a dense distribution', async (t) => {
  const dense = denseFromTopK(new Int32Array([2, 0, 1, 2]), new Float32Array([0.7, 0.3, 0.6, 0.4]), 2, 2, 3);
  t.same(Array.from(dense.dataSync()).map((v) => Math.round(v * 10) / 10), [0.3, 0, 0.7, 0, 0.6, 0.4]);
});

t.test('burn-in holds alpha at 0, then a ramp raises it linearly', async (t) => {
  const d = { alpha: 2, burnIn: 10, ramp: 4 };
  t.equal(distillWeight(9, d), 0);
  t.equal(distillWeight(10, d), 0.5);
  t.equal(distillWeight(13, d), 2);
  t.equal(distillWeight(100, d), 2);
  t.equal(distillWeight(10, { ...d, ramp: 0 }), 2);
});

t.test('the fused codistillation loss equals task + alpha * distill, in value and in gradient', async (t) => {
  const labels = tf.tensor1d([1, 2], 'int32');
  const teacher = tf.tensor2d([
    [0.2, 0.5, 0.3],
    [0.1, 0.1, 0.8],
  ]);
  for (const [alpha, smoothing] of [
    [0, 0],
    [0.7, 0],
    [1.5, 0.1],
  ]) {
    const reference = (x: tf.Tensor) => taskLoss(x as tf.Tensor2D, labels, smoothing).add(distillLoss(x as tf.Tensor2D, teacher, 'ce').mul(alpha)) as tf.Scalar;
    const fused = (x: tf.Tensor) => codistillLoss(x as tf.Tensor2D, labels, { smoothing, teacher, alpha, kind: 'ce' }).total;
    const a = tf.valueAndGrad(reference)(logits);
    const b = tf.valueAndGrad(fused)(logits);
    t.ok(Math.abs(a.value.dataSync()[0] - b.value.dataSync()[0]) < 1e-5, `value at alpha ${alpha}, smoothing ${smoothing}`);
    t.ok(tf.max(tf.abs(a.grad.sub(b.grad))).dataSync()[0] < 1e-6, `gradient at alpha ${alpha}, smoothing ${smoothing}`);
  }
  const parts = codistillLoss(logits, labels, { smoothing: 0, teacher, alpha: 2, kind: 'ce' });
  t.ok(Math.abs(parts.task.dataSync()[0] - taskLoss(logits, labels).dataSync()[0]) < 1e-6, 'task part');
  t.ok(Math.abs(parts.distill.dataSync()[0] - distillLoss(logits, teacher, 'ce').dataSync()[0]) < 1e-6, 'distillation part');
});

t.test('with mse on logits the fused loss keeps the stock gradient of the mse term', async (t) => {
  const labels = tf.tensor1d([0, 1], 'int32');
  const other = tf.tensor2d([
    [0, 2, 1],
    [1, -1, 1],
  ]);
  const reference = (x: tf.Tensor) => taskLoss(x as tf.Tensor2D, labels).add(distillLoss(x as tf.Tensor2D, other, 'mse-logits').mul(0.5)) as tf.Scalar;
  const fused = (x: tf.Tensor) => codistillLoss(x as tf.Tensor2D, labels, { smoothing: 0, teacher: other, alpha: 0.5, kind: 'mse-logits' }).total;
  const a = tf.valueAndGrad(reference)(logits);
  const b = tf.valueAndGrad(fused)(logits);
  t.ok(Math.abs(a.value.dataSync()[0] - b.value.dataSync()[0]) < 1e-5);
  t.ok(tf.max(tf.abs(a.grad.sub(b.grad))).dataSync()[0] < 1e-6);
});

t.test('distilling a subset of positions averages the term over exactly those positions', async (t) => {
  const labels = tf.tensor1d([1, 2], 'int32');
  const teacherRow = tf.tensor2d([[0.1, 0.1, 0.8]]);
  // Only position 1 carries a teacher target: the term is CE(teacher, q_1), and row 0 gets no distillation gradient.
  const dense = tf.tensor2d([
    [0, 0, 0],
    [0.1, 0.1, 0.8],
  ]);
  const mask = tf.tensor2d([[0], [2]]);
  const fused = (x: tf.Tensor) => codistillLoss(x as tf.Tensor2D, labels, { smoothing: 0, teacher: dense, teacherMask: mask, alpha: 0.5, kind: 'ce' }).total;
  const reference = (x: tf.Tensor) =>
    taskLoss(x as tf.Tensor2D, labels).add(distillLoss((x as tf.Tensor2D).slice([1, 0], [1, 3]), teacherRow, 'ce').mul(0.5)) as tf.Scalar;
  const a = tf.valueAndGrad(reference)(logits);
  const b = tf.valueAndGrad(fused)(logits);
  t.ok(Math.abs(a.value.dataSync()[0] - b.value.dataSync()[0]) < 1e-5, 'value');
  t.ok(tf.max(tf.abs(a.grad.sub(b.grad))).dataSync()[0] < 1e-6, 'gradient');
});

t.test('distilled positions are strided per row and rotate so that every position gets its turn', async (t) => {
  t.equal(distilledPositions(2, 8, 1, 5), undefined, 'fraction 1: all positions');
  t.same(Array.from(distilledPositions(2, 8, 0.25, 0)!), [0, 4, 8, 12]);
  t.same(Array.from(distilledPositions(2, 8, 0.25, 3)!), [3, 7, 11, 15]);
  const seen = new Set<number>();
  for (let s = 0; s < 4; s++) for (const p of distilledPositions(3, 10, 0.25, s)!) seen.add(p);
  t.equal(seen.size, 30, 'over k steps every position is distilled');
});
