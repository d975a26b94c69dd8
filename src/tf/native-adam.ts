/**
 * tfjs's Adam with each variable's update in one native pass (`CodistillAdam`, native/src/kernels.c) instead of the
 * eleven wasm kernels tfjs runs per variable: on the reference LSTM (3.4M parameters) the update fell from about
 * 23 ms to a few. Same formula, same order of float32 operations, same state: getWeights, setWeights and so the
 * checkpoints are tfjs's own. A replica takes it when the native kernels are active (src/train/optim.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { nativeAdamUpdate } from './native-kernels.js';

interface Moment {
  originalName: string;
  variable: tf.Variable;
}

/** The AdamOptimizer fields applyGradients reads and writes (public at run time, not in tfjs's typings). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Moment[];
  accumulatedSecondMoment: Moment[];
  incrementIterations(): void;
}

export class NativeAdam extends tf.AdamOptimizer {
  override applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const self = this as unknown as AdamInternals;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name];
        // Moments are made on first use, named as tfjs names them (checkpoints hold them by position).
        self.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        self.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const gradient = Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
        if (gradient == null) return;
        const m = self.accumulatedFirstMoment[i].variable;
        const v = self.accumulatedSecondMoment[i].variable;
        const [w2, m2, v2] = nativeAdamUpdate(value, m, v, gradient, self.accBeta1, self.accBeta2, {
          lr: self.learningRate,
          beta1: self.beta1,
          beta2: self.beta2,
          epsilon: self.epsilon,
        });
        m.assign(m2);
        v.assign(v2);
        value.assign(w2);
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
    });
    self.incrementIterations();
  }
}
