/**
 * Exchange by averaging (`distill.method = average`): DiLoCo (Douillard et al. 2023) and local SGD.
 *
 * All groups start from the same weights, the anchor. Every `distill.exchangeEvery` (H) steps, at a barrier, each
 * group has trained H inner steps on its own data, and every group takes the same outer step:
 *
 *   delta    = anchor - mean over groups of their weights     (the averaged pseudo-gradient: it points uphill, like
 *                                                            a gradient, so the step subtracts it)
 *   m        = mu * m + delta                                 (outer momentum, Nesterov as in PyTorch's SGD)
 *   anchor'  = anchor - lr * (delta + mu * m)
 *
 * and continues its inner optimizer (its own Adam moments) from anchor'. DiLoCo: lr 0.7, mu 0.9. Local SGD: lr 1,
 * mu 0, which makes anchor' the plain mean of the groups' weights.
 *
 * Every group computes the step from the same inputs in the same order (groups 0..N-1, each sum in float64,
 * rounded once), so all groups hold bitwise the same anchor afterwards, with no coordinator. The anchor and the
 * momentum are the outer optimizer's state, checkpointed with each group.
 */

export interface OuterState {
  /** The weights every group started the current round from (after the last outer step). */
  anchor: Float32Array;
  /** The outer momentum buffer (zeros before the first outer step). */
  momentum: Float32Array;
}

/** The outer state of a run that has not averaged yet: the shared initial weights and zero momentum. */
export function initialOuterState(weights: Float32Array): OuterState {
  return { anchor: weights.slice(), momentum: new Float32Array(weights.length) };
}

/**
 * The outer step from `state` with every group's current weights (in group order): the new state, whose anchor is
 * the weights every group continues from. Inputs are left as they are.
 */
export function outerStep(state: OuterState, weights: readonly Float32Array[], lr: number, mu: number): OuterState {
  const n = weights.length;
  const size = state.anchor.length;
  if (n === 0) throw new Error('an outer step needs the weights of at least one group');
  for (const [g, w] of weights.entries()) {
    if (w.length !== size) throw new Error(`group ${g}'s weights have ${w.length} values, the outer state ${size}`);
  }
  const anchor = new Float32Array(size);
  const momentum = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let sum = 0;
    for (let g = 0; g < n; g++) sum += weights[g][i];
    const a = state.anchor[i];
    const delta = a - sum / n;
    const m = mu * state.momentum[i] + delta;
    momentum[i] = m;
    anchor[i] = a - lr * (delta + mu * m);
  }
  return { anchor, momentum };
}
