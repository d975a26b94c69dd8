/**
 * Named points where the fault-injection suite kills the process as a power cut would: `CODISTILL_KILL_AT` names
 * one point and a step, `<point>@<step>`, and the process sends itself SIGKILL when it gets there (no handler runs,
 * nothing is flushed). Points:
 *
 *   step                after a group has made update <step> (mid-run, between checkpoints)
 *   checkpoint-write    inside the store's write of a checkpoint of <step>, before it commits
 *   publish-write       inside the store's write of an exchanged snapshot of <step>, before it commits
 *   checkpoint          after a checkpoint of <step> is written
 *   end                 after the last step's checkpoint, before the run's final evaluation and `done` (step: any)
 *
 * `CODISTILL_SIGNAL_AT=<signal>@<step>` sends the named signal instead (SIGINT, SIGTERM), once, after a group has
 * made update <step>: how the suite tests that a signal stops a run with a checkpoint. Unset, both cost a string
 * comparison.
 */

const killAt = process.env.CODISTILL_KILL_AT;
const signalAt = process.env.CODISTILL_SIGNAL_AT;
let signalled = false;

export type KillPoint = 'step' | 'checkpoint-write' | 'publish-write' | 'checkpoint' | 'end';

export function killPoint(point: KillPoint, step: number): void {
  if (killAt !== undefined && (killAt === `${point}@${step}` || (point === 'end' && killAt === 'end'))) {
    process.kill(process.pid, 'SIGKILL');
  }
  if (point === 'step' && signalAt !== undefined && !signalled) {
    const [signal, at] = signalAt.split('@');
    if (Number(at) === step) {
      signalled = true;
      process.kill(process.pid, signal as NodeJS.Signals);
    }
  }
}

/** The point a snapshot write in the store at `where` is: a checkpoint or an exchanged snapshot (by the store's folder). */
export function writePoint(where: string): KillPoint | undefined {
  if (killAt === undefined) return undefined;
  if (/checkpoints\/?$/.test(where)) return 'checkpoint-write';
  if (/exchange\/?$/.test(where)) return 'publish-write';
  return undefined;
}
