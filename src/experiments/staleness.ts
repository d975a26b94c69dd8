/**
 * `codistill experiment staleness`: the same 2-group codistillation with the exchange interval K swept from every
 * step to never (teachers keep the snapshot from the end of burn-in), against a reference of the same 2 groups without
 * distillation (alpha = 0); beside it DiLoCo, the same 2 groups averaging their weights through an outer Nesterov
 * step every H = K steps (the exchange of weights that DiLoCo and local SGD make instead of codistillation's snapshots
 * that teach). Reports final validation loss and steps to target against the interval.
 */
import { type Arm, byLabel, mergeOverrides, runArms } from './arms.js';
import { lossUnit } from './units.js';
import { armConfig, sectionOverrides } from './budget.js';
import { type ExperimentContext, type ExperimentOutcome, finish, lossCurvePlots, preamble } from './context.js';
import { crossing, finalValue, formatSpread } from './curves.js';
import { dotsWithSpreadSpec, type Series } from './plots.js';
import { Report } from './report.js';
import { bytesTable } from './communication.js';
import { armsTable, deepestCommonTarget, summarise, targetTables, targetsAbove } from './summary.js';

export const intervalName = (k: number): string => (k === 0 ? 'never' : String(k));
const intervalLabel = (k: number): string => (k === 0 ? 'codistillation, never exchange' : `codistillation, exchange every ${k}`);
const dilocoLabel = (h: number): string => `DiLoCo, average every ${h}`;
const REFERENCE = 'no distillation (alpha = 0)';

