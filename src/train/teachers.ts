/**
 * The teacher pool: one teacher actor per group, holding stale copies of the OTHER groups' models.
 *
 * For a batch of group i, teacher i runs one forward pass per other model and returns the average of their
 * predictions: N-1 passes per batch, the least the method needs (disjoint data means every model must see every
 * other group's batch). Requests are issued one step ahead, so the teacher works while the student trains.
 */
import type { Config } from '../config/schema.js';
import { ActorClient } from '../util/actor.js';
import { batchBuffers, rowCopy } from '../workloads/batch.js';
import type { Batch } from '../workloads/workload.js';
import { actorFile } from '../util/paths.js';
import type { TeacherTarget } from '../../actors/replica-messages.js';
import type { TeacherReply, TeacherRequest } from '../../actors/teacher-messages.js';
import type { Published, SnapshotBoard } from './board.js';
import { distilledPositions } from './loss.js';

export type TeacherClient = ActorClient<TeacherRequest, TeacherReply>;

export async function startTeacherActor(name: string, config: Config, classes: number): Promise<TeacherClient> {
  const client: TeacherClient = new ActorClient(name, actorFile('teacher'));
  await client.request({ type: 'init', id: 0, config, classes }, 'ready');
  return client;
}

export interface TeacherResult {
  target: TeacherTarget;
  /** The snapshot step of each teacher model used. */
  snapshotSteps: number[];
}

export class TeacherPool {
  /** loaded[i][j]: snapshot step of group j's model inside teacher i (-1: none). */
  private readonly loaded: number[][];

  private constructor(
    private readonly config: Config,
    private readonly actors: TeacherClient[],
    private readonly board: SnapshotBoard,
    private readonly positionsPerRow: number,
  ) {
    const n = config.groups;
    this.loaded = Array.from({ length: n }, () => new Array<number>(n).fill(-1));
  }

  /** `positionsPerRow`: positions a batch row predicts (the workload data's), for the distilled share of them. */
  static async start(config: Config, classes: number, positionsPerRow: number, board: SnapshotBoard): Promise<TeacherPool> {
    const actors = await Promise.all(
      Array.from({ length: config.groups }, (_, g) => startTeacherActor(`teacher of group ${g}`, config, classes)),
    );
    return new TeacherPool(config, actors, board, positionsPerRow);
  }

  /** The averaged prediction of the other groups' snapshots for group `group`'s batch at `step`. */
  async predict(group: number, step: number, batch: Batch): Promise<TeacherResult> {
    const { mode, exchangeEvery, burnIn, loss, topK, positionFraction } = this.config.distill;
    const positions = distilledPositions(batch.rows, this.positionsPerRow, positionFraction, step);
    // Copy the batch now: its own buffers move to the student's replicas while we wait for snapshots.
    const copy = rowCopy(batch);
    const others = [...Array(this.config.groups).keys()].filter((j) => j !== group);
    const snapshots: Published[] = await Promise.all(others.map((j) => this.board.forStep(j, step, mode, exchangeEvery, burnIn)));
    const actor = this.actors[group];
    for (const s of snapshots) {
      if (this.loaded[group][s.group] !== s.step) {
        this.loaded[group][s.group] = s.step;
        const weights = s.weights.slice();
        // Not awaited: the actor serves requests in order, so the predict below sees the load; a failed load fails
        // that predict too, which is where it is reported.
        actor.request({ type: 'load', id: 0, slot: `g${s.group}`, weights }, 'ok', [weights.buffer]).catch(() => undefined);
      }
    }
    const reply = await actor.request(
      {
        type: 'predict',
        id: 0,
        slots: snapshots.map((s) => `g${s.group}`),
        batch: copy,
        output: loss === 'ce' ? 'probs' : 'logits',
        topK,
        positions,
      },
      'predicted',
      batchBuffers(copy),
    );
    return { target: { ...reply.target, positions }, snapshotSteps: snapshots.map((s) => s.step) };
  }

  async close(): Promise<void> {
    await Promise.all(this.actors.map((a) => a.close()));
  }
}
