import t, { type Test } from 'tap';
import { ReplaySubject, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { syncSnapshotStep, teacherSnapshot } from '../streams/teacher-snapshot.js';

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

/** What the snapshot board does: late subscribers still see what was published before. */
function replayed<T>(source: Observable<T>): Observable<T> {
  const subject = new ReplaySubject<T>(3);
  source.subscribe(subject);
  return subject;
}
