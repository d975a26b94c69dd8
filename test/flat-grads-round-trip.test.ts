/** Gradients and weights to one Float32Array in variable order and back, as the group's all-reduce needs. */
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { flatLength, flatToGrads, flatToWeights, gradsToFlat, weightsToFlat } from '../src/train/optim.js';

for (const backend of ['wasm', 'cpu'] as const) {
  t.test(`round trips on ${backend}`, async (t) => {
    await initBackend(backend);
    const vars = [tf.variable(tf.tensor2d([[1, 2], [3, 4]])), tf.variable(tf.tensor1d([5, 6, 7]))];
    t.equal(flatLength(vars), 7);
    const before = tf.memory().numTensors;

    // Gradients keyed by name, in an order that differs from the variables': the flat layout follows the variables.
    const grads = { [vars[1].name]: tf.tensor1d([0.5, 0.6, 0.7]), [vars[0].name]: tf.tensor2d([[0.1, 0.2], [0.3, 0.4]]) };
    const slot = new Float32Array(7);
    gradsToFlat(grads, vars, slot);
    t.same(Array.from(slot), Array.from(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])));
    const back = flatToGrads(slot, vars);
    t.same(Object.keys(back), vars.map((v) => v.name), 'keys in variable order');
    t.same(back[vars[0].name].shape, [2, 2]);
    slot.fill(9); // the next step reuses the buffer: the tensors must own their values
    t.same(Array.from(back[vars[0].name].dataSync()), Array.from(new Float32Array([0.1, 0.2, 0.3, 0.4])));
    tf.dispose([...Object.values(grads), ...Object.values(back)]);

    const weights = weightsToFlat(vars);
    t.same(Array.from(weights), [1, 2, 3, 4, 5, 6, 7]);
    const shared = new Float32Array([7, 6, 5, 4, 3, 2, 1]);
    flatToWeights(shared, vars);
    shared.fill(0);
    t.same(Array.from(weightsToFlat(vars)), [7, 6, 5, 4, 3, 2, 1], 'the variables own their values');
    t.equal(tf.memory().numTensors, before, 'no tensors left behind');

    t.throws(() => gradsToFlat({}, vars, new Float32Array(7)), /no gradient for variable/);
    t.throws(() => flatToWeights(new Float32Array(3), vars), /holds 3 floats; the model's variables need 7/);
    tf.dispose(vars);
  });
}
