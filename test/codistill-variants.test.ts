import t from 'tap';
import { train } from '../src/train/run.js';
import { tinyConfig } from './helpers/run.js';

const settings = ['steps=12', 'distill.burnIn=2', 'distill.exchangeEvery=4', 'checkpoint.every=4', 'eval.every=6'];

t.test('top-k teachers, async exchange, mse on logits, 3 groups, a share of positions and carried LSTM state all train', async (t) => {
  const dir = t.testdir();
  for (const [name, extra] of [
    ['topk', ['distill.topK=8']],
    ['async', ['distill.mode=async']],
    ['mse', ['distill.loss=mse-logits', 'distill.alpha=0.1']],
    ['three', ['groups=3', 'distill.ramp=4']],
    ['some-positions', ['replicas=2', 'distill.positionFraction=0.25', 'distill.topK=16']],
    ['carry-state', ['model.carryState=true']],
  ] as const) {
    const summary = await train({ config: await tinyConfig(dir, name, [...settings, ...extra]) });
    t.ok(summary.losses.every(Number.isFinite), `${name}: finite validation losses`);
  }
});

