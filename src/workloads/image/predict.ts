/**
 * The image workload's predictor: 28x28 grey images in, class probabilities out.
 *
 * Input: one image, 784 pixel values in row-major order (an array of numbers or a typed array), or an array of
 * such images. Pixels are integers 0..255 as in the IDX files (0 = background), the scale the store holds and the
 * model divides by 255. Values in 0..1 are refused rather than guessed at: an image of only 0s and 1s would read
 * either way, so the caller scales them (x 255) and says what they mean.
 *
 * Answer: `{ probs: number[][], classes: number[] }`, each image's 10 class probabilities and its most likely class.
 */
import { classAnswer, describeValue, isNumbers } from '../predict-input.js';
import type { Predictor } from '../workload.js';

export function imagePredictor(height: number, width: number): Predictor {
  const size = height * width;
  const what = `${size} pixel values (${height}x${width}, row-major, integers 0..255 as in the IDX files)`;
  return {
    encode(input) {
      const one = isNumbers(input) && !(Array.isArray(input) && input.length === 0);
      if (!one && !(Array.isArray(input) && input.length > 0 && input.every(isNumbers))) {
        throw new Error(
          Array.isArray(input) && input.length === 0
            ? 'no images to classify: the array is empty'
            : `an image is ${what}, and several are an array of images; got ${describeValue(input)}` +
                (Array.isArray(input) ? ` holding ${describeValue(input.find((x) => !isNumbers(x)))}` : ''),
        );
      }
      const images: ArrayLike<number>[] = one ? [input as ArrayLike<number>] : (input as ArrayLike<number>[]);
      const pixels = new Uint8Array(images.length * size);
      images.forEach((image, i) => {
        const name = one ? 'the image' : `images[${i}]`;
        if (image.length !== size) throw new Error(`${name} has ${image.length} values, expected ${what}`);
        for (let k = 0; k < size; k++) {
          const v = image[k];
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
            const at = `pixel ${k} (row ${Math.floor(k / width)}, column ${k % width})`;
            throw new Error(
              `${name} ${at} is ${typeof v === 'number' ? v : describeValue(v)}: pixels are integers 0..255 as in the IDX files` +
                (typeof v === 'number' && v > 0 && v < 1 ? ' (multiply 0..1 values by 255 and round them)' : ''),
            );
          }
          pixels[i * size + k] = v;
        }
      });
      // The label field completes the batch as the store has it; a forward pass never reads it.
      return { batch: { rows: images.length, fields: { pixels, label: new Uint8Array(images.length) } } };
    },
    decode: (probs, classes) => classAnswer(probs, classes),
  };
}
