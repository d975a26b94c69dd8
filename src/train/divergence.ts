/**
 * A run that diverges: a validation loss that rises far above the best it has had (`guard.divergence` times it) or
 * stops being finite. Training can go on with a finite loss and a model that predicts nothing (validation loss 66,
 * perplexity 1e28); this says so, as a warning event, and a run with `guard.stopOnDivergence` stops on it.
 */
import type { Config } from '../config/schema.js';
import { RunError } from '../group/group.js';
import type { EvalEvent, WarningEvent } from './events.js';

/**
 * Watches the validation losses for a model that diverges: a loss above `guard.divergence` times the best it has
 * had (or not finite) is a warning, once each time it happens.
 */
export class DivergenceWatch {
  private readonly best = new Map<string, number>();
  private readonly warned = new Set<string>();
  /** The first divergence seen, as an error (a run with `guard.stopOnDivergence` fails with it). */
  diverged: RunError | undefined;

  constructor(
    private readonly config: Config,
    private readonly warn: (e: WarningEvent) => void,
  ) {}

  /** Whether this evaluation shows a model diverging. */
  check(e: EvalEvent): boolean {
    const factor = this.config.guard.divergence;
    if (factor <= 0) return false;
    const names = e.groups ?? e.losses.map((_, g) => g);
    const models: [string, number, number | undefined][] = e.losses.map((l, i) => [`group ${names[i]}`, l, names[i]]);
    if (!e.groups && e.losses.length > 1) models.push(['the ensemble', e.ensembleLoss, undefined]);
    let diverging = false;
    for (const [model, loss, group] of models) {
      const best = this.best.get(model) ?? Infinity;
      const bad = !Number.isFinite(loss) || (Number.isFinite(best) && loss > factor * best);
      if (!bad) {
        this.best.set(model, Math.min(best, loss));
        this.warned.delete(model);
        continue;
      }
      diverging = true;
      if (this.warned.has(model)) continue;
      this.warned.add(model);
      const message =
        `${model}'s validation loss ${loss.toFixed(3)} at step ${e.step} is ${Number.isFinite(loss) ? `${(loss / best).toFixed(1)}x` : 'far above'} ` +
        `its best (${best.toFixed(3)}): the run is diverging (guard.divergence = ${factor}); lower optim.lr or set optim.clipNorm` +
        (this.config.guard.stopOnDivergence ? '; stopping (guard.stopOnDivergence)' : '');
      this.diverged ??= new RunError(message);
      this.warn({ type: 'warning', kind: 'divergence', group, step: e.step, message, time: Date.now() });
    }
    return diverging;
  }
}
