/**
 * `codistill experiment scaling`: where does synchronous SGD stop gaining from a bigger batch, and what do two
 * codistilled groups buy past that point (the paper's claim holds past the sync-SGD limit, where a bigger batch no longer cuts the steps)?
 *
 *   1. sync SGD (groups = 1) at batch B, 2B, 4B..., the rate scaled by sqrt(batch / B) with the same warm-up;
 *      beside it asynchronous SGD at the same batches: m = batch / B workers of batch B each, every update m - 1
 *      updates stale (sgd.mode = delayed: what m equally fast parameter-server workers see, reproducibly), at the
 *      rate of batch B (each update is a batch-B gradient);
 *   2. the limit: the first batch b whose doubling cuts the steps to the deepest shared target by less than
 *      (1 - limitRatio); the largest batch if doubling never stopped paying (then the report says so);
 *   3. at the limit batch L: 2 codistilled groups (disjoint data), 2 independent models (alpha = 0) and their
 *      ensemble, label smoothing (groups = 1), and the two exchanges by averaging at the codistillation arm's groups,
 *      batch and interval: local SGD (plain averaging) and DiLoCo (an outer Nesterov step), every arm with the same
 *      seeds.
 *
 * Every arm's bytes per step on a network are reported too, its groups laid out as workers of batch B each.
 */
import { type Arm, type ArmResult, byLabel, mergeOverrides, runArms } from './arms.js';
import { armConfig, sectionOverrides } from './budget.js';
import { type ExperimentContext, type ExperimentOutcome, finish, lossCurvePlots, preamble } from './context.js';
import { finalValue, formatSpread, type Spread } from './curves.js';
import type { Series } from './plots.js';
import { Report, cell } from './report.js';
import { bytesTable } from './communication.js';
import {
  armsTable,
  deepestCommonTarget,
  ratio,
  type SeriesSummary,
  summarise,
  targetTables,
  targetsAbove,
} from './summary.js';

const syncLabel = (b: number) => `sync SGD, batch ${b}`;
const asyncLabel = (b: number, base: number) => `async SGD, batch ${b} (${b / base} workers × ${base})`;

/** The rate at batch b: square-root scaling from the budget's rate at batch B. */
export const scaledLr = (lr: number, base: number, b: number): number => lr * Math.sqrt(b / base);

interface ArmSpec {
  id: string;
  label: string;
  seed: number;
  /** The group batch. */
  batch: number;
  /** The batch of one update, whose square-root-scaled rate the arm takes (the group's, by default). */
  updateBatch?: number;
  /** The tuned multiple of that rate (1 without tuning). */
  factor?: number;
  more: Record<string, unknown>;
}

function arm(ctx: ExperimentContext, a: ArmSpec): Arm {
  const s = ctx.budget.scaling;
  const lr = scaledLr(s.lr, s.batch, a.updateBatch ?? a.batch) * (a.factor ?? 1);
  const over = mergeOverrides(sectionOverrides(s, lr), { seed: a.seed, optim: { batch: a.batch } }, a.more);
  return { id: `${a.id}-s${a.seed}`, label: a.label, seed: a.seed, config: armConfig(ctx.budget, ctx.set, over) };
}

/** Sync SGD's folder names: the tuned rate's factor is part of the name when it is not 1. */
const syncId = (b: number, factor: number) => (factor === 1 ? `sync-b${b}` : `sync-b${b}-x${factor}`);

export interface Limit {
  batch: number;
  /** Whether a doubling stopped paying within the sweep (false: the largest batch, still gaining). */
  saturated: boolean;
  /**
   * steps(next batch) / steps(batch) at the deepest target both reached, per consecutive pair, with the steps of the
   * smaller and the bigger batch there.
   */
  ratios: { from: number; to: number; target?: number; ratio?: { value: number; sd: number }; smaller?: Spread; bigger?: Spread }[];
}

export function findLimit(batches: readonly number[], sync: readonly SeriesSummary[], limitRatio: number): Limit {
  const ratios: Limit['ratios'] = [];
  for (let k = 0; k + 1 < batches.length; k++) {
    const r = stepsRatio(sync[k + 1], sync[k]);
    ratios.push({
      from: batches[k], to: batches[k + 1], target: r?.target,
      ratio: r && { value: r.value, sd: r.sd }, smaller: r?.b, bigger: r?.a,
    });
  }
  const first = ratios.find((r) => r.ratio !== undefined && r.ratio.value >= limitRatio);
  return first ? { batch: first.from, saturated: true, ratios } : { batch: batches[batches.length - 1], saturated: false, ratios };
}

