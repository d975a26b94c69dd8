/**
 * The update rule, its learning-rate schedule, gradient clipping and the optimizer's state as plain arrays.
 *
 * The trainer owns the loop on computeGradients/applyGradients (as optimizer.minimize does inside): it sets the rate for the step, clips,
 * applies. Optimizer state leaves and enters as named Float32Arrays so that checkpoints and actors never hold tfjs
 * objects. The flat gradient/weight layout for the all-reduce lives in ./flat.ts and is re-exported here.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimConfig } from '../config/schema.js';
import { NativeAdam } from '../tf/native-adam.js';
import { activeNativeKernels } from '../tf/native-kernels.js';

export { flatLength, flatToGrads, flatToWeights, gradsToFlat, weightsToFlat } from './flat.js';

/** One slot of optimizer state (a moment, an accumulator, the step counter), in the optimizer's own order. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

export type OptimizerState = NamedArray[];

export function createOptimizer(optim: OptimConfig): tf.Optimizer {
  switch (optim.optimizer) {
    case 'adam':
      return activeNativeKernels()
        ? new NativeAdam(optim.lr, optim.beta1, optim.beta2, optim.epsilon)
        : tf.train.adam(optim.lr, optim.beta1, optim.beta2, optim.epsilon);
    case 'momentum':
      return tf.train.momentum(optim.lr, optim.momentum);
    case 'adagrad':
      // tfjs's Adagrad adds the backend's epsilon (1e-7), not optim.epsilon: it takes no such parameter.
      return tf.train.adagrad(optim.lr);
    default: {
      const unknown: never = optim.optimizer;
      throw new Error(`unknown optim.optimizer '${String(unknown)}'`);
    }
  }
}


/** Sets the rate the optimizer's next applyGradients uses. */
export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  // SGD and momentum cache the rate as a tensor and expose a setter; Adam and Adagrad read the number each step.
  const o = opt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/**
 * Scales the gradients so that their global L2 norm is at most maxNorm (0 = no clipping); returns the norm before
 * clipping. Reads one scalar; call inside tf.tidy.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): { grads: tf.NamedTensorMap; norm: number } {
  const names = Object.keys(grads);
  const squares = names.map((n) => tf.sum(tf.square(grads[n])));
  const norm = squares.length ? Math.sqrt(tf.addN(squares).dataSync()[0]) : 0;
  if (maxNorm <= 0 || !(norm > maxNorm)) return { grads, norm };
  const scale = maxNorm / norm;
  const clipped: tf.NamedTensorMap = {};
  for (const n of names) clipped[n] = tf.mul(grads[n], scale);
  return { grads: clipped, norm };
}

/** Adam's running powers of beta1/beta2: tfjs rebuilds them with pow() on load, which differs in the last bit. */
interface AdamPowers {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

const ADAM_POWERS = ['adam/accBeta1', 'adam/accBeta2'] as const;

function adamPowers(opt: tf.Optimizer): AdamPowers | undefined {
  const o = opt as unknown as Partial<AdamPowers>;
  return o.accBeta1 instanceof tf.Variable && o.accBeta2 instanceof tf.Variable ? (o as AdamPowers) : undefined;
}

/** A private copy: on the cpu backend dataSync returns the tensor's own storage, which a transfer would empty. */
function ownCopy(t: tf.Tensor): Float32Array {
  const values = t.dataSync();
  return values instanceof Float32Array && tf.getBackend() !== 'cpu' ? values : Float32Array.from(values as ArrayLike<number>);
}

/** The optimizer's slots (step counter first, then tfjs's order), each a private array safe to transfer. */
export async function optimizerState(opt: tf.Optimizer): Promise<OptimizerState> {
  const weights = await opt.getWeights();
  const state = weights.map(({ name, tensor }) => ({ name, shape: [...tensor.shape], data: ownCopy(tensor) }));
  // getWeights makes a new tensor for the step counter; the slots themselves stay with the optimizer.
  weights[0]?.tensor.dispose();
  const powers = adamPowers(opt);
  if (powers) state.push(...[powers.accBeta1, powers.accBeta2].map((v, i) => ({ name: ADAM_POWERS[i], shape: [], data: ownCopy(v) })));
  return state;
}

/**
 * Restores state from `optimizerState`. Slots are matched to gradients by position (tfjs's rule), so the gradients
 * must keep coming in variable order, as flatToGrads builds them.
 */
export async function loadOptimizerState(opt: tf.Optimizer, state: OptimizerState): Promise<void> {
  const powers = adamPowers(opt);
  const slots = state.filter((s) => !(ADAM_POWERS as readonly string[]).includes(s.name));
  const previous = await opt.getWeights();
  const loaded = slots.map(({ name, shape, data }) => ({ name, tensor: tf.tensor(data.slice(), shape, 'float32') }));
  await opt.setWeights(loaded);
  // setWeights made variables sharing our tensors' memory and dropped the old slots without disposing them.
  tf.dispose([...previous, ...loaded].map((w) => w.tensor));
  if (powers) {
    for (const [i, v] of [powers.accBeta1, powers.accBeta2].entries()) {
      const saved = state.find((s) => s.name === ADAM_POWERS[i]);
      if (saved) tf.tidy(() => v.assign(tf.scalar(saved.data[0])));
    }
  }
}
