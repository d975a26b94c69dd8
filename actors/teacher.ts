/**
 * Teacher actor: forward passes of stale snapshots, off the students' threads.
 * One model object per loaded slot; all work inside tf.tidy. A distillation target is written into the shared buffer
 * its request brings (src/train/teacher-target.ts); other results leave as transferred typed arrays.
 * Fault injection: the predict or evaluate request of a given step throws, or ends this worker.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { backendName, initBackend } from '../src/backend.js';
import type { Config } from '../src/config/schema.js';
import { accuracy, auc } from '../src/train/measures.js';
import { flatToWeights } from '../src/train/optim.js';
import { enactFault, type WorkerFaultKind } from '../src/train/faults.js';
import { RequestError, serveActor } from '../src/util/actor.js';
import { averaged, teacherTarget } from '../src/train/teacher-target.js';
import { rowView } from '../src/workloads/batch.js';
import { loadWorkload } from '../src/workloads/registry.js';
import type { Batch, MetricName, Model } from '../src/workloads/workload.js';
import type { TeacherReply, TeacherRequest } from '../src/protocol.js';

let spec: { config: Config; classes: number } | undefined;
const slots = new Map<string, Model>();
/** Injected faults by step, for the predict and evaluate requests. */
const faults = new Map<number, WorkerFaultKind>();

function checkFault(step: number | undefined): void {
  const kind = step === undefined ? undefined : faults.get(step);
  if (kind) enactFault(kind, `injected fault at step ${step}`);
}

function modelOf(slot: string): Model {
  const m = slots.get(slot);
  if (!m) throw new Error(`teacher has no snapshot loaded in slot "${slot}"`);
  return m;
}

/** Runs `f` over consecutive row chunks of a batch (bounding memory) and sums what it returns. */
function overChunks(batch: Batch, chunkRows: number, f: (chunk: Batch) => number[]): number[] {
  let totals: number[] = [];
  for (let r = 0; r < batch.rows; r += chunkRows) {
    const chunk = rowView(batch, r, Math.min(r + chunkRows, batch.rows));
    const parts = f(chunk);
    totals = totals.length ? totals.map((v, i) => v + parts[i]) : parts;
  }
  return totals;
}

/**
 * Sum over positions of -log p(label) for each model and for their averaged probabilities; with `keep`, also the
 * probabilities of each (models, then the ensemble) and the labels, for measures that need every position.
 */
function crossEntropySums(models: Model[], chunk: Batch, keep?: { probs: Float32Array[][]; labels: Int32Array[] }): number[] {
  const [sums, probs, labels] = tf.tidy(() => {
    const labels = models[0].labels(chunk);
    const probs = models.map((m) => tf.softmax(m.logits(chunk)));
    const all = [...probs, probs.length === 1 ? probs[0] : tf.addN(probs).div(probs.length)];
    const mask = tf.oneHot(labels, models[0].classes).toFloat();
    const nll = (p: tf.Tensor) => tf.neg(tf.log(tf.sum(p.mul(mask), 1).maximum(1e-30))).sum();
    return [tf.stack(all.map(nll)), keep ? all : [], keep ? labels : undefined] as const;
  });
  const out = Array.from(sums.dataSync());
  if (keep) {
    probs.forEach((p, i) => (keep.probs[i] ??= []).push(p.dataSync() as Float32Array));
    keep.labels.push(labels!.dataSync() as Int32Array);
  }
  tf.dispose([sums, ...probs, ...(labels ? [labels] : [])]);
  return out;
}

const concat = (parts: Float32Array[] | Int32Array[]): Float32Array | Int32Array => {
  const out = parts[0] instanceof Int32Array ? new Int32Array(parts.reduce((n, p) => n + p.length, 0)) : new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A measure of each model and the ensemble from their probabilities [P, C] and the labels. */
function measure(name: MetricName, probs: Float32Array[], labels: Int32Array, classes: number): number[] {
  if (name === 'accuracy') return probs.map((p) => accuracy(p, labels, classes));
  if (classes !== 2) throw new RequestError(`the metric "auc" needs a binary task, not ${classes} classes`);
  return probs.map((p) => auc(p.filter((_, i) => i % 2 === 1), labels));
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
      const info = await initBackend(req.config.backend, req.config);
      spec = { config: req.config, classes: req.classes };
      return { reply: { type: 'ready', id: req.id, backend: backendName(info) } };
    }
    case 'load': {
      if (!spec) throw new Error('teacher used before init');
      let m = slots.get(req.slot);
      if (!m) {
        m = await loadWorkload(spec.config.workload).buildModel({ config: spec.config, classes: spec.classes, seed: 0, role: 'teacher' });
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
      checkFault(req.step);
      const t0 = performance.now();
      const target = teacherTarget(req.slots.map(modelOf), req.batch, req, req.into);
      return { reply: { type: 'predicted', id: req.id, target, ms: performance.now() - t0 } };
    }
    case 'evaluate': {
      checkFault(req.step);
      const models = req.slots.map(modelOf);
      const names = req.metrics ?? [];
      const keep = names.length ? { probs: [] as Float32Array[][], labels: [] as Int32Array[] } : undefined;
      const sums = overChunks(req.batch, req.chunkRows, (c) => crossEntropySums(models, c, keep));
      const positions = models[0].positions(req.batch.rows);
      const metrics: Partial<Record<MetricName, number[]>> = {};
      if (keep) {
        const probs = keep.probs.map((parts) => concat(parts) as Float32Array);
        const labels = concat(keep.labels) as Int32Array;
        for (const name of names) metrics[name] = measure(name, probs, labels, models[0].classes);
      }
      return {
        reply: {
          type: 'evaluated',
          id: req.id,
          losses: sums.slice(0, models.length).map((s) => s / positions),
          ensembleLoss: sums[models.length] / positions,
          metrics,
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
    case 'injectFault':
      if (req.kind !== 'throw' && req.kind !== 'exit') throw new Error(`unknown fault kind ${JSON.stringify(req.kind)}`);
      faults.set(req.atStep, req.kind);
      return { reply: { type: 'ok', id: req.id } };
  }
}

serveActor<TeacherRequest>(parentPort!, handle);
