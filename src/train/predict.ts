/**
 * Predictions from a trained run: a user's input through the workload's encoder, the run's models at a checkpoint
 * (one group's, or several groups' averaged probabilities: the ensemble), and the workload's decoder.
 *
 * One teacher actor holds the chosen groups' weights as slots `g<i>` and answers every request with one `predict`
 * (output 'probs', every class, only the positions the answer needs). The actor serves requests in order, so
 * concurrent `predict` calls are fine; the input is checked and encoded on the caller's thread first, so a bad input
 * fails before anything is sent.
 *
 *   const p = await openPredictor({ config, runDir });
 *   const { next } = await p.predict('The state of the', { topK: 5 });   // lm
 *   await p.close();
 */
import { workloadOf } from '../config/load.js';
import { RunError } from '../group/group.js';
import type { Config } from '../config/schema.js';
import { targetBytes } from './teacher-target.js';
import { batchBuffers } from '../workloads/batch.js';
import type { Predictor, WorkloadData } from '../workloads/workload.js';
import { loadRunModels } from './snapshots.js';
import { startTeacherActor, type TeacherClient } from './teachers.js';

export interface PredictorOptions {
  config: Config;
  /** The run's folder (its checkpoints are in its store: `config.store.url`, or this folder). */
  runDir: string;
  /** A checkpoint step, or the newest that every group has (the default). */
  step?: number | 'newest';
  /** The groups whose models answer, their probabilities averaged (default: every group, the ensemble). */
  groups?: number[];
}

export interface PredictOptions {
  /** How many of the most likely classes an answer that lists them gives (the language model's next tokens; default 5). */
  topK?: number;
}

export interface RunPredictor {
  /** The checkpoint step the models are from. */
  readonly step: number;
  /** The groups whose averaged probabilities answer. */
  readonly groups: readonly number[];
  /** The workload's answer for `input` (see its predictor: src/workloads/<kind>/predict.ts, or arrays.ts). */
  predict(input: unknown, options?: PredictOptions): Promise<unknown>;
  /** Live tensors in the actor (stays flat across predictions: a leak check). */
  tensors(): Promise<number>;
  /** Stops the actor and closes the workload data; later predictions fail. */
  close(): Promise<void>;
}

/** A prediction's input that the workload's encoder refused: the message says what is wrong with it. */
export class InputError extends Error {
  override name = 'InputError';
}

function encode(predictor: Predictor, input: unknown): ReturnType<Predictor['encode']> {
  try {
    return predictor.encode(input);
  } catch (err) {
    throw new InputError((err as Error).message, { cause: err });
  }
}

function checkGroups(groups: number[] | undefined, count: number): number[] {
  if (groups === undefined) return [...Array(count).keys()];
  if (!Array.isArray(groups) || groups.length === 0) throw new InputError('groups: name at least one group (or leave it out for all of them)');
  for (const g of groups) {
    if (!Number.isInteger(g) || g < 0 || g >= count) throw new InputError(`groups: ${g} is not a group of the run (its groups are 0..${count - 1})`);
  }
  if (new Set(groups).size !== groups.length) throw new InputError(`groups: [${groups.join(', ')}] names a group twice`);
  return [...groups];
}

function checkTopK(topK: number): number {
  if (!Number.isInteger(topK) || topK < 1) throw new InputError(`topK must be a positive integer, got ${topK}`);
  return topK;
}

/** Loads the run's models at a checkpoint into one teacher actor and returns a handle that answers predictions. */
export async function openPredictor({ config, runDir, step = 'newest', groups }: PredictorOptions): Promise<RunPredictor> {
  const workload = workloadOf(config);
  if (!workload.predictor) {
    const where = workload.kind === config.workload ? '' : ` (${config.workload})`;
    throw new RunError(`the workload "${workload.kind}"${where} has no predictor: it cannot encode inputs for predictions (see Workload.predictor)`);
  }
  const chosen = checkGroups(groups, config.groups);
  const models = await loadRunModels(config, runDir, step);
  const data: WorkloadData = await workload.open(config);
  let actor: TeacherClient | undefined;
  let predictor: Predictor;
  try {
    predictor = await workload.predictor(config, data);
    actor = await startTeacherActor('predictor', config, data.classes);
    const client = actor;
    await Promise.all(
      chosen.map((g) => {
        // Moved to the actor: a view of a larger buffer is copied first, so that only its own bytes move.
        const w = models.weights[g];
        const weights = w.byteOffset === 0 && w.byteLength === w.buffer.byteLength ? w : w.slice();
        return client.request({ type: 'load', id: 0, slot: `g${g}`, weights }, 'ok', [weights.buffer]);
      }),
    );
  } catch (err) {
    await actor?.close();
    await data.close();
    throw err;
  }
  const client = actor;
  const slots = chosen.map((g) => `g${g}`);
  let closed: Promise<void> | undefined;
  return {
    step: models.step,
    groups: chosen,
    async predict(input, { topK = 5 } = {}) {
      if (closed) throw new RunError('the predictor is closed');
      const k = checkTopK(topK);
      const { batch, positions } = encode(predictor, input);
      const transfer = [...batchBuffers(batch), ...(positions ? [positions.buffer as ArrayBuffer] : [])];
      const into = new SharedArrayBuffer(targetBytes(positions?.length ?? batch.rows * data.positionsPerRow, data.classes, 0));
      const reply = await client.request({ type: 'predict', id: 0, slots, batch, output: 'probs', topK: 0, positions, into }, 'predicted', transfer);
      if (reply.target.kind !== 'dense') throw new Error(`the teacher answered a ${reply.target.kind} target, not dense probabilities`);
      return predictor.decode(reply.target.values, data.classes, { topK: k });
    },
    async tensors() {
      return (await client.request({ type: 'tensors', id: 0 }, 'tensors')).tensors;
    },
    close() {
      closed ??= (async () => {
        try {
          await client.close();
        } finally {
          await data.close();
        }
      })();
      return closed;
    },
  };
}

/** One prediction: opens the run's models, answers `input`, and closes again (openPredictor for several). */
export async function predict(o: PredictorOptions & { input: unknown } & PredictOptions): Promise<unknown> {
  const { input, topK, ...open } = o;
  if (topK !== undefined) checkTopK(topK);
  const p = await openPredictor(open);
  try {
    return await p.predict(input, { topK });
  } finally {
    await p.close();
  }
}
