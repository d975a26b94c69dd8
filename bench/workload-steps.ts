/**
 * Step time of each workload's small preset, through the whole run (replicas, teachers, exchanges), against the
 * same preset's groups training without teachers (alpha 0) in the same run: what codistillation costs per step on
 * each workload.
 *
 *   npm run bench -- workloads
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, workloadOf } from '../src/config/load.js';
import { ensureData } from '../src/commands/ingest.js';
import { measureArm } from './training.js';

export const WORKLOAD_PRESETS = ['lm-small', 'criteo-small', 'mnist-small'] as const;

export async function benchWorkloadSteps(steps = 30, warmup = 5): Promise<Record<string, number | string>[]> {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-bench-'));
  const common = [`steps=${steps + warmup}`, `runDir=${dir}`, 'eval.every=0', 'eval.examples=8', 'checkpoint.every=0', 'optim.warmupSteps=0', 'distill.burnIn=0'];
  try {
    const rows: Record<string, number | string>[] = [];
    for (const preset of WORKLOAD_PRESETS) {
      await ensureData(loadConfig({ preset }));
      const arm = (name: string, set: string[]) =>
        measureArm(name, loadConfig({ preset, set: [...common, `name=${preset}-${name}`, ...set] }), warmup);
      const plain = await arm('plain', ['distill.alpha=0']);
      const codistill = await arm('codistill', []);
      const { unit } = workloadOf(loadConfig({ preset }));
      rows.push({
        preset,
        'plain step ms': plain.stepMs,
        'codistill step ms': codistill.stepMs,
        'teacher overhead (codistill / plain - 1)': codistill.stepMs / plain.stepMs - 1,
        [`codistill ${unit}/s (2 groups)`]: Math.round(codistill.positionsPerSecond),
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.table(await benchWorkloadSteps(Number(process.argv[2] ?? 30)));
}
