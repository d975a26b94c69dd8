/** AUC and accuracy give the textbook numbers, ties and missing classes included. */
import t from 'tap';
import { accuracy, auc } from '../src/train/measures.js';

t.test('auc counts a tied positive-negative pair as half a correctly ordered one', async (t) => {
  // Positives score 0.9, 0.5, 0.3; negatives 0.5, 0.2. Of the 6 pairs, 4 are ordered right (0.9 > both,
  // 0.5 > 0.2, 0.3 > 0.2), one ties (0.5 = 0.5) and one is wrong (0.3 < 0.5): (4 + 0.5) / 6.
  const scores = Float32Array.of(0.9, 0.5, 0.5, 0.3, 0.2);
  const labels = [1, 1, 0, 1, 0];
  t.equal(auc(scores, labels), 4.5 / 6);
  t.equal(auc(Float32Array.of(0.5, 0.5, 0.5), Uint8Array.of(1, 0, 1)), 0.5, 'all tied: one half');
});

t.test('auc is 1 for a perfect ranking and 0 for a reversed one, whatever the order of the rows', async (t) => {
  const scores = Float32Array.of(0.1, 0.8, 0.3, 0.95, 0.4, 0.7);
  t.equal(auc(scores, [0, 1, 0, 1, 0, 1]), 1);
  t.equal(auc(scores, [1, 0, 1, 0, 1, 0]), 0);
});

t.test('auc is NaN when one class is absent', async (t) => {
  t.ok(Number.isNaN(auc(Float32Array.of(0.2, 0.7), [1, 1])), 'no negatives');
  t.ok(Number.isNaN(auc(Float32Array.of(0.2, 0.7), [0, 0])), 'no positives');
  t.ok(Number.isNaN(auc(new Float32Array(0), [])), 'no rows');
  t.throws(() => auc(Float32Array.of(0.2), [0, 1]), /1 scores but 2 labels/);
});

t.test('accuracy is the share of rows whose most probable class is the label', async (t) => {
  const probs = Float32Array.of(
    0.7, 0.2, 0.1, // predicts 0
    0.1, 0.3, 0.6, // predicts 2
    0.2, 0.5, 0.3, // predicts 1
    0.4, 0.4, 0.2, // tie: the first class counts
  );
  t.equal(accuracy(probs, [0, 2, 0, 0], 3), 0.75);
  t.equal(accuracy(probs, Uint8Array.of(1, 1, 1, 1), 3), 0.25, 'labels as a typed array');
  t.ok(Number.isNaN(accuracy(new Float32Array(0), [], 3)), 'no rows');
  t.throws(() => accuracy(probs, [0, 1], 3), /12 probabilities are not 2 rows of 3/);
});
