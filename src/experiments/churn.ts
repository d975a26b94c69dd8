/**
 * `codistill experiment churn`: how reproducible are a trained model's exact predictions across retrains?
 *
 * R retrains (seeds change initialisation and data order) of four kinds: a single model, a 2-model ensemble
 * (groups = 2, alpha = 0, served as the average of both), a codistilled model (groups = 2, each group's model
 * served alone), and a DiLoCo model (groups = 2 averaging their weights every exchange interval; group 0's model is
 * served: after an outer step both groups hold the same weights). For every pair of retrains of one kind, a teacher actor compares their predicted distributions on
 * the validation windows: total-variation distance, top-1 disagreement, and the paper's mean absolute difference of
 * p(class 1) (binary tasks only; n/a for the language model).
 */
import { join } from 'node:path';
import { workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { openSnapshotStore } from '../store/index.js';
import { loadLatestCheckpoint } from '../train/checkpoints.js';
import { evalChunkRows } from '../train/evaluator.js';
import { startTeacherActor, type TeacherClient } from '../train/teachers.js';
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { MetricName } from '../workloads/workload.js';
import { type Arm, type ArmResult, mergeOverrides, runArms } from './arms.js';
import { armConfig, sectionOverrides } from './budget.js';
import { type ExperimentContext, type ExperimentOutcome, finish, lossCurvePlots, preamble } from './context.js';
import { formatSpread, spread } from './curves.js';
import { barsSpec, type Series } from './plots.js';
import { Report } from './report.js';
import { armsTable } from './summary.js';
import { bytesTable } from './communication.js';

type Kind = 'single' | 'ensemble' | 'codistill' | 'diloco';

const KINDS: { kind: Kind; label: string; groups: number; distill: Record<string, unknown> }[] = [
  { kind: 'single', label: 'single model', groups: 1, distill: {} },
  { kind: 'ensemble', label: '2-model ensemble', groups: 2, distill: { alpha: 0 } },
  { kind: 'codistill', label: 'codistilled model', groups: 2, distill: {} },
  { kind: 'diloco', label: 'DiLoCo model', groups: 2, distill: { method: 'average' } },
];

/** The teacher-actor slot that holds group `group`'s model of retrain `retrain` of a kind. */
const slotName = (kind: Kind, retrain: number, group: number): string => `${kind}-r${retrain}-g${group}`;

/**
 * The predictors a retrain serves: the ensemble is one predictor of both models; codistillation gives one per group;
 * DiLoCo's groups share the weights of their last outer step, so its group 0 stands for the run.
 */
function servedSlots(kind: Kind, retrain: number): string[][] {
  const slot = (g: number) => slotName(kind, retrain, g);
  if (kind === 'single' || kind === 'diloco') return [[slot(0)]];
  if (kind === 'ensemble') return [[slot(0), slot(1)]];
  return [[slot(0)], [slot(1)]];
}

export interface PairChurn {
  kind: Kind;
  a: number;
  b: number;
  totalVariation: number;
  top1Disagreement: number;
  meanAbsDiff: number;
}

export interface KindChurn {
  kind: Kind;
  label: string;
  /** Validation loss of each served predictor of each retrain. */
  losses: number[];
  /** The workload's measures (accuracy, auc) of the same predictors. */
  metrics: Partial<Record<MetricName, number[]>>;
  pairs: PairChurn[];
}

async function loadWeights(actor: TeacherClient, r: ArmResult, kind: Kind, retrain: number): Promise<void> {
  const store = openSnapshotStore(join(r.runDir, 'checkpoints'));
  try {
    const saved = await loadLatestCheckpoint(store, r.arm.config);
    if (!saved || saved.step !== r.arm.config.steps) throw new Error(`${r.runDir}: no checkpoint at its last step (${r.arm.config.steps})`);
    for (const [g, gc] of saved.groups.entries()) {
      // A private copy: the store's arrays may be views of a larger buffer, which a transfer would take whole.
      const weights = gc.state.weights.slice();
      await actor.request({ type: 'load', id: 0, slot: slotName(kind, retrain, g), weights }, 'ok', [weights.buffer]);
    }
  } finally {
    await store.close();
  }
}

/** Every pair of retrains of every kind, measured by one teacher actor on the validation examples. */
export async function measureChurn(
  results: readonly ArmResult[],
  retrains: number,
  config: Config,
): Promise<{ kinds: KindChurn[]; reference?: { label: string; loss: number } }> {
  const data = await workloadOf(config).open(config);
  const { classes, validation, reference } = data;
  const chunkRows = evalChunkRows(data.positionsPerRow, classes);
  const metrics = workloadOf(config).metrics;
  await data.close();
  const actor = await startTeacherActor('churn', config, classes);
  const batch = () => {
    const copy = rowCopy(validation);
    return { batch: copy, transfer: batchBuffers(copy) };
  };
  try {
    const out: KindChurn[] = [];
    for (const k of KINDS) {
      const runs = results.filter((r) => r.arm.id.startsWith(`${k.kind}-`));
      for (const [i, r] of runs.entries()) await loadWeights(actor, r, k.kind, i);
      const losses: number[] = [];
      const measured: Partial<Record<MetricName, number[]>> = {};
      for (let i = 0; i < retrains; i++) {
        for (const slots of servedSlots(k.kind, i)) {
          const b = batch();
          const reply = await actor.request({ type: 'evaluate', id: 0, slots, batch: b.batch, chunkRows, metrics }, 'evaluated', b.transfer);
          // A served ensemble is the last entry (the averaged probabilities); a single model the first.
          const served = slots.length > 1 ? slots.length : 0;
          losses.push(served ? reply.ensembleLoss : reply.losses[0]);
          for (const m of metrics) (measured[m] ??= []).push(reply.metrics[m]![served]);
        }
      }
      const pairs: PairChurn[] = [];
      for (let i = 0; i < retrains; i++) {
        for (let j = i + 1; j < retrains; j++) {
          const [si, sj] = [servedSlots(k.kind, i), servedSlots(k.kind, j)];
          for (let p = 0; p < si.length; p++) {
            const b = batch();
            const c = await actor.request({ type: 'churn', id: 0, a: si[p], b: sj[p], batch: b.batch, chunkRows }, 'churn', b.transfer);
            pairs.push({ kind: k.kind, a: i, b: j, totalVariation: c.totalVariation, top1Disagreement: c.top1Disagreement, meanAbsDiff: classes === 2 ? c.meanAbsDiff : NaN });
          }
        }
      }
      for (let i = 0; i < retrains; i++) {
        for (let g = 0; g < k.groups; g++) await actor.request({ type: 'drop', id: 0, slot: slotName(k.kind, i, g) }, 'ok');
      }
      out.push({ kind: k.kind, label: k.label, losses, metrics: measured, pairs });
    }
    return { kinds: out, reference };
  } finally {
    await actor.close();
  }
}

export async function churnExperiment(ctx: ExperimentContext): Promise<ExperimentOutcome> {
  const s = ctx.budget.churn;
  const R = s.retrains;
  const seeds = Array.from({ length: R }, (_, r) => ctx.budget.seeds[0] + r);
  const arms: Arm[] = seeds.flatMap((seed, r) =>
    KINDS.map((k) => ({
      id: `${k.kind}-r${r + 1}`,
      label: k.label,
      seed,
      config: armConfig(ctx.budget, ctx.set, mergeOverrides(sectionOverrides(s, s.lr), { seed, groups: k.groups, optim: { batch: s.batch }, distill: k.distill })),
    })),
  );
  const results = await runArms(arms, { out: ctx.out, write: ctx.write });
  (ctx.write ?? ((l: string) => process.stderr.write(`${l}\n`)))(`churn: comparing the predictions of every pair of retrains`);
  const { kinds: churn, reference } = await measureChurn(results, R, results[0].arm.config);

  const report = new Report(ctx.out, 'Experiment: prediction churn between retrains');
  const sample = results[0].arm.config;
  const workload = workloadOf(sample);
  const binary = churn[0].pairs.some((p) => Number.isFinite(p.meanAbsDiff));
  preamble(
    report,
    ctx,
    results[0],
    `${R} retrains (seeds ${seeds.join(', ')}: each changes initialisation and data order) of a single model, a 2-model ensemble ` +
      `(two independent groups, predictions averaged) and a codistilled pair (alpha ${sample.distill.alpha}, exchange every ` +
      `${sample.distill.exchangeEvery} steps; each group's model is served alone, so each retrain gives two codistilled models ` +
      `and each pair of retrains two comparisons, group 0 with group 0 and group 1 with group 1), and a DiLoCo pair (the ` +
      `same 2 groups averaging their weights through an outer Nesterov step, outer lr ${sample.distill.outerLr}, momentum ` +
      `${sample.distill.outerMomentum}, every ${sample.distill.exchangeEvery} steps; group 0's model served). Batch ${s.batch} per group, ` +
      `${s.steps} steps. Churn is measured on the ${sample.eval.examples} validation examples (every position of each).`,
  );
  report.table(armsTable(results));
  report.table(bytesTable(results, () => 1));
  const fmt = (xs: number[], digits: number) => (xs.every((x) => !Number.isFinite(x)) ? 'n/a' : formatSpread(spread(xs), digits));
  report.table({
    name: 'churn',
    title: 'Churn between retrains of the same kind (mean ± sd over pairs) and validation loss (mean ± sd over retrains)',
    header: [
      'kind', `val loss (nats/${workload.unit.replace(/s$/, '')})`, ...workload.metrics.map((m) => `val ${m}`),
      'pairs', 'total variation', 'top-1 disagreement', 'mean abs diff p(class 1)',
    ],
    rows: [
      ...churn.map((c) => [
        c.label,
        fmt(c.losses, 4),
        ...workload.metrics.map((m) => fmt(c.metrics[m] ?? [], 4)),
        String(c.pairs.length),
        fmt(c.pairs.map((p) => p.totalVariation), 4),
        fmt(c.pairs.map((p) => p.top1Disagreement), 4),
        fmt(c.pairs.map((p) => p.meanAbsDiff), 4),
      ]),
      // A constant predictor churns not at all: it is here for its loss, the floor any model must beat.
      ...(reference ? [[reference.label, reference.loss.toFixed(4), ...workload.metrics.map(() => '-'), '-', '-', '-', '-']] : []),
    ],
  });
  // For two classes the total variation IS the absolute difference of p(class 1): name it as the paper does.
  const panels = [binary ? 'mean abs diff of p(class 1)' : 'total variation distance', 'top-1 disagreement'];
  await report.plot(
    'churn',
    barsSpec({
      title: 'Prediction churn between retrains',
      subtitle: 'bar: mean over pairs of retrains; black: ± 1 sd; grey dots: pairs; lower is more reproducible',
      rows: churn.flatMap((c) => c.pairs.flatMap((p) => [
        { category: c.label, panel: panels[0], value: binary ? p.meanAbsDiff : p.totalVariation },
        { category: c.label, panel: panels[1], value: p.top1Disagreement },
      ])),
      categories: churn.map((c) => c.label),
      panels,
    }),
    `${binary ? 'Mean absolute difference of the predicted probabilities' : 'Total-variation distance'} and top-1 disagreement between retrains, per kind`,
  );
  const series: Series[] = KINDS.map((k) => ({
    name: k.label,
    results: results.filter((r) => r.arm.label === k.label),
    measure: k.kind === 'ensemble' ? 'ensemble' : 'model',
  }));
  await lossCurvePlots(report, series, [], 'per kind (over retrains)', 'per kind');

  const tv = (k: Kind) => spread(churn.find((c) => c.kind === k)!.pairs.map((p) => (binary ? p.meanAbsDiff : p.totalVariation)));
  const [single, ens, codi, diloco] = [tv('single'), tv('ensemble'), tv('codistill'), tv('diloco')];
  const lines = [
    '## What it shows, and what it does not\n',
    `- ${binary ? 'Mean absolute difference of p(class 1)' : 'Total variation'} between retrains: single model ${formatSpread(single, 4)}, 2-model ensemble ${formatSpread(ens, 4)}, ` +
      `codistilled model ${formatSpread(codi, 4)}. Codistillation ${codi.mean < single.mean ? 'lowered' : 'did not lower'} the churn of a single ` +
      `model by ${(100 * (1 - codi.mean / single.mean)).toFixed(0)}% (the ensemble: ${(100 * (1 - ens.mean / single.mean)).toFixed(0)}%).`,
    `- DiLoCo, the same 2 groups averaging their weights every ${sample.distill.exchangeEvery} steps instead of teaching each other: ` +
      `${formatSpread(diloco, 4)}, ${Math.abs(100 * (1 - diloco.mean / single.mean)).toFixed(0)}% ${diloco.mean < single.mean ? 'lower' : 'higher'} ` +
      'than a single model\'s. Its groups share one initialisation within a retrain, but retrains differ in it as single models do.',
    '- Churn and loss move together: a model that is further from converged disagrees more with its retrain, so compare churn ' +
      'beside the validation loss, not alone.',
    binary
      ? '- This is the paper\'s measure of churn: the mean absolute difference of the predicted probabilities of two retrains ' +
        '(for two classes it equals the total-variation distance).'
      : '- The paper measured churn as the mean absolute difference of predicted click probabilities (a binary task); with ' +
        'more than two classes that measure does not apply (n/a) and total variation over the classes plays its part.',
    `- Small scale: ${R} retrains give ${(R * (R - 1)) / 2} pair(s) per kind; the spread over so few pairs is itself uncertain.`,
  ];
  report.text(lines.join('\n') + '\n');
  return finish(report, ctx, { seeds, churn, reference });
}
