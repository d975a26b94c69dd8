/**
 * The fault-injection suite: what a user's run lives through, tried on the real command line. Each case damages a
 * run (SIGKILL at a named point, a signal, a second process, a damaged checkpoint, a full file system), then
 * resumes it, and compares the final weights bit for bit with a run that never saw a fault.
 */
import t, { type Test } from 'tap';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { readMetrics } from '../src/train/metrics.js';
import { train } from '../src/train/run.js';
import { finalWeights, fixtureCorpus, newestCommonCheckpoint, sameBits } from './helpers/run.js';

const exec = promisify(execFile);
const cli = fileURLToPath(new URL('../bin/codistill.mjs', import.meta.url));

// Exchanges at 2, 4, 6, 8 (so a snapshot is published in the store mid-run), checkpoints at 4 and 8.
const SET = ['steps=8', 'distill.burnIn=2', 'distill.exchangeEvery=2', 'checkpoint.every=4', 'checkpoint.keep=2', 'eval.every=8', 'eval.examples=8', 'backend=wasm'];

const setFlags = (set: string[]) => set.flatMap((s) => ['-s', s]);

async function settings(dir: string, name: string, extra: string[] = []): Promise<string[]> {
  return [`corpus.path=${await fixtureCorpus()}`, `runDir=${dir}`, `name=${name}`, ...SET, ...extra];
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the CLI to its end; never rejects (a killed or failed run is what most cases are about). */
async function codistill(args: string[], env: Record<string, string> = {}): Promise<Ended> {
  try {
    const { stderr } = await exec(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
    return { code: 0, signal: null, stderr };
  } catch (err) {
    const e = err as { code: number | null; signal: NodeJS.Signals | null; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : null, signal: e.signal, stderr: e.stderr };
  }
}

const reference = (async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codistill-fault-suite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = loadConfig({ preset: 'tiny', set: await settings(dir, 'reference') });
  const summary = await train({ config });
  return { config, weights: await finalWeights(summary.runDir, config) };
})();

async function sameAsReference(t: Test, runDir: string, what: string): Promise<void> {
  const ref = await reference;
  // The run's own config says where its checkpoints are (its store.url).
  const weights = await finalWeights(runDir, loadConfig({ preset: join(runDir, 'config.json') }));
  t.ok(weights.every((w, g) => sameBits(w, ref.weights[g])), `${what}: final weights bitwise equal to the uninterrupted run`);
}

// One run killed again and again, each time at the next point, resumed each time: every kill must leave it
// resumable, and the last resume must end where an uninterrupted run ends. A named store carries the exchange through
// LMDB even with every group in this process, so a snapshot publish is a store write that can be cut. Checkpoints
// are written off the training path, so a kill at step 6 or 7 may come before step 4's checkpoint has committed
// (a loaded machine): the checkpoint each kill left is read from the store, and only the first two kills, which
// come before any checkpoint can commit, and the last, after the final one, leave a known step.
const kills: [title: string, point: string, leaves: number | undefined][] = [
  ['before the first checkpoint', 'step@2', 0],
  ['inside a checkpoint write, before it commits', 'checkpoint-write@4', 0],
  ['inside a snapshot publish, before it commits', 'publish-write@6', undefined],
  ['mid-run, between checkpoints', 'step@7', undefined],
  ['after the last checkpoint, before the end', 'end', 8],
];

t.test('SIGKILL before the first checkpoint, inside a checkpoint write, inside a snapshot publish, mid-run and at the end: each time the run resumes, and ends with the same final weights', async (t) => {
  const dir = t.testdir();
  const set = await settings(dir, 'k', [`store.url=lmdb:${join(dir, 'store')}`]);
  let args = ['train', '-p', 'tiny', ...setFlags(set)];
  const left: number[] = [];
  for (const [title, point, leaves] of kills) {
    const killed = await codistill(args, { CODISTILL_KILL_AT: point });
    t.equal(killed.signal, 'SIGKILL', `killed ${title} (${point}): ${killed.stderr}`);
    left.push(await newestCommonCheckpoint(join(dir, 'k')));
    if (leaves !== undefined) t.equal(left.at(-1), leaves, `killed ${title}: the newest checkpoint of every group is step ${leaves}`);
    args = ['train', '--resume', join(dir, 'k')];
  }
  const resumed = await codistill(args);
  t.equal(resumed.code, 0, resumed.stderr);
  const log = readMetrics(join(dir, 'k', 'metrics.jsonl'));
  const starts = log.flatMap((e) => (e.type === 'start' ? [e.fromStep] : []));
  // Each resume starts where its kill left the run; the last kill left every step trained, so its resume only
  // evaluates the final checkpoint and ends the run.
  t.same(starts.slice(-(kills.length - 1)), left.slice(0, -1), 'each resume started from the newest checkpoint the kill left');
  t.same(log.filter((e) => e.type === 'eval' || e.type === 'done').slice(-2).map((e) => [e.type, e.step]), [['eval', 8], ['done', 8]], 'the final evaluation and the end');
  await sameAsReference(t, join(dir, 'k'), 'five kills');
});

t.test('SIGINT checkpoints every group at the step it reached and exits 130; the resume ends the same', async (t) => {
  const dir = t.testdir();
  const set = await settings(dir, 'i', ['steps=400']);
  const stopped = await codistill(['train', '-p', 'tiny', ...setFlags(set)], { CODISTILL_SIGNAL_AT: 'SIGINT@3' });
  t.equal(stopped.code, 130, 'the exit code of SIGINT');
  t.match(stopped.stderr, /SIGINT: every group checkpoints the step it has reached/);
  const [, step] = /stopped by SIGINT at step (\d+); continue with: codistill train --resume /.exec(stopped.stderr) ?? [];
  t.ok(Number(step) >= 3 && Number(step) < 400, `stopped at step ${step}`);
  const log = readMetrics(join(dir, 'i', 'metrics.jsonl'));
  t.same(
    [0, 1].map((g) => log.some((e) => e.type === 'checkpoint' && e.group === g && e.step === Number(step))),
    [true, true],
    'both groups checkpointed that step',
  );
  const resumed = await codistill(['train', '--resume', join(dir, 'i'), '-s', 'steps=8']);
  t.equal(resumed.code, 0, resumed.stderr);
  await sameAsReference(t, join(dir, 'i'), 'SIGINT then resume');
});

/** Watches a child's stderr: `seen` resolves once it matches `until`. */
function watch(child: ChildProcess, until: RegExp): { seen: Promise<string>; ended: Promise<Ended> } {
  let stderr = '';
  let resolveSeen: (s: string) => void;
  const seen = new Promise<string>((resolve) => (resolveSeen = resolve));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr += d;
    if (until.test(stderr)) resolveSeen(stderr);
  });
  const ended = new Promise<Ended>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { seen, ended };
}

