import t from 'tap';
import { Writable } from 'node:stream';
import { bytes, compact, createProgress, duration } from '../src/util/progress.js';

/** A stream that keeps what is written to it, optionally claiming to be a terminal. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string } {
  const s = new Writable({
    write(chunk, _enc, done) {
      s.text += String(chunk);
      done();
    },
  }) as Writable & { isTTY: boolean; text: string; columns: number };
  s.text = '';
  s.isTTY = isTTY;
  s.columns = 100;
  return s;
}

t.test('without a terminal: a line every 2 s or each 10%, with rate and ETA, and a last one on stop', async (t) => {
  const stream = sink(false);
  let clock = 0;
  const bar = createProgress({ label: 'encode', total: 100e6, unit: 'B', stream, now: () => clock });
  for (let i = 1; i <= 100; i++) {
    clock += 100; // 0.1 s per MB: 10 MB/s
    bar.update(i * 1e6, { tokens: i * 250_000 });
  }
  bar.stop();
  bar.stop();
  const lines = stream.text.trim().split('\n');
  t.same(lines.length, 11, 'the first update, each further 10% (every 1 s here), and stop()');
  t.equal(lines[0], 'encode: 1% 1.0 MB/100.0 MB, 10.0 MB/s, ETA 10s, tokens 250k');
  t.equal(lines[1], 'encode: 10% 10.0 MB/100.0 MB, 10.0 MB/s, ETA 9s, tokens 2.50M');
  t.equal(lines[10], 'encode: 100% 100.0 MB/100.0 MB, 10.0 MB/s, tokens 25.0M in 10s');

  const slow = sink(false);
  clock = 0;
  const steps = createProgress({ label: 'train', total: 1e6, unit: 'steps', stream: slow, now: () => clock });
  for (let i = 0; i < 10; i++) {
    clock += 500;
    steps.increment();
  }
  t.equal(slow.text.split('\n').length - 1, 3, 'below 10% a line only every 2 s');
  t.match(slow.text, /^train: 0% 1\/1\.00M steps, 2 steps\/s, ETA 138h53m\ntrain: 0% 5\/1\.00M/);
});

t.test('CI set: plain lines even on a terminal', async (t) => {
  const saved = process.env.CI;
  process.env.CI = 'true';
  t.teardown(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });
  const stream = sink(true);
  const bar = createProgress({ label: 'scan', total: 10, unit: 'files', stream, now: () => 0 });
  bar.update(5);
  bar.stop();
  t.notMatch(stream.text, /\x1b/, 'no escape codes');
  t.match(stream.text, /^scan: 50% 5\/10 files/);
});

t.test('on a terminal: a redrawn bar', async (t) => {
  const saved = process.env.CI;
  delete process.env.CI;
  t.teardown(() => {
    if (saved !== undefined) process.env.CI = saved;
  });
  const stream = sink(true);
  const bar = createProgress({ label: 'scan', total: 10, unit: 'files', stream });
  bar.update(10);
  bar.stop();
  t.match(stream.text, /scan .*100% \| 10\/10 files/);
});

t.test('numbers and durations read at a glance', async (t) => {
  t.equal(bytes(512), '512 B');
  t.equal(bytes(12_345_678), '12.3 MB');
  t.equal(compact(950), '950');
  t.equal(compact(12_345), '12.3k');
  t.equal(compact(4_560_000), '4.56M');
  t.equal(duration(42), '42s');
  t.equal(duration(185), '3m05s');
  t.equal(duration(7620), '2h07m');
});
