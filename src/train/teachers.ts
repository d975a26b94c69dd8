/**
 * A group's teacher: one actor holding stale copies of the OTHER groups' models.
 *
 * For a batch of group i, the teacher runs one forward pass per other model and returns the average of their
 * predictions: N-1 passes per batch, the least the method needs (disjoint data means every model must see every
 * other group's batch). Which snapshot of group j it uses at step s comes from the exchange's `published$(j)`
 * through the exchange rule (`teacherSnapshot`); a snapshot is loaded into the actor once, when it is first used.
 * The group's loop asks one step ahead, so the teacher works while the student trains.
 *
 * A teacher that fails (its worker throws or dies) rejects `predict` with an ActorError naming it ("teacher of
 * group 0: ..."), for which `isActorFault` (src/util/actor.ts) is true.
 */
import { firstValueFrom, forkJoin, of } from 'rxjs';
import type { Config } from '../config/schema.js';
import type { Exchange, Published } from '../exchange/exchange.js';
import type { TeacherReply, TeacherRequest, TeacherTarget } from '../protocol.js';
import type { WorkerFaultKind } from './faults.js';
import { ActorClient } from '../util/actor.js';
import { actorFile } from '../util/paths.js';
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { Batch } from '../workloads/workload.js';
import { teacherSnapshot } from '../../streams/teacher-snapshot.js';
import { distilledPositions } from './schedule.js';
import { TargetBuffers, targetBytes } from './teacher-target.js';

export type TeacherClient = ActorClient<TeacherRequest, TeacherReply>;

export async function startTeacherActor(name: string, config: Config, classes: number): Promise<TeacherClient> {
  const client: TeacherClient = new ActorClient(name, actorFile('teacher'));
  try {
    await client.request({ type: 'init', id: 0, config, classes }, 'ready');
  } catch (err) {
    // A worker that failed to start (a backend or kernel set that cannot load) must not keep the process alive.
    await client.close();
    throw err;
  }
  return client;
}

export interface TeacherResult {
  /** Views of a buffer of the group's pool: valid until `release`. */
  target: TeacherTarget;
  /** The snapshot step of each teacher model used. */
  snapshotSteps: number[];
  /** Returns the target's buffer to the pool, once the step that read it is done. */
  release(): void;
}

export class GroupTeacher {
  /** loaded.get(j): the snapshot step of group j's model inside the actor. */
  private readonly loaded = new Map<number, number>();
  private readonly others: number[];
  private readonly buffers = new TargetBuffers();

  private constructor(
    private readonly group: number,
    private readonly config: Config,
    private readonly actor: TeacherClient,
    private readonly exchange: Exchange,
    private readonly classes: number,
    private readonly positionsPerRow: number,
  ) {
    this.others = [...Array(config.groups).keys()].filter((j) => j !== group);
  }

  /** `positionsPerRow`: positions a batch row predicts (the workload data's), for the distilled share of them. */
  static async start(group: number, config: Config, classes: number, positionsPerRow: number, exchange: Exchange): Promise<GroupTeacher> {
    const actor = await startTeacherActor(`teacher of group ${group}`, config, classes);
    return new GroupTeacher(group, config, actor, exchange, classes, positionsPerRow);
  }

  /** The averaged prediction of the other groups' snapshots for this group's batch at `step`. */
  async predict(step: number, batch: Batch): Promise<TeacherResult> {
    const { mode, exchangeEvery, burnIn, loss, topK, positionFraction } = this.config.distill;
    const positions = distilledPositions(batch.rows, this.positionsPerRow, positionFraction, step);
    // Copy the batch now: its own buffers move to the student's replicas while we wait for snapshots.
    const copy = rowCopy(batch);
    const snapshots: Published[] = await firstValueFrom(
      forkJoin(this.others.map((j) => of(step).pipe(teacherSnapshot(this.exchange.published$(j), mode, exchangeEvery, burnIn)))),
    );
    for (const s of snapshots) {
      if (this.loaded.get(s.group) !== s.step) {
        this.loaded.set(s.group, s.step);
        const weights = s.weights.slice();
        // Not awaited: the actor serves requests in order, so the predict below sees the load; a failed load fails
        // that predict too, which is where it is reported.
        this.actor.request({ type: 'load', id: 0, slot: `g${s.group}`, weights }, 'ok', [weights.buffer]).catch(() => undefined);
      }
    }
    const into = this.buffers.take(targetBytes(positions?.length ?? batch.rows * this.positionsPerRow, this.classes, topK));
    const reply = await this.actor.request(
      {
        type: 'predict',
        id: 0,
        slots: snapshots.map((s) => `g${s.group}`),
        batch: copy,
        output: loss === 'ce' ? 'probs' : 'logits',
        topK,
        positions,
        into,
        step,
      },
      'predicted',
      batchBuffers(copy),
    );
    return { target: { ...reply.target, positions }, snapshotSteps: snapshots.map((s) => s.step), release: () => this.buffers.give(into) };
  }

  /**
   * Fault injection: the prediction for step `atStep` throws in the teacher's worker ("teacher of group G: injected
   * fault at step N"), or the worker exits ("teacher of group G: exited (code 1)").
   */
  async injectFault(atStep: number, kind: WorkerFaultKind = 'throw'): Promise<void> {
    await this.actor.request({ type: 'injectFault', id: 0, atStep, kind }, 'ok');
  }

  async close(): Promise<void> {
    await this.actor.close();
  }
}