/** Starts the CLI in the background. */
function background(args: string[], until: RegExp): { child: ChildProcess; seen: Promise<string>; ended: Promise<Ended> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { child, ...watch(child, until) };
}

t.test('a second process on a run folder is refused naming the first one’s pid; a second signal exits at once, and the run resumes', async (t) => {
  const dir = t.testdir();
  // Far more steps than it will ever train: the run is still going when the other commands and the signals come,
  // however fast the kernels (it used to end on its own before them on the native kernels).
  const set = await settings(dir, 'both', ['steps=1000000', 'checkpoint.every=2']);
  const first = background(['train', '-p', 'tiny', ...setFlags(set)], /train: 2 group\(s\)/);
  await Promise.race([first.seen, first.ended]);
  const second = await codistill(['train', '--resume', join(dir, 'both')]);
  t.equal(second.code, 2);
  t.match(second.stderr, new RegExp(`in use by process ${first.child.pid} `));
  const again = await codistill(['train', '-p', 'tiny', ...setFlags(set)]);
  t.match(again.stderr, new RegExp(`in use by process ${first.child.pid} `), 'a new run of the same name too');

  // The first SIGTERM asks for a checkpoint; the second, sent as soon as the first is acknowledged, exits at once.
  const acknowledged = watch(first.child, /again exits at once/).seen;
  first.child.kill('SIGTERM');
  await Promise.race([acknowledged, first.ended]);
  first.child.kill('SIGTERM');
  const end = await first.ended;
  t.equal(end.code, 143, `the exit code of SIGTERM: ${end.stderr}`);
  t.match(end.stderr, /SIGTERM again: exiting now/);
  const resumed = await codistill(['train', '--resume', join(dir, 'both'), '-s', 'checkpoint.every=4', '-s', `steps=${Math.max(8, newestStep(join(dir, 'both')) + 1)}`]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stderr, /resuming at step \d+/);
});

