/**
 * Convolution and max-pooling with gradients that the wasm backend can run, and run fast.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so tf.conv2d cannot be trained there at all; its
 * Conv2DBackpropInput is a plain loop (about 215 ms for a 5x5, 16->32 layer at batch 64, against 18 ms for the same
 * arithmetic as a forward convolution); its MaxPoolGrad takes about 28 ms for a [64, 28, 28, 16] input, and in tied
 * windows it sends the gradient to another element than the cpu backend's first maximum, or drops it.
 * Here every backward product of the convolution is a forward Conv2D (XNNPACK on wasm):
 * - dx is the convolution of dy with the filter rotated by 180 degrees, its channel axes swapped, padded the other
 *   way round (this matters only for even kernels, whose 'same' padding is lopsided);
 * - dW is a convolution of x with dy as the filter, the batch axis playing the part of the channels:
 *   dW[i, j, c, k] = sum over n, h, w of xpad[n, h + i, w + j, c] * dy[n, h, w, k];
 * - the pool's gradient goes to the first maximum of each window, found in a plain loop over the input.
 * Both give the stock kernels' numbers on the cpu backend (tested). Call them inside tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';

type Padding = [[0, 0], [number, number], [number, number], [0, 0]];

/** tfjs's 'same' padding for a stride-1 convolution: the odd pixel, when there is one, goes after. */
function samePadding(kh: number, kw: number): Padding {
  const top = Math.floor((kh - 1) / 2);
  const left = Math.floor((kw - 1) / 2);
  return [[0, 0], [top, kh - 1 - top], [left, kw - 1 - left], [0, 0]];
}

/**
 * tf.conv2d(x, filter, 1, 'same'): x [N, H, W, C], filter [kh, kw, C, K] -> [N, H, W, K]. Without
 * `inputGradient` the backward pass skips dx (a zero gradient): for the first layer, whose input is data.
 */
export function conv2dSame(x: tf.Tensor4D, filter: tf.Tensor4D, inputGradient = true): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  const pad = samePadding(kh, kw);
  const conv = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, f, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([input, f]);
    return {
      value: tf.conv2d(input, f, 1, pad),
      gradFunc: (dy: tf.Tensor, [xs, fs]: tf.Tensor[]) => {
        const g = dy as tf.Tensor4D;
        const flipped = tf.transpose(tf.reverse(fs, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
        const back: Padding = [[0, 0], [pad[1][1], pad[1][0]], [pad[2][1], pad[2][0]], [0, 0]];
        const dx = inputGradient ? tf.conv2d(g, flipped, 1, back) : tf.zerosLike(xs);
        // [C, H, W, N], padded as in the forward pass, convolved with [H, W, N, K] gives [C, kh, kw, K].
        const channelsFirst = tf.transpose(xs, [3, 1, 2, 0]) as tf.Tensor4D;
        const dyFilter = tf.transpose(g, [1, 2, 0, 3]) as tf.Tensor4D;
        const df = tf.transpose(tf.conv2d(channelsFirst, dyFilter, 1, pad), [1, 2, 0, 3]);
        return [dx, df];
      },
    };
  });
  return conv(x, filter) as tf.Tensor4D;
}

/**
 * tf.maxPool(x, 2, 2, 'valid'): [N, H, W, C] -> [N, floor(H/2), floor(W/2), C]. The gradient of each window goes
 * to its first maximum in row-major order, as the cpu backend's stock gradient does.
 */
export function maxPool2x2(x: tf.Tensor4D): tf.Tensor4D {
  const pool = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor4D, tf.GradSaveFunc];
    save([input]);
    return {
      value: tf.maxPool(input, 2, 2, 'valid'),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => [firstMaxGradient(xs as tf.Tensor4D, dy as tf.Tensor4D)],
    };
  });
  return pool(x) as tf.Tensor4D;
}

/**
 * A loop over values read back from the backend: on wasm that is a copy out of its heap, and the whole thing takes
 * about a third of the stock kernel's time.
 */
function firstMaxGradient(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const [N, H, W, C] = x.shape;
  const [, OH, OW] = dy.shape;
  const xs = x.dataSync() as Float32Array;
  const g = dy.dataSync() as Float32Array;
  const dx = new Float32Array(xs.length);
  const down = W * C;
  let o = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const corner = ((n * H + 2 * oh) * W + 2 * ow) * C;
        for (let c = 0; c < C; c++, o++) {
          const a = corner + c;
          // Row-major window order; a later element wins only when strictly larger.
          let best = a;
          if (xs[a + C] > xs[best]) best = a + C;
          if (xs[a + down] > xs[best]) best = a + down;
          if (xs[a + down + C] > xs[best]) best = a + down + C;
          dx[best] = g[o];
        }
      }
    }
  }
  return tf.tensor4d(dx, [N, H, W, C]);
}
