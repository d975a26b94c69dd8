/**
 * Groups in separate processes (one per GPU) exchange snapshots through one store: what another process commits,
 * a store already open here sees at its next call, with no reopening.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openSnapshotStore, type SnapshotInput } from '../src/store/index.js';

const storeModule = pathToFileURL(fileURLToPath(new URL('../src/store/index.ts', import.meta.url))).href;

const snap = (group: number, step: number): SnapshotInput => ({
  header: { runId: 'r', group, step, model: 'lm' },
  tensors: [{ name: 'weights/w', shape: [4], data: new Float32Array(4).fill(group * 100 + step) }],
});

/** Puts a snapshot of (group, step) from a separate Node process. */
function putFromAnotherProcess(uri: string, group: number, step: number): void {
  const script = `
    const { openSnapshotStore } = await import(${JSON.stringify(storeModule)});
    const store = openSnapshotStore(${JSON.stringify(uri)});
    await store.put({
      header: { runId: 'r', group: ${group}, step: ${step}, model: 'lm' },
      tensors: [{ name: 'weights/w', shape: [4], data: new Float32Array(4).fill(${group * 100 + step}) }],
    });
    await store.close();
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  if (child.status !== 0) throw new Error(`child failed (${child.status ?? child.signal}): ${child.stderr}`);
}

for (const scheme of ['lmdb', 'dir']) {
  t.test(`${scheme}: a snapshot another process commits is seen at once by an open store`, async (t) => {
    const uri = `${scheme}:${join(t.testdir(), 'snapshots')}`;
    const store = openSnapshotStore(uri);
    t.teardown(() => store.close());
    await store.put(snap(0, 1));
    t.equal((await store.latest(1))?.step, undefined);
    // No await between the child's commit and the reads: nothing may lean on a timer refreshing the view.
    putFromAnotherProcess(uri, 1, 5);
    t.equal((await store.latest(1))?.step, 5);
    t.equal((await store.get(1, 5))?.tensors[0].data[0], 105);
    t.equal(await store.latestCommonStep(2), undefined);
    putFromAnotherProcess(uri, 1, 1);
    t.equal(await store.latestCommonStep(2), 1);
  });
}
