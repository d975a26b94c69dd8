// Embeds a codistillation run in a Node program and watches it as a stream: the validation losses as they come,
// and Ctrl-C (SIGINT) or SIGTERM stops the run with a checkpoint of every group, to be resumed later.
//
//   npm run build && node examples/embed/watch-a-run.mjs [key=value ...]     (config overrides, like --set)
import { loadConfig, startRun } from 'codistill';

const config = loadConfig({ preset: 'tiny', set: process.argv.slice(2) });
const run = startRun({ config });

run.events$.subscribe((e) => {
  if (e.type === 'eval') {
    const models = e.losses.map((l) => l.toFixed(3)).join(' / ');
    console.log(`step ${e.step}: validation loss ${models}, ensemble ${e.ensembleLoss.toFixed(3)}`);
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void run.stop());

const summary = await run.done;
console.log(`${summary.stopped ? 'stopped' : 'finished'} at step ${summary.steps}; run folder ${summary.runDir}`);
