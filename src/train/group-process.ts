/**
 * The entry point of a group process (process placement): a child the supervisor forks, one per group, with the
 * group's GPU in CUDA_VISIBLE_DEVICES. It hosts one group over the run's store and speaks the group-process
 * protocol on its IPC channel: `start` in, then `ready`, the group's events, its weights at evaluation steps,
 * and `done` (or `failed`) out. `stop` ends the run early with a checkpoint. The process exits when its run ends
 * or when the supervisor goes away (the IPC channel closes).
 */
import type { FromGroupProcess, ToGroupProcess } from '../protocol.js';
import { hostGroup, type HostedGroup } from './group-host.js';

const send = (m: FromGroupProcess): Promise<void> =>
  new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(m, undefined, undefined, () => resolve());
  });

let hosted: HostedGroup | undefined;
/** The step `stop` asked for, kept for a stop that arrives while the group is still starting. */
let stopAt: number | undefined;

async function start(m: Extract<ToGroupProcess, { type: 'start' }>): Promise<void> {
  try {
    hosted = await hostGroup({
      config: m.config,
      runDir: m.runDir,
      group: m.group,
      from: m.from,
      faults: m.faults,
      emit: (event) => void send({ type: 'event', event }),
      evaluate: (_group, step, weights) => void send({ type: 'evaluate', step, weights }),
    });
    if (stopAt !== undefined) hosted.trainer.stop(stopAt);
    await send({ type: 'ready', backend: hosted.trainer.backend, parameters: hosted.trainer.parameters });
    const steps = await hosted.trainer.run();
    await hosted.close();
    await send({ type: 'done', steps });
    process.exit(0);
  } catch (err) {
    await send({ type: 'failed', message: (err as Error).message ?? String(err) });
    await hosted?.close();
    process.exit(1);
  }
}

process.on('message', (m: ToGroupProcess) => {
  if (m.type === 'start') void start(m);
  else if (m.type === 'stop') {
    stopAt = Math.min(stopAt ?? Infinity, m.at ?? 0);
    hosted?.trainer.stop(stopAt);
  }
});
// Ctrl-C reaches every process of the terminal's process group, and a service manager may signal the whole group:
// the supervisor decides how the run stops (every group checkpoints the same step), so its children ignore both.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
// The supervisor is gone: nobody would read what this process does next.
process.on('disconnect', () => process.exit(1));
