/**
 * One LSTM layer's recurrence over a window, with a hand-written backward pass (back-propagation through time).
 *
 * Why not let the tape differentiate the loop: at the sizes this project trains on CPUs a kernel call costs more
 * than its arithmetic, and the tape turns each of the ~12 ops of a step into a node with saved inputs, clones and
 * casts: about 100 kernel calls a step. Here the forward pass runs untaped, the elementwise derivative factors of
 * all steps are computed in a few batched ops, and the backward step is 7 kernels; the recurrent weight's gradient
 * is ONE matMul over all steps instead of one matMul and one add per step.
 *
 * Gate order i, f, g, o (as Keras and tfjs-layers). Inputs are time-major: row t*B + b is step t of batch row b.
 * With the native kernels (src/tf/native-kernels.ts) the same maths runs as two calls: all steps forward, all back.
 */
import * as tf from '@tensorflow/tfjs';
import { activeNativeKernels, nativeLstm } from '../../tf/native-kernels.js';

export interface RecurrenceResult {
  /** Hidden states of every step, [T*B, H] time-major. */
  sequence: tf.Tensor2D;
  /** State after the last step. */
  h: tf.Tensor2D;
  c: tf.Tensor2D;
}

/**
 * Runs the recurrence. `projected` [T*B, 4H] is the input half of every step's gate pre-activations (x·W + b),
 * `recurrentKernel` [H, 4H], `h0`/`c0` [B, H]. Differentiable in all four. Call inside tf.tidy.
 */
export function lstmRecurrence(projected: tf.Tensor2D, recurrentKernel: tf.Tensor2D, h0: tf.Tensor2D, c0: tf.Tensor2D): RecurrenceResult {
  const [B, H] = h0.shape;
  const T = projected.shape[0] / B;
  const out = activeNativeKernels() ? nativeLstm(projected, recurrentKernel, h0, c0) : taped(projected, recurrentKernel, h0, c0, T, B, H);
  return {
    sequence: tf.slice(out, [0, 0], [T * B, H]),
    h: tf.slice(out, [(T - 1) * B, 0], [B, H]),
    c: tf.slice(out, [T * B, 0], [B, H]),
  };
}

/** The recurrence as tfjs ops with a hand-written gradient: [h_1..h_T; c_T]. */
function taped(projected: tf.Tensor2D, recurrentKernel: tf.Tensor2D, h0: tf.Tensor2D, c0: tf.Tensor2D, T: number, B: number, H: number): tf.Tensor2D {
  // customGrad has one output: the sequence with the final c appended as T+1-th block. The final h is the last
  // block of the sequence. A gradient reaching c_T (a carried state that feeds a loss) is therefore honoured too.
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xw, u, hStart, cStart, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const steps = tf.split(xw, T, 0);
    const gates: tf.Tensor2D[][] = [[], [], [], []];
    const cs: tf.Tensor2D[] = [];
    const tanhCs: tf.Tensor2D[] = [];
    const hs: tf.Tensor2D[] = [];
    let h = hStart;
    let c = cStart;
    for (let t = 0; t < T; t++) {
      const z = tf.add(steps[t], tf.matMul(h, u));
      const [zi, zf, zg, zo] = tf.split(z, 4, 1);
      const i = tf.sigmoid(zi);
      const f = tf.sigmoid(zf);
      const g = tf.tanh(zg);
      const o = tf.sigmoid(zo);
      c = tf.add(tf.mul(f, c), tf.mul(i, g));
      const tanhC = tf.tanh(c);
      h = tf.mul(o, tanhC);
      [i, f, g, o].forEach((a, k) => gates[k].push(a as tf.Tensor2D));
      cs.push(c);
      tanhCs.push(tanhC);
      hs.push(h);
    }
    // Everything the backward pass needs, batched over steps: [T*B, H] each.
    const [I, F, G, O] = gates.map((g) => tf.concat(g, 0));
    const C = tf.concat(cs, 0);
    const TC = tf.concat(tanhCs, 0);
    const sequence = tf.concat(hs, 0);
    save([I, F, G, O, C, TC, sequence, hStart, cStart, u]);
    return {
      value: tf.concat([sequence, c], 0),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy as tf.Tensor2D, saved as tf.Tensor2D[], T, B, H),
    };
  });
  return run(projected, recurrentKernel, h0, c0) as tf.Tensor2D;
}

/** Gradients for (projected, recurrentKernel, h0, c0) from dy [(T+1)*B, H] (the sequence, then c_T). */
function backward(dy: tf.Tensor2D, saved: tf.Tensor2D[], T: number, B: number, H: number): tf.Tensor[] {
  const [I, F, G, O, C, TC, sequence, h0, c0, u] = saved;
  const before = (x: tf.Tensor2D, first: tf.Tensor2D) => tf.concat([first, tf.slice(x, [0, 0], [(T - 1) * B, H])], 0);
  const Cprev = before(C, c0);
  const Hprev = before(sequence, h0);
  const one = tf.scalar(1);
  // d c_t / d(h_t) through tanh, and each gate pre-activation's factor: dz = [dc, dc, dc, dh] * factors.
  const dcFromH = tf.mul(O, tf.sub(one, tf.square(TC)));
  const sigmoidSlope = (a: tf.Tensor) => tf.mul(a, tf.sub(one, a));
  const factors = tf.concat(
    [
      tf.mul(G, sigmoidSlope(I)), // input gate: c += i*g
      tf.mul(Cprev, sigmoidSlope(F)), // forget gate: c += f*c_prev
      tf.mul(I, tf.sub(one, tf.square(G))), // candidate: tanh
      tf.mul(TC, sigmoidSlope(O)), // output gate: h = o*tanh(c)
    ],
    1,
  );
  const dSeq = tf.split(tf.slice(dy, [0, 0], [T * B, H]), T, 0);
  const dcFromHs = tf.split(dcFromH, T, 0);
  const factorSteps = tf.split(factors, T, 0);
  const forgets = tf.split(F, T, 0);
  const uT = tf.transpose(u);
  const dzs: tf.Tensor[] = new Array(T);
  let dcNext: tf.Tensor = tf.slice(dy, [T * B, 0], [B, H]);
  let dz: tf.Tensor | undefined;
  for (let t = T - 1; t >= 0; t--) {
    const dh = dz ? tf.add(dSeq[t], tf.matMul(dz, uT)) : dSeq[t];
    const dc = tf.add(dcNext, tf.mul(dh, dcFromHs[t]));
    dz = tf.mul(tf.concat([dc, dc, dc, dh], 1), factorSteps[t]);
    dzs[t] = dz;
    dcNext = tf.mul(dc, forgets[t]);
  }
  const dZ = tf.concat(dzs, 0);
  return [dZ, tf.matMul(tf.transpose(Hprev), dZ), tf.matMul(dz!, uT), dcNext];
}
