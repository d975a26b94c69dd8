import * as tf from '@tensorflow/tfjs';

/** tfjs variable names are global to a thread; a per-instance prefix lets several models live side by side. */
const instances = new Map<string, number>();

/**
 * Makes a model's trainable variables in order, each named `<kind><n>/<name>` and seeded from (seed, name), so that
 * adding a variable never shifts the others' initial values. `names` and `variables` list them as they were made:
 * the fixed order that gradients, the all-reduce and snapshots follow.
 */
export function variableMaker(kind: string, seed: number) {
  const n = instances.get(kind) ?? 0;
  instances.set(kind, n + 1);
  const prefix = `${kind}${n}`;
  const names: string[] = [];
  const variables: tf.Variable[] = [];
  const seedOf = (name: string) => `${seed}/${name}`;
  return {
    names,
    variables,
    seedOf,
    make(name: string, init: () => tf.Tensor): tf.Variable {
      const v = tf.tidy(() => tf.variable(init(), true, `${prefix}/${name}`));
      names.push(name);
      variables.push(v);
      return v;
    },
    /** Glorot-uniform values of `shape`, seeded by the variable's name (fans default to a matrix's rows and columns). */
    glorot(name: string, shape: number[], fanIn = shape[0], fanOut = shape[1]): tf.Tensor {
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      return tf.randomUniform(shape, -limit, limit, 'float32', seedOf(name));
    },
  };
}