export async function stalenessExperiment(ctx: ExperimentContext): Promise<ExperimentOutcome> {
  const s = ctx.budget.staleness;
  const seeds = ctx.budget.seeds;
  const arm = (id: string, label: string, seed: number, distill: Record<string, unknown>): Arm => ({
    id: `${id}-s${seed}`,
    label,
    seed,
    config: armConfig(ctx.budget, ctx.set, mergeOverrides(sectionOverrides(s, s.lr), { seed, groups: 2, optim: { batch: s.batch }, distill })),
  });
  // DiLoCo never averaging is two independent models from one initialisation: not an interval of its own.
  const averaging = s.intervals.filter((k) => k > 0);
  const arms = seeds.flatMap((seed) => [
    ...s.intervals.map((k) => arm(`exchange-${intervalName(k)}`, intervalLabel(k), seed, { exchangeEvery: k })),
    arm('no-distillation', REFERENCE, seed, { alpha: 0 }),
    ...averaging.map((h) => arm(`diloco-every-${h}`, dilocoLabel(h), seed, { method: 'average', exchangeEvery: h })),
  ]);
  const results = await runArms(arms, { out: ctx.out, write: ctx.write });
  const by = byLabel(results);

  const targets = targetsAbove(by.get(REFERENCE)!, 'model', s.targetOffsets);
  const names = [...s.intervals.map(intervalLabel), REFERENCE, ...averaging.map(dilocoLabel)];
  const series: Series[] = names.map((name) => ({ name, results: by.get(name)!, measure: 'model' }));
  const summaries = series.map((x) => summarise(x, targets));
  const codistilled = summaries.slice(0, s.intervals.length + 1);
  const deepest = deepestCommonTarget(codistilled.filter((r) => r.name !== intervalLabel(0))) ?? targets[0];

  const report = new Report(ctx.out, 'Experiment: how stale may the teachers be?');
  const sample = results[0].arm.config;
  preamble(
    report,
    ctx,
    results[0],
    `Two codistilled groups at batch ${s.batch} each (disjoint data, alpha ${sample.distill.alpha}, burn-in ${sample.distill.burnIn} ` +
      `steps, ${sample.distill.mode} exchange), with exchange intervals ${s.intervals.map(intervalName).join(', ')} steps ` +
      `("never": the teachers keep each group's snapshot from the end of burn-in), and the same two groups without distillation as the reference. ` +
      `Seeds ${seeds.join(', ')}; ${s.steps} steps; targets ${s.targetOffsets.join(', ')} nats above the reference's worst final loss.`,
  );
  report.table(armsTable(results));
  const atDeepest = (r: (typeof summaries)[number]) => {
    const at = r.toTarget.find((t) => t.target === deepest);
    return at ? formatSpread(at.steps, 0) : 'n/a';
  };
  report.table({
    name: 'staleness',
    title: `Against the exchange interval: final loss and steps to ${deepest?.toFixed(3) ?? 'n/a'} nats (mean ± sd over seeds)`,
    header: ['exchange every', 'final val loss', 'steps to target', 'wall seconds'],
    rows: codistilled.map((r, i) => [i < s.intervals.length ? intervalName(s.intervals[i]) : REFERENCE, formatSpread(r.final, 4), atDeepest(r), formatSpread(r.seconds, 1)]),
  });
  report.table({
    name: 'diloco-interval',
    title: `Codistillation and DiLoCo at the same interval: final loss and steps to ${deepest?.toFixed(3) ?? 'n/a'} nats`,
    header: ['every (steps)', 'codistillation: final val loss', 'steps to target', 'DiLoCo: final val loss', 'steps to target'],
    rows: averaging.map((h) => {
      const c = summaries.find((r) => r.name === intervalLabel(h))!;
      const d = summaries.find((r) => r.name === dilocoLabel(h))!;
      return [String(h), formatSpread(c.final, 4), atDeepest(c), formatSpread(d.final, 4), atDeepest(d)];
    }),
  });
  for (const table of targetTables(summaries, s.steps)) report.table(table);
  report.table(bytesTable(results, () => 1));

  const categories = [...s.intervals.map(intervalName), 'no distillation'];
  const finalPanel = `final val loss (${lossUnit(results[0]?.arm.config)})`;
  const stepsPanel = `steps to ${deepest?.toFixed(3) ?? 'target'}`;
  const method = (name: string) => (name.startsWith('DiLoCo') ? 'DiLoCo' : 'codistillation');
  const categoryOf = (name: string) => {
    const k = [...s.intervals].find((k) => name === intervalLabel(k) || name === dilocoLabel(k));
    return k === undefined ? 'no distillation' : intervalName(k);
  };
  const rows = series.flatMap((x) =>
    x.results.flatMap((r) => [
      { category: categoryOf(x.name), series: method(x.name), panel: finalPanel, value: finalValue(r.curve, 'model') },
      { category: categoryOf(x.name), series: method(x.name), panel: stepsPanel, value: deepest === undefined ? NaN : (crossing(r.curve, 'model', deepest)?.step ?? NaN) },
    ]),
  );
  await report.plot(
    'staleness',
    dotsWithSpreadSpec({
      title: 'Codistillation and DiLoCo against the exchange interval',
      subtitle: ['large dot: mean over seeds; bar: ± 1 sd; small dots: seeds', '"no distillation": alpha = 0; an empty column never reached the target'],
      rows,
      categories,
      categoryTitle: 'exchange every (steps)',
      panels: [finalPanel, stepsPanel],
      series: ['codistillation', 'DiLoCo'],
    }),
    'Final validation loss and steps to target against the exchange interval, codistillation and DiLoCo',
  );
  await lossCurvePlots(report, series, targets, 'every interval');

  const ref = codistilled[codistilled.length - 1];
  const lines = ['## What it shows, and what it does not\n'];
  for (const [i, r] of codistilled.slice(0, -1).entries()) {
    const d = r.final.mean - ref.final.mean;
    const noise = Math.sqrt(r.final.sd ** 2 + ref.final.sd ** 2);
    const verdict = Math.abs(d) <= 2 * noise ? 'within 2 sd of the seed spread of' : d < 0 ? 'below' : 'above';
    const k = s.intervals[i];
    lines.push(`- ${k === 0 ? 'Never exchanging' : `Exchange every ${k} step${k === 1 ? '' : 's'}`}: final loss ${formatSpread(r.final, 4)}, ${d >= 0 ? '+' : ''}${d.toFixed(4)} nats, ${verdict} the reference without distillation.`);
  }
  for (const h of averaging) {
    const c = summaries.find((r) => r.name === intervalLabel(h))!;
    const d = summaries.find((r) => r.name === dilocoLabel(h))!;
    const diff = c.final.mean - d.final.mean;
    const noise = Math.sqrt(c.final.sd ** 2 + d.final.sd ** 2);
    const verdict = Math.abs(diff) <= 2 * noise ? 'within 2 sd of' : diff < 0 ? 'below' : 'above';
    lines.push(`- Every ${h}: codistillation's final loss ${formatSpread(c.final, 4)} is ${verdict} DiLoCo's ${formatSpread(d.final, 4)} (${diff >= 0 ? '+' : ''}${diff.toFixed(4)} nats).`);
  }
  lines.push(
    '- DiLoCo\'s groups start from one initialisation and leave every outer step on the same weights; codistillation\'s ' +
      'groups keep their own models and only pull towards each other\'s predictions. For 2 groups both send the same bytes ' +
      'per exchange (each group\'s weights once), so at equal intervals they cost the same on a network.',
    '- "Never" distils, for the whole run and at full weight, towards the other group\'s randomly initialised model: a fixed ' +
      'target that carries no knowledge of the data, so it measures what a teacher that never improves costs, not codistillation.',
    `- Small scale: ${s.steps} steps of a tiny model; an interval long against the run (e.g. ${Math.max(...s.intervals)} of ${s.steps} steps) ` +
      'means only a few exchanges, so "stale" here is not the same as stale in a run of 10^5 steps. Sodhani et al. found 625-5000 steps ' +
      'harmless at scale; this does not test that.',
  );
  report.text(lines.join('\n') + '\n');
  return finish(report, ctx, { targets, summaries });
}
