/**
 * The snapshot board: the snapshots each group has published, in this process.
 *
 * Every `distill.exchangeEvery` steps a group publishes its weights; the other groups' teachers reload them. Which
 * snapshot a teacher uses at a step is the exchange rule in streams/teacher-snapshot.ts (sync: exactly
 * floor(s/K)*K, waiting for it; async: the newest). The board keeps a few recent snapshots per group, because in sync
 * mode groups drift up to one interval apart.
 */
import { firstValueFrom, type Observable, of, ReplaySubject } from 'rxjs';
import { teacherSnapshot } from '../../streams/teacher-snapshot.js';

export { exchangeDue } from '../../streams/teacher-snapshot.js';

export interface Published {
  group: number;
  step: number;
  weights: Float32Array;
}

export class SnapshotBoard {
  private readonly subjects: ReplaySubject<Published>[];
  private readonly newestOf: (Published | undefined)[];

  constructor(groups: number, keep = 3) {
    this.subjects = Array.from({ length: groups }, () => new ReplaySubject<Published>(keep));
    this.newestOf = new Array<Published | undefined>(groups).fill(undefined);
  }

  publish(p: Published): void {
    this.newestOf[p.group] = p;
    this.subjects[p.group].next(p);
  }

  published$(group: number): Observable<Published> {
    return this.subjects[group].asObservable();
  }

  newest(group: number): Published | undefined {
    return this.newestOf[group];
  }

  /** The snapshot of `group` a teacher uses at `step` under the exchange rule (may wait, in sync mode). */
  forStep(group: number, step: number, mode: 'sync' | 'async', exchangeEvery: number, burnIn: number): Promise<Published> {
    return firstValueFrom(of(step).pipe(teacherSnapshot(this.published$(group), mode, exchangeEvery, burnIn)));
  }
}