/** Steps ratio of series a to series b at the deepest target both reached in every seed. */
function stepsRatio(a: SeriesSummary, b: SeriesSummary): { target: number; value: number; sd: number; a: Spread; b: Spread } | undefined {
  const target = deepestCommonTarget([a, b]);
  if (target === undefined) return undefined;
  const sa = a.toTarget.find((t) => t.target === target)!.steps;
  const sb = b.toTarget.find((t) => t.target === target)!.steps;
  return { target, ...ratio(sa, sb), a: sa, b: sb };
}

export async function scalingExperiment(ctx: ExperimentContext): Promise<ExperimentOutcome> {
  const s = ctx.budget.scaling;
  const seeds = ctx.budget.seeds;
  const batches = s.multipliers.map((m) => s.batch * m);

  const asyncBatches = batches.filter((b) => b > s.batch);
  const F = s.lrFactors;
  const tuning = F.length > 1;
  // Every arm is known in number before the limit is: the tuning runs, the sweeps, and 5 per seed at the limit.
  const total = batches.length * (tuning ? F.length + seeds.length - 1 : seeds.length) + asyncBatches.length * seeds.length + 5 * seeds.length;
  const syncArm = (b: number, seed: number, factor: number, label = syncLabel(b)) =>
    arm(ctx, { id: syncId(b, factor), label, seed, batch: b, factor, more: { groups: 1 } });

  // 0. The rate at each batch, tuned: the first seed at each factor of the square-root-scaled rate; the lowest final
  // loss wins, and its run is that seed's arm of the sweep.
  const chosen = new Map(batches.map((b) => [b, 1]));
  let tuned: ArmResult[] = [];
  let tuneTable: string[][] = [];
  if (tuning) {
    const tuneArms = batches.flatMap((b) => F.map((f) => syncArm(b, seeds[0], f, `tuning: sync SGD, batch ${b}, rate × ${f}`)));
    const tries = await runArms(tuneArms, { out: ctx.out, write: ctx.write, numbering: { before: 0, total } });
    tuneTable = batches.map((b) => {
      const finals = F.map((f) => finalValue(tries.find((r) => r.arm.id === `${syncId(b, f)}-s${seeds[0]}`)!.curve, 'model'));
      const best = F[finals.reduce((k, v, i) => (v < finals[k] ? i : k), 0)];
      chosen.set(b, best);
      return [String(b), ...finals.map((v) => cell(v, 4)), `× ${best} = ${(scaledLr(s.lr, s.batch, b) * best).toPrecision(3)}`];
    });
    tuned = batches.map((b) => {
      const r = tries.find((x) => x.arm.id === `${syncId(b, chosen.get(b)!)}-s${seeds[0]}`)!;
      return { ...r, arm: { ...r.arm, label: syncLabel(b) } };
    });
  }

  // 1. The sync-SGD sweep, and async SGD at the same batches (one worker of batch B is sync SGD at B: not run twice).
  const syncArms = batches.flatMap((b) => seeds.filter((seed) => !tuning || seed !== seeds[0]).map((seed) => syncArm(b, seed, chosen.get(b)!)));
  const asyncArms = asyncBatches.flatMap((b) =>
    // Each update is a batch-B gradient: the rate of batch B.
    seeds.map((seed) =>
      arm(ctx, {
        id: `async-b${b}`, label: asyncLabel(b, s.batch), seed, batch: b, updateBatch: s.batch, factor: chosen.get(s.batch),
        more: { groups: 1, replicas: b / s.batch, sgd: { mode: 'delayed', staleness: null } },
      }),
    ),
  );
  const swept = await runArms([...syncArms, ...asyncArms], { out: ctx.out, write: ctx.write, numbering: { before: tuning ? batches.length * F.length : 0, total } });
  const syncResults = [...tuned, ...swept];
  const syncBy = byLabel(syncResults);
  const targets = targetsAbove(syncBy.get(syncLabel(batches[0]))!, 'model', s.targetOffsets);
  const syncSummaries = batches.map((b) => summarise({ name: syncLabel(b), results: syncBy.get(syncLabel(b))!, measure: 'model' }, targets));
  const asyncSummaries = asyncBatches.map((b) => summarise({ name: asyncLabel(b, s.batch), results: syncBy.get(asyncLabel(b, s.batch))!, measure: 'model' }, targets));
  const limit = findLimit(batches, syncSummaries, s.limitRatio);
  const asyncLimit = findLimit(batches, [syncSummaries[0], ...asyncSummaries], s.limitRatio);
  const L = limit.batch;

  // 2. The alternatives at the limit batch.
  const ls = s.labelSmoothing;
  const labels = {
    codistill: `codistillation, 2 groups × batch ${L}`,
    independent: `independent model (1 of 2), batch ${L}`,
    ensemble: `ensemble of 2 independent, batch ${L} each`,
    smoothing: `label smoothing ${ls}, batch ${L}`,
    local: `local SGD, 2 groups × batch ${L}`,
    diloco: `DiLoCo, 2 groups × batch ${L}`,
  };
  const atL = (id: string, label: string, seed: number, more: Record<string, unknown>) => arm(ctx, { id, label, seed, batch: L, factor: chosen.get(L), more });
  const limitArms = seeds.flatMap((seed) => [
    atL(`codistill-b${L}`, labels.codistill, seed, { groups: 2 }),
    atL(`independent-b${L}`, labels.independent, seed, { groups: 2, distill: { alpha: 0 } }),
    atL(`label-smoothing-b${L}`, labels.smoothing, seed, { groups: 1, distill: { labelSmoothing: ls } }),
    atL(`local-sgd-b${L}`, labels.local, seed, { groups: 2, distill: { method: 'average', outerLr: 1, outerMomentum: 0 } }),
    atL(`diloco-b${L}`, labels.diloco, seed, { groups: 2, distill: { method: 'average' } }),
  ]);
  const limitResults = await runArms(limitArms, { out: ctx.out, write: ctx.write, numbering: { before: total - limitArms.length, total } });
  const limitBy = byLabel(limitResults);

  const seriesAtL = (name: string, measure: Series['measure'] = 'model', results = limitBy.get(name)!): Series => ({ name, results, measure });
  const series: Series[] = [
    ...batches.map((b) => ({ name: syncLabel(b), results: syncBy.get(syncLabel(b))!, measure: 'model' as const })),
    ...asyncBatches.map((b) => ({ name: asyncLabel(b, s.batch), results: syncBy.get(asyncLabel(b, s.batch))!, measure: 'model' as const })),
    seriesAtL(labels.codistill),
    seriesAtL(labels.independent),
    seriesAtL(labels.ensemble, 'ensemble', limitBy.get(labels.independent)!),
    seriesAtL(labels.smoothing),
    seriesAtL(labels.local),
    seriesAtL(labels.diloco),
  ];
  // The sweeps are summarised already (the limits needed them).
  const sweepSeries = batches.length + asyncBatches.length;
  const summaries = [...syncSummaries, ...asyncSummaries, ...series.slice(sweepSeries).map((x) => summarise(x, targets))];
  const all: ArmResult[] = [...syncResults, ...limitResults];

  // 3. The report.
  const report = new Report(ctx.out, 'Experiment: synchronous-SGD scaling limit, and codistillation past it');
  preamble(
    report,
    ctx,
    all[0],
    `Sync SGD at batches ${batches.join(', ')} (learning rate ${s.lr} at batch ${s.batch}, scaled by the square root of the batch ` +
      `ratio${tuning ? ` and tuned at each batch over the multiples ${F.join(', ')} of that rate` : ''}, ${s.warmupSteps} warm-up steps), ` +
      `and async SGD at the same batches; then, at the limit batch, codistillation, two independent models and their ` +
      `ensemble, label smoothing, local SGD and DiLoCo. Seeds ${seeds.join(', ')} for every arm. Targets are ${s.targetOffsets.join(', ')} nats ` +
      `above the final loss of the worst seed of sync SGD at batch ${batches[0]}.`,
  );
  report.table(armsTable(all));
  if (tuning) {
    report.table({
      name: 'lr-tuning',
      title: `The rate at each batch, tuned on seed ${seeds[0]}: final validation loss at each multiple of the square-root-scaled rate`,
      header: ['batch', ...F.map((f) => `rate × ${f}`), 'chosen'],
      rows: tuneTable,
    });
  }
  report.text('## Where sync SGD stops gaining from a bigger batch\n');
  const doublings = (name: string, title: string, l: Limit) => ({
    name,
    title: `${title}: steps(bigger) / steps(smaller) at the deepest target both reached (limit when ≥ ${s.limitRatio})`,
    header: ['from batch', 'to batch', 'target', 'steps ratio', 'steps at smaller', 'steps at bigger'],
    rows: l.ratios.map((r) => {
      const sp = (x?: Spread) => (x ? formatSpread(x, 0) : 'n/a');
      return [String(r.from), String(r.to), cell(r.target, 3), r.ratio ? `${r.ratio.value.toFixed(2)} ± ${r.ratio.sd.toFixed(2)}` : 'n/a', sp(r.smaller), sp(r.bigger)];
    }),
  });
  report.table(doublings('sync-scaling', 'Doubling the batch of sync SGD', limit));
  // A later doubling that pays again means the pause at L may be seed noise or a poorly scaled rate, not a limit.
  const later = limit.ratios.filter((r) => r.from > L && r.ratio && r.ratio.value < s.limitRatio);
  const caution = later.length
    ? ` **Caution:** a later doubling paid again (${later.map((r) => `${r.from} → ${r.to}: ratio ${r.ratio!.value.toFixed(2)} ± ${r.ratio!.sd.toFixed(2)}`).join('; ')}), ` +
      'so this limit is not robust at this number of seeds: read the comparisons below as at a pause in sync SGD\'s gains, not past its limit.'
    : '';
  // The ratio at the limit carries the seeds' spread: say so when it reaches below the threshold.
  const atLimit = limit.ratios.find((r) => r.from === L)?.ratio;
  const uncertain =
    limit.saturated && atLimit && atLimit.value - 2 * atLimit.sd < s.limitRatio
      ? ` The ratio at the limit, ${atLimit.value.toFixed(2)} ± ${atLimit.sd.toFixed(2)}, reaches below ${s.limitRatio} within 2 sd: ` +
        'with this many seeds the limit\'s place is uncertain.'
      : '';
  report.text(
    limit.saturated
      ? `**Limit batch: ${L}.** Doubling it cut the steps to target by less than ${Math.round(100 * (1 - s.limitRatio))}%, ` +
          `so the codistillation arms run 2 groups at this batch each.${uncertain}${caution}`
      : `**No limit within the sweep:** every doubling up to ${L} still cut the steps to target by more than ` +
          `${Math.round(100 * (1 - s.limitRatio))}%. The alternatives run at the largest batch, ${L}; ` +
          'in this regime codistillation at batch b can lose to sync SGD at 2b: the claim of the paper is about the regime past the limit.',
  );
  report.text(
    `## Asynchronous SGD at the same batches\n\nm workers of batch ${s.batch} each (batch ${s.batch}·m per step, m updates a step), ` +
      `every update m - 1 updates stale (delayed SGD: what m equally fast parameter-server workers see, reproducibly); ` +
      `one worker is sync SGD at batch ${s.batch}.\n`,
  );
  report.table(doublings('async-scaling', 'Doubling the workers of async SGD', asyncLimit));
  report.text(
    asyncLimit.saturated
      ? `Async SGD stopped gaining at batch ${asyncLimit.batch} (${asyncLimit.batch / s.batch} worker${asyncLimit.batch === s.batch ? '' : 's'}).\n`
      : `Async SGD still gained at every doubling up to batch ${asyncLimit.batch}.\n`,
  );
  report.text('## All arms\n');
  for (const table of targetTables(summaries, s.steps)) report.table(table);
  report.table(bytesTable(all, (c) => c.optim.batch / s.batch));
  await lossCurvePlots(report, series, targets, 'every arm');
  report.text(findings(summaries, syncSummaries, batches, L, labels, limit, later.length > 0, { summaries: asyncSummaries, batches: asyncBatches, limit: asyncLimit, base: s.batch, tuned: tuning }));
  return finish(report, ctx, { targets, limit, asyncLimit, summaries });
}

