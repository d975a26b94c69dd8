/**
 * Teacher actor: forward passes of stale snapshots, off the students' threads (DESIGN.md, "Actors").
 * One model object per loaded slot; all work inside tf.tidy; results leave as transferred typed arrays.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import type { ModelConfig } from '../src/config/schema.js';
import { buildModel } from '../src/model/build.js';
import type { Batch, Model } from '../src/model/workload.js';
import { flatToWeights } from '../src/train/optim.js';
import { serveActor } from '../src/util/actor.js';
import type { TeacherTarget } from './replica-messages.js';
import type { TeacherReply, TeacherRequest } from './teacher-messages.js';

let spec: { model: ModelConfig; classes: number } | undefined;
const slots = new Map<string, Model>();

function modelOf(slot: string): Model {
  const m = slots.get(slot);
  if (!m) throw new Error(`teacher has no snapshot loaded in slot "${slot}"`);
  return m;
}

/** Averaged probabilities (or logits) of the slots on a batch, [P, C]. Call inside tidy. */
function averaged(models: Model[], batch: Batch, output: 'probs' | 'logits', at?: tf.Tensor1D): tf.Tensor2D {
  const parts = models.map((m) => (output === 'probs' ? tf.softmax(m.logits(batch, at)) : m.logits(batch, at)));
  return (parts.length === 1 ? parts[0] : tf.addN(parts).div(parts.length)) as tf.Tensor2D;
}

function predict(req: Extract<TeacherRequest, { type: 'predict' }>): { target: TeacherTarget; transfer: ArrayBufferLike[] } {
  const models = req.slots.map(modelOf);
  const at = () => (req.positions ? tf.tensor1d(req.positions, 'int32') : undefined);
  if (req.topK > 0) {
    const [values, indices] = tf.tidy(() => {
      const top = tf.topk(averaged(models, req.batch, req.output, at()), req.topK);
      return [top.values.div(top.values.sum(1, true)), top.indices];
    });
    const probs = values.dataSync() as Float32Array;
    const idx = indices.dataSync() as Int32Array;
    tf.dispose([values, indices]);
    return { target: { kind: 'topk', k: req.topK, indices: idx, probs }, transfer: [idx.buffer, probs.buffer] };
  }
  const out = tf.tidy(() => averaged(models, req.batch, req.output, at()));
  const values = out.dataSync() as Float32Array;
  out.dispose();
  return { target: { kind: 'dense', values }, transfer: [values.buffer] };
}

/** Runs `f` over consecutive row chunks of a batch (bounding memory) and sums what it returns. */
function overChunks(batch: Batch, chunkRows: number, f: (chunk: Batch) => number[]): number[] {
  let totals: number[] = [];
  for (let r = 0; r < batch.rows; r += chunkRows) {
    const rows = Math.min(chunkRows, batch.rows - r);
    const chunk = { data: batch.data.subarray(r * batch.cols, (r + rows) * batch.cols), rows, cols: batch.cols };
    const parts = f(chunk);
    totals = totals.length ? totals.map((v, i) => v + parts[i]) : parts;
  }
  return totals;
}

/** Sum over positions of -log p(label) for each model and for their averaged probabilities. */
function crossEntropySums(models: Model[], chunk: Batch): number[] {
  const sums = tf.tidy(() => {
    const labels = models[0].labels(chunk);
    const probs = models.map((m) => tf.softmax(m.logits(chunk)));
    const mask = tf.oneHot(labels, models[0].classes).toFloat();
    const nll = (p: tf.Tensor) => tf.neg(tf.log(tf.sum(p.mul(mask), 1).maximum(1e-30))).sum();
    const each = probs.map(nll);
    const ensemble = nll(probs.length === 1 ? probs[0] : tf.addN(probs).div(probs.length));
    return tf.stack([...each, ensemble]);
  });
  const out = Array.from(sums.dataSync());
  sums.dispose();
  return out;
}

function churnSums(a: Model[], b: Model[], chunk: Batch): number[] {
  const sums = tf.tidy(() => {
    const pa = averaged(a, chunk, 'probs');
    const pb = averaged(b, chunk, 'probs');
    const tv = tf.abs(pa.sub(pb)).sum(1).mul(0.5).sum();
    const disagree = tf.notEqual(pa.argMax(1), pb.argMax(1)).toFloat().sum();
    const classes = pa.shape[1];
    const mad = classes === 2 ? tf.abs(pa.slice([0, 1], [-1, 1]).sub(pb.slice([0, 1], [-1, 1]))).sum() : tf.scalar(0);
    return tf.stack([tv, disagree, mad]);
  });
  const out = Array.from(sums.dataSync());
  sums.dispose();
  return out;
}

async function handle(req: TeacherRequest): Promise<{ reply: TeacherReply; transfer?: ArrayBufferLike[] }> {
  switch (req.type) {
    case 'init': {
      const info = await initBackend(req.backend);
      spec = { model: req.model, classes: req.classes };
      return { reply: { type: 'ready', id: req.id, backend: info.name } };
    }
    case 'load': {
      if (!spec) throw new Error('teacher used before init');
      let m = slots.get(req.slot);
      if (!m) {
        // Teachers see each batch once, out of any stream: they never carry LSTM state between batches.
        m = buildModel({ config: { ...spec.model, carryState: false }, classes: spec.classes, seed: 0 });
        slots.set(req.slot, m);
      }
      flatToWeights(req.weights, m.variables);
      return { reply: { type: 'ok', id: req.id } };
    }
    case 'drop':
      slots.get(req.slot)?.dispose();
      slots.delete(req.slot);
      return { reply: { type: 'ok', id: req.id } };
    case 'predict': {
      const t0 = performance.now();
      const { target, transfer } = predict(req);
      return { reply: { type: 'predicted', id: req.id, target, ms: performance.now() - t0 }, transfer };
    }
    case 'evaluate': {
      const models = req.slots.map(modelOf);
      const sums = overChunks(req.batch, req.chunkRows, (c) => crossEntropySums(models, c));
      const positions = models[0].positions(req.batch.rows);
      return {
        reply: {
          type: 'evaluated',
          id: req.id,
          losses: sums.slice(0, models.length).map((s) => s / positions),
          ensembleLoss: sums[models.length] / positions,
          positions,
        },
      };
    }
    case 'churn': {
      const a = req.a.map(modelOf);
      const b = req.b.map(modelOf);
      const [tv, disagree, mad] = overChunks(req.batch, req.chunkRows, (c) => churnSums(a, b, c));
      const positions = a[0].positions(req.batch.rows);
      return {
        reply: { type: 'churn', id: req.id, totalVariation: tv / positions, top1Disagreement: disagree / positions, meanAbsDiff: mad / positions, positions },
      };
    }
    case 'tensors':
      return { reply: { type: 'tensors', id: req.id, tensors: tf.memory().numTensors } };
  }
}

serveActor<TeacherRequest>(parentPort!, handle);
