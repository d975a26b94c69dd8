/**
 * The service's Prometheus metrics (`GET /metrics`, text exposition format), kept up to date from the runs' events.
 * Labels: `run` (its id), `group` (0..N-1) and `model` (a group's index, or `ensemble`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { RunEvent } from '../train/events.js';

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly step = new Gauge({ name: 'codistill_step', help: 'Newest step a group has done', labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly steps = new Gauge({ name: 'codistill_steps_total', help: 'Steps the run trains to', labelNames: ['run'], registers: [this.registry] });
  private readonly trainLoss = new Gauge({ name: 'codistill_train_loss', help: "Task (cross-entropy) loss of a group's latest step, nats per position", labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly distillLoss = new Gauge({ name: 'codistill_distill_loss', help: "Distillation loss of a group's latest step", labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly valLoss = new Gauge({ name: 'codistill_validation_loss', help: 'Latest validation loss of a model or the ensemble, nats per position', labelNames: ['run', 'model'], registers: [this.registry] });
  private readonly staleness = new Gauge({ name: 'codistill_staleness_steps', help: "Steps between a group's latest step and the oldest teacher snapshot it used", labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly gradientStaleness = new Gauge({
    name: 'codistill_gradient_staleness_updates',
    help: "sgd.mode async or delayed: mean updates between the weights a gradient was computed on and its update, in a group's latest step",
    labelNames: ['run', 'group'],
    registers: [this.registry],
  });
  private readonly positions = new Counter({ name: 'codistill_positions_total', help: 'Positions trained on (tokens, rows or images) by this service', labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly stepSeconds = new Histogram({
    name: 'codistill_step_seconds',
    help: 'Wall time of a training step',
    labelNames: ['run'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly checkpoints = new Counter({ name: 'codistill_checkpoints_total', help: 'Checkpoints written', labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly restarts = new Counter({ name: 'codistill_restarts_total', help: 'Groups restarted from a checkpoint (a process that died, an actor that failed, a rollback)', labelNames: ['run', 'group'], registers: [this.registry] });
  private readonly warnings = new Counter({ name: 'codistill_warnings_total', help: 'Warnings of runs: skipped non-finite steps, damaged checkpoints passed over, diverging validation loss', labelNames: ['run', 'kind'], registers: [this.registry] });
  readonly predictSeconds = new Histogram({
    name: 'codistill_predict_seconds',
    help: 'Time to answer a prediction request',
    labelNames: ['run'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly requests = new Counter({ name: 'codistill_http_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  private readonly liveRuns = new Gauge({ name: 'codistill_live_runs', help: 'Runs this service is training now', registers: [this.registry] });
  private readonly live = new Set<string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'codistill_process_' });
  }

  observe(run: string, e: RunEvent, config: Config): void {
    switch (e.type) {
      case 'start':
        this.live.add(run);
        this.liveRuns.set(this.live.size);
        this.steps.set({ run }, config.steps);
        for (let g = 0; g < config.groups; g++) this.step.set({ run, group: String(g) }, e.fromStep);
        break;
      case 'step': {
        const group = String(e.group);
        this.step.set({ run, group }, e.step);
        this.trainLoss.set({ run, group }, e.taskLoss);
        this.distillLoss.set({ run, group }, e.distillLoss);
        if (e.staleness !== undefined) this.staleness.set({ run, group }, e.staleness);
        if (e.gradientStaleness !== undefined) this.gradientStaleness.set({ run, group }, e.gradientStaleness);
        this.positions.inc({ run, group }, e.positions);
        this.stepSeconds.observe({ run }, e.ms / 1000);
        break;
      }
      case 'eval': {
        const names = e.groups ?? e.losses.map((_, g) => g);
        e.losses.forEach((l, i) => this.valLoss.set({ run, model: String(names[i]) }, l));
        if (!e.groups && e.losses.length > 1) this.valLoss.set({ run, model: 'ensemble' }, e.ensembleLoss);
        break;
      }
      case 'checkpoint':
        this.checkpoints.inc({ run, group: String(e.group) });
        break;
      case 'restart':
        this.restarts.inc({ run, group: String(e.group) });
        break;
      case 'warning':
        this.warnings.inc({ run, kind: e.kind });
        break;
      case 'done':
      case 'stopped':
      case 'error':
        this.live.delete(run);
        this.liveRuns.set(this.live.size);
        break;
      case 'exchange':
        break;
    }
  }
}