function findings(
  rows: readonly SeriesSummary[],
  sync: readonly SeriesSummary[],
  batches: readonly number[],
  L: number,
  labels: Record<'codistill' | 'independent' | 'ensemble' | 'smoothing' | 'local' | 'diloco', string>,
  limit: Limit,
  fragileLimit: boolean,
  async: { summaries: readonly SeriesSummary[]; batches: readonly number[]; limit: Limit; base: number; tuned: boolean },
): string {
  const find = (name: string) => rows.find((r) => r.name === name)!;
  const codi = find(labels.codistill);
  const syncL = sync[batches.indexOf(L)];
  const sync2L = batches.includes(2 * L) ? sync[batches.indexOf(2 * L)] : undefined;
  const lines = ['## What it shows, and what it does not\n'];
  const compare = (other: SeriesSummary, what: string) => {
    const r = stepsRatio(codi, other);
    if (!r) return `- Codistillation and ${what} share no target that both reached in every seed: no steps ratio.`;
    const verdict = r.value + 2 * r.sd < 1 ? 'fewer' : r.value - 2 * r.sd > 1 ? 'more' : 'about as many (within 2 sd of the seed spread)';
    return (
      `- To ${r.target.toFixed(3)} nats, codistillation took ${formatSpread(r.a, 0)} steps against ${formatSpread(r.b, 0)} for ${what}: ` +
      `a ratio of ${r.value.toFixed(2)} ± ${r.sd.toFixed(2)}, i.e. ${verdict} steps.`
    );
  };
  lines.push(compare(syncL, `sync SGD at the same batch per group (${L})`));
  if (sync2L) lines.push(compare(sync2L, `sync SGD at batch ${2 * L} (the same examples per step as both groups together)`));
  lines.push(compare(find(labels.independent), 'an independent single model at the same batch'));
  lines.push(compare(find(labels.local), 'local SGD (the same 2 groups averaging their weights at the same interval)'));
  lines.push(compare(find(labels.diloco), 'DiLoCo (the same 2 groups, an outer Nesterov step on the averaged weights at the same interval)'));
  lines.push(
    `- Final loss at the fixed budget: codistillation ${formatSpread(codi.final, 4)}, sync SGD at ${L} ${formatSpread(syncL.final, 4)}, ` +
      `ensemble of 2 independent ${formatSpread(find(labels.ensemble).final, 4)}, label smoothing ${formatSpread(find(labels.smoothing).final, 4)}, ` +
      `local SGD ${formatSpread(find(labels.local).final, 4)}, DiLoCo ${formatSpread(find(labels.diloco).final, 4)} ` +
      `(label smoothing's loss is measured without smoothing, so it pays for the smoothed targets).`,
  );
  for (const [k, b] of async.batches.entries()) {
    const r = stepsRatio(async.summaries[k], sync[batches.indexOf(b)]);
    if (!r) continue;
    lines.push(
      `- Async SGD at batch ${b} (${b / async.base} workers, every update ${b / async.base - 1} stale) took ${formatSpread(r.a, 0)} steps to ` +
        `${r.target.toFixed(3)} nats against ${formatSpread(r.b, 0)} for sync SGD at batch ${b}: a ratio of ${r.value.toFixed(2)} ± ${r.sd.toFixed(2)}.`,
    );
  }
  if (async.summaries.length) {
    lines.push(
      `- A step of async SGD at batch ${async.base}·m makes m updates of batch ${async.base}, each at the rate of batch ${async.base}; sync SGD ` +
        `makes one update of batch ${async.base}·m at ${async.tuned ? 'the rate tuned for that batch' : '√m times that rate'}. Both process the same examples per step, so steps to a target ` +
        'compare them per example. ' +
        (async.limit.saturated
          ? `Async SGD stopped gaining at ${async.limit.batch / async.base} workers (batch ${async.limit.batch}), as the paper saw it stop at scale.`
          : `Async SGD still gained at every doubling up to ${async.limit.batch / async.base} workers.`),
    );
  }
  lines.push(
    '- Wall time: on this machine every group, teacher and evaluator shares the same two cores, so a 2-group arm does not get ' +
      "twice the hardware the way the paper's groups did; its wall time is an upper bound of what separate machines would show, " +
      'and a codistillation step also pays the teachers\' forward passes.',
  );
  if (fragileLimit) {
    lines.push(
      '- The limit is fragile: a larger batch than the limit cut the steps again, so the arms at the limit may sit at a ' +
        'pause in sync SGD\'s gains rather than past its limit; more seeds (or the `full` budget) are needed to place it.',
    );
  }
  if (!limit.saturated) {
    lines.push(
      '- The sweep never reached the sync-SGD limit, so this run does not test the paper\'s claim (which is about the regime past ' +
        'the limit); a longer run or a larger batch sweep is needed for that.',
    );
  }
  lines.push(
    '- Small scale: a small model trained for minutes on one data set, a handful of seeds. Differences within the shown spread are noise; ' +
      'none of this says how the effect scales to the paper\'s sizes.',
  );
  return lines.join('\n') + '\n';
}
