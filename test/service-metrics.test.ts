import t from 'tap';
import { DEFAULTS } from '../src/config/schema.js';
import { ServiceMetrics } from '../src/serve/prometheus.js';
import type { StepEvent } from '../src/train/events.js';

const step = (over: Partial<StepEvent>): StepEvent => ({
  type: 'step', group: 0, step: 1, loss: 2, taskLoss: 2, distillLoss: 0, alpha: 0, lr: 0.01, gradNorm: 1, positions: 64,
  ms: 10, computeMs: 8, reduceMs: 1, teacherWaitMs: 0, time: 0, ...over,
});

t.test("an async group's gradient staleness is a Prometheus gauge per group; a sync group's leaves it out", async (t) => {
  const m = new ServiceMetrics();
  m.observe('a', step({ group: 0, step: 3, gradientStaleness: 1.5 }), DEFAULTS);
  m.observe('a', step({ group: 1, step: 3 }), DEFAULTS);
  const text = await m.registry.metrics();
  t.match(text, /^codistill_gradient_staleness_updates\{run="a",group="0"\} 1\.5$/m);
  t.notMatch(text, /codistill_gradient_staleness_updates\{run="a",group="1"\}/);
  t.match(text, /^codistill_step\{run="a",group="1"\} 3$/m);
});
