/** Validation measures on predicted probabilities, beside the cross-entropy that every workload reports. */

/**
 * Area under the ROC curve of `scores` for the positive labels (1) against the others (0): the probability that a
 * random positive scores above a random negative, a tie counting half (the Mann–Whitney U statistic over the
 * product of the class sizes). NaN when either class is absent.
 */
export function auc(scores: Float32Array, labels: ArrayLike<number>): number {
  const n = scores.length;
  if (labels.length !== n) throw new Error(`auc: ${n} scores but ${labels.length} labels`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0;
  let rankSum = 0;
  // Ranks are 1-based; a run of equal scores shares the mean of the ranks it spans.
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]] === scores[order[start]]) end++;
    const meanRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) {
      if (labels[order[k]] === 1) {
        positives++;
        rankSum += meanRank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Share of rows of `probs` ([n, classes], row-major) whose most probable class is the label; the first of tied maxima counts. */
export function accuracy(probs: Float32Array, labels: ArrayLike<number>, classes: number): number {
  const n = labels.length;
  if (probs.length !== n * classes) throw new Error(`accuracy: ${probs.length} probabilities are not ${n} rows of ${classes}`);
  if (n === 0) return NaN;
  let correct = 0;
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[r * classes + c] > probs[r * classes + best]) best = c;
    if (best === labels[r]) correct++;
  }
  return correct / n;
}
