/**
 * A write that runs out of room fails clearly and leaves what was committed before intact. "Out of room" is
 * simulated with a file-size limit (`ulimit -f`) on a child process, the portable stand-in for a full disk:
 * lmdb-js grows its map on demand (a small fixed mapSize does not stay fixed), so only the file system can stop it.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const storeModule = pathToFileURL(fileURLToPath(new URL('../src/store/index.ts', import.meta.url))).href;

/** Runs in the child: small put, too-big put, then what is left. Prints one JSON line. */
const childScript = (uri: string): string => `
// Node ignores SIGXFSZ, so a write past the limit fails with EFBIG; but tap instruments child processes with
// exit hooks that re-raise the signal when they are its only listener. A listener of our own keeps it harmless.
process.on('SIGXFSZ', () => {});
const { openSnapshotStore } = await import(${JSON.stringify(storeModule)});
const snap = (step, floats) => ({
  header: { runId: 'r', group: 0, step, model: 'lm' },
  tensors: [{ name: 'weights/w', shape: [floats], data: new Float32Array(floats).fill(step) }],
});
const store = openSnapshotStore(${JSON.stringify(uri)});
await store.put(snap(1, 1000));
let error;
try {
  await store.put(snap(2, 2 << 20)); // 8 MiB, over the 2 MiB file-size limit
} catch (e) {
  error = { name: e.name, kind: e.kind, message: e.message };
}
const steps = (await store.list(0)).map((h) => h.step);
const kept = (await store.get(0, 1))?.tensors[0].data[0];
await store.put(snap(3, 1000)); // the store still takes writes that fit
const after = (await store.list(0)).map((h) => h.step);
await store.close();
const { readdirSync } = await import('node:fs');
const files = ${JSON.stringify(uri)}.startsWith('dir:') ? readdirSync(${JSON.stringify(uri.slice(4))} + '/group-0000') : [];
console.log(JSON.stringify({ error, steps, kept, after, files }));
`;

interface ChildReport {
  error?: { name: string; kind: string; message: string };
  steps: number[];
  kept: number;
  after: number[];
  files: string[];
}

for (const scheme of ['lmdb', 'dir']) {
  const title = `${scheme}: a write that hits a full disk fails clearly and keeps the earlier snapshots`;
  t.test(title, { skip: process.platform === 'win32' && 'needs ulimit' }, async (t) => {
    const uri = `${scheme}:${join(t.testdir(), 'snapshots')}`;
    // ulimit -f counts 1024-byte blocks.
    const child = spawnSync(
      'bash',
      ['-c', 'ulimit -f 2048; exec "$0" "$@"', process.execPath, '--import', 'tsx', '--input-type=module', '-e'].concat(
        childScript(uri),
      ),
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
    );
    const last = child.stdout.trim().split('\n').at(-1) ?? '';
    t.equal(child.status, 0, `signal ${child.signal}: ${child.stderr}`);
    const r = JSON.parse(last) as ChildReport;
    t.match(r.error, { name: 'SnapshotError', kind: 'full', message: /no room to write group 0 step 2.*intact/ });
    t.ok(r.error?.message.startsWith(uri), 'the message names the store');
    t.match(r.error?.message, /step 2 \(8,\d{3},\d{3} bytes; /, 'the message names the bytes the snapshot needed');
    t.same(r.steps, [1], 'the failed snapshot is not listed');
    t.equal(r.kept, 1, 'the earlier snapshot reads back whole');
    t.same(r.after, [1, 3]);
    if (scheme === 'dir') {
      t.same(r.files.sort(), ['step-000000000001.snap', 'step-000000000003.snap'], 'no temp file is left behind');
    }
  });
}
