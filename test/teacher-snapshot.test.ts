import t, { type Test } from 'tap';
import { ReplaySubject, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { teacherSnapshot } from '../streams/teacher-snapshot.js';
import { exchangeDue, syncSnapshotStep } from '../src/train/schedule.js';

const scheduler = (tt: Test) => new TestScheduler((actual, expected) => tt.same(actual, expected));
const snap = (step: number) => ({ group: 1, step });

t.test('sync: a step uses the snapshot of floor(s/K)*K, waiting until it is published', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    // Group 1 publishes snapshots 0, 50 and 100; the student asks for steps 10, 60, 75 and 100.
    const published$ = hot('a----b-------c', { a: snap(0), b: snap(50), c: snap(100) });
    const steps$ = cold('  -w-x---y-z', { w: 10, x: 60, y: 75, z: 100 });
    // Step 60 must wait for snapshot 50 (published at frame 5); step 100 waits for snapshot 100 (frame 13).
    expectObservable(steps$.pipe(teacherSnapshot(replayed(published$), 'sync', 50))).toBe('-w---x-y-----z', {
      w: snap(0),
      x: snap(50),
      y: snap(50),
      z: snap(100),
    });
  });
});

t.test('async: a step uses the newest snapshot there is and never waits', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    const published$ = hot('a----b-------c', { a: snap(0), b: snap(50), c: snap(100) });
    const steps$ = cold('  -w-x---y-z', { w: 10, x: 60, y: 75, z: 100 });
    expectObservable(steps$.pipe(teacherSnapshot(replayed(published$), 'async', 50))).toBe('-w-x---y-z', {
      w: snap(0),
      x: snap(0),
      y: snap(50),
      z: snap(50),
    });
  });
});

t.test('an exchange interval of 0 keeps the first snapshot forever', async (t) => {
  t.equal(syncSnapshotStep(12345, 0), 0);
  t.equal(syncSnapshotStep(49, 50), 0);
  t.equal(syncSnapshotStep(50, 50), 50);
});

t.test('the first exchange happens when burn-in ends, so no student distils toward a random initialisation', async (t) => {
  t.equal(syncSnapshotStep(149, 250, 150), 0, 'during burn-in nothing is distilled; the initial snapshot stands');
  t.equal(syncSnapshotStep(150, 250, 150), 150, 'at the end of burn-in: that step\'s snapshot');
  t.equal(syncSnapshotStep(249, 250, 150), 150);
  t.equal(syncSnapshotStep(250, 250, 150), 250, 'then the regular exchanges');
  t.equal(syncSnapshotStep(5000, 0, 150), 150, '"never" means never after the one at burn-in');
  t.equal(syncSnapshotStep(120, 50, 100), 100, 'an interval exchange at or after burn-in takes over');
  t.equal(syncSnapshotStep(160, 50, 100), 150);
  t.ok(exchangeDue(150, 250, 150) && exchangeDue(250, 250, 150) && !exchangeDue(200, 250, 150), 'publishing follows the same rule');
  t.ok(exchangeDue(150, 0, 150) && !exchangeDue(300, 0, 150));
});

t.test('sync: at burn-in the students wait for the burn-in snapshot', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    const published$ = hot('a---b-----c', { a: snap(0), b: snap(150), c: snap(250) });
    const steps$ = cold('  -w-x--y--z', { w: 100, x: 150, y: 200, z: 260 });
    expectObservable(steps$.pipe(teacherSnapshot(replayed(published$), 'sync', 250, 150))).toBe('-w--x-y---z', {
      w: snap(0),
      x: snap(150),
      y: snap(150),
      z: snap(250),
    });
  });
});

/** What an exchange's published$ does: late subscribers still see what was published before. */
function replayed<T>(source: Observable<T>): Observable<T> {
  const subject = new ReplaySubject<T>(3);
  source.subscribe(subject);
  return subject;
}

t.test('sync: a wanted snapshot that is already gone from the exchange is an error naming both steps, not a wait', async (t) => {
  scheduler(t).run(({ cold, hot, expectObservable }) => {
    // The exchange kept only snapshots 100 and 150; a restarted student asks for step 60 (wants snapshot 50).
    const published$ = hot('(ab)', { a: snap(100), b: snap(150) });
    const steps$ = cold('  -w', { w: 60 });
    const message = "group 1's snapshot of step 50 (the teacher of step 60) is gone: the oldest one left is of step 100";
    expectObservable(steps$.pipe(teacherSnapshot(replayed(published$), 'sync', 50))).toBe('-#', undefined, new Error(message));
  });
});
