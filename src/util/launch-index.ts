/**
 * The index a launcher gives each of the N copies of a command it starts (a Kubernetes Indexed Job's pods, a Slurm
 * job's tasks): `codistill train --group` trains that group, `codistill ingest --part /P` ingests that part.
 */
import { ConfigError } from '../config/load.js';

/** Environment variables through which common launchers number their tasks 0..N-1, the first one set wins. */
export const LAUNCH_INDEX_VARIABLES = ['JOB_COMPLETION_INDEX', 'SLURM_PROCID'] as const;

export interface LaunchIndexOptions {
  /** The flag that asks for the index ("--group"), named in errors. */
  flag: string;
  /** What the index counts ("group"), and the count with where it comes from ("the run has groups=2"). */
  what: string;
  count: number;
  countSource: string;
}

/**
 * `given` when the command line names the index, else the first launcher variable set in `env`; an integer from 0
 * to count - 1. Errors name what was missing or out of range, and where the bad value came from.
 */
export function launchIndexOf(given: string | undefined, o: LaunchIndexOptions, env: NodeJS.ProcessEnv = process.env): number {
  let raw: string | undefined;
  let source: string;
  if (given === undefined) {
    const name = LAUNCH_INDEX_VARIABLES.find((v) => env[v] !== undefined && env[v] !== '');
    if (!name) {
      throw new ConfigError(`${o.flag} without an index needs ${LAUNCH_INDEX_VARIABLES.join(' or ')} in the environment (set by Kubernetes Indexed Jobs and Slurm)`);
    }
    raw = env[name];
    source = name;
  } else {
    raw = given;
    source = o.flag;
  }
  const index = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(index) || index < 0 || index >= o.count) {
    throw new ConfigError(`${source}=${raw}: a ${o.what} index must be an integer from 0 to ${o.count - 1} (${o.countSource})`);
  }
  return index;
}
