import t from 'tap';
import { StepGather } from '../src/train/step-gather.js';

t.test('a step runs once every group has submitted, in step order, and drain rethrows the first failure', async (t) => {
  const ran: string[] = [];
  const gather = new StepGather<string>(3, async (step, pieces) => {
    if (step === 20 || step === 30) throw new Error(`step ${step} failed`);
    ran.push(`${step}:${pieces.join(',')}`);
  });
  gather.submit(2, 10, 'c');
  gather.submit(0, 10, 'a');
  await gather.drain();
  t.same(ran, [], 'nothing runs while a group is missing');
  gather.submit(0, 20, 'x');
  gather.submit(1, 10, 'b');
  await gather.drain();
  t.same(ran, ['10:a,b,c'], 'pieces in group order, whatever order they came in');
  for (const g of [0, 1, 2]) gather.submit(g, 30, 'y');
  gather.submit(1, 20, 'x');
  gather.submit(2, 20, 'x');
  for (const g of [0, 1, 2]) gather.submit(g, 40, String(g));
  await t.rejects(gather.drain(), /step 30 failed/, 'steps run in the order they completed (30 before 20): the first failure is kept');
  await gather.settled();
  t.same(ran, ['10:a,b,c', '40:0,1,2'], 'later steps still run after a failure');
});