/** The newest step any group logged a checkpoint of. */
function newestStep(runDir: string): number {
  return Math.max(0, ...readMetrics(join(runDir, 'metrics.jsonl')).flatMap((e) => (e.type === 'checkpoint' ? [e.step] : [])));
}

t.test('a damaged newest checkpoint is reported and the run resumes from the intact one before it', async (t) => {
  const dir = t.testdir();
  const store = join(dir, 'files');
  const set = await settings(dir, 'd', [`store.url=dir:${store}`]);
  // Killed after its step-8 checkpoints, before the run ends: a resume would start at step 8.
  const killed = await codistill(['train', '-p', 'tiny', ...setFlags(set)], { CODISTILL_KILL_AT: 'end' });
  t.equal(killed.signal, 'SIGKILL');
  const group1 = join(store, 'checkpoints', 'group-0001');
  const newest = readdirSync(group1).sort().at(-1)!;
  t.match(newest, /000000000008/);
  const bytes = readFileSync(join(group1, newest));
  bytes[bytes.length - 100] ^= 0xff; // one flipped byte in the tensors
  writeFileSync(join(group1, newest), bytes);
  const resumed = await codistill(['train', '--resume', join(dir, 'd')]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stderr, /warning: group 1's checkpoint of step 8 is damaged \(.*checksum.*\); passed over for an older checkpoint/);
  t.match(resumed.stderr, /resuming at step 4/);
  const log = readMetrics(join(dir, 'd', 'metrics.jsonl'));
  t.ok(log.some((e) => e.type === 'warning' && e.kind === 'damaged-checkpoint' && e.group === 1 && e.step === 8), 'the warning is in the log');
  await sameAsReference(t, join(dir, 'd'), 'a damaged checkpoint passed over');
});

const canMount = (() => {
  const probe = spawnSync('unshare', ['-rm', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k none "$d" && umount "$d"'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : `cannot mount a small tmpfs here (unshare -rm: ${probe.stderr.trim() || probe.error?.message})`;
})();

t.test('a full file system stops the run with a clear error; once space is freed it resumes to the same weights', { skip: canMount }, async (t) => {
  const dir = t.testdir();
  const small = join(dir, 'small');
  const out = join(dir, 'out');
  mkdirSync(small);
  mkdirSync(out);
  const set = await settings(small, 'full');
  // In a mount namespace of its own: a 3 MiB file system, most of it taken by a filler, for the run folder.
  const script = [
    'set -u',
    `mount -t tmpfs -o size=3m none "${small}"`,
    `head -c 2400000 /dev/zero > "${small}/filler"`,
    `"${process.execPath}" "${cli}" train -p tiny ${setFlags(set).map((a) => `'${a}'`).join(' ')} 2> "${out}/first.err"; echo $? > "${out}/first.code"`,
    `ls "${small}/full" > "${out}/files"`,
    `rm "${small}/filler"`,
    `"${process.execPath}" "${cli}" train --resume "${small}/full" 2> "${out}/second.err"; echo $? > "${out}/second.code"`,
    `cp -r "${small}/full" "${out}/full"`,
  ].join('\n');
  const r = spawnSync('unshare', ['-rm', 'bash', '-c', script], { encoding: 'utf8', timeout: 300_000 });
  t.equal(r.status, 0, r.stderr);
  const first = readFileSync(join(out, 'first.err'), 'utf8');
  t.equal(readFileSync(join(out, 'first.code'), 'utf8').trim(), '2', `the full disk is a clear error: ${first}`);
  t.match(first, /codistill: .*(no room|no space).*\d[\d,]* bytes/i, 'naming what could not be written and how much');
  t.match(first, new RegExp(small), 'and where');
  t.notMatch(first, /\n\s+at /, 'no stack');
  const second = readFileSync(join(out, 'second.err'), 'utf8');
  t.equal(readFileSync(join(out, 'second.code'), 'utf8').trim(), '0', second);
  const config = loadConfig({ preset: 'tiny', set });
  const weights = await finalWeights(join(out, 'full'), { ...config, store: { ...config.store, url: '' } });
  const ref = await reference;
  t.ok(weights.every((w, g) => sameBits(w, ref.weights[g])), 'resumed after the free-up: bitwise equal to the uninterrupted run');
});
