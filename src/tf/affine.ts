import * as tf from '@tensorflow/tfjs';
import { activeNativeKernels, nativeLinear } from './native-kernels.js';

/**
 * x·W + b as ONE matMul, [x, 1]·[W; b]: the bias gradient then comes out of the matMul's backward pass. On wasm a
 * broadcast add's bias gradient is a sum over axis 0, which runs as a full transpose plus a reduction (about 35 ms
 * for the logits of lm-small, against 2 ms as a matMul). With the native kernels the bias is added in the product's
 * own pass and its gradient is one native column sum, so nothing is concatenated.
 */
export function affine(x: tf.Tensor2D, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
  if (activeNativeKernels()) return nativeLinear(x, kernel as tf.Tensor2D, tf.reshape(bias, [bias.size]) as tf.Tensor1D);
  const withOnes = tf.concat([x, tf.ones([x.shape[0], 1])], 1);
  const withBias = tf.concat([kernel as tf.Tensor2D, tf.reshape(bias, [1, bias.size])], 0);
  return tf.matMul(withOnes, withBias) as tf.Tensor2D;
}
