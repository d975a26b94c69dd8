/**
 * The ingest's scan on every core: runs of consecutive input files go to a pool of scanner actors
 * (actors/scanner.ts), which check, hash and cut them; the results come back in listing order. An input error is
 * the first bad file's in listing order, as a scan on one thread would report it.
 *
 * On one thread, or with a single task, the files are scanned here: a worker would add its start and nothing else.
 * Workers load compiled JavaScript (dist/actors/scanner.js): run `npm run build` first.
 */
import { Piscina } from 'piscina';
import type { ScanReply, ScanRequest } from '../../../protocol.js';
import { actorFile } from '../../../util/paths.js';
import { type InputFile, type InvalidUtf8Policy, type ScannedFile, scanFiles } from './inputs.js';
import { cutTasks, runTask, workerError } from './worker-tasks.js';

export async function scanInParallel(
  files: readonly InputFile[],
  maxDocumentBytes: number,
  invalidUtf8: InvalidUtf8Policy,
  threads: number,
  onProgress: (bytesDone: number, bytesTotal: number, documents: number) => void,
): Promise<ScannedFile[]> {
  const tasks = cutTasks(files, (f) => f.bytes, threads);
  if (threads <= 1 || tasks.length <= 1) return scanFiles(files, maxDocumentBytes, invalidUtf8, onProgress);
  const bytesTotal = files.reduce((sum, f) => sum + f.bytes, 0);
  const workers = Math.min(threads, tasks.length);
  const pool = new Piscina<ScanRequest, ScanReply>({ filename: actorFile('scanner'), minThreads: workers, maxThreads: workers });
  try {
    let bytesDone = 0;
    let documents = 0;
    onProgress(0, bytesTotal, 0);
    // Every task is queued at once (each is a list of file names); the replies are taken in order.
    const replies = tasks.map((task) =>
      runTask(pool, { type: 'scan', files: task, maxDocumentBytes, invalidUtf8 }).then((reply) => {
        if (reply.type === 'scanned') {
          bytesDone += task.reduce((sum, f) => sum + f.bytes, 0);
          documents += reply.files.reduce((sum, f) => sum + f.documents.length, 0);
          onProgress(bytesDone, bytesTotal, documents);
        }
        return reply;
      }),
    );
    for (const reply of replies) reply.catch(() => {}); // each is awaited below, in order
    const scanned: ScannedFile[] = [];
    for (const reply of replies) {
      const r = await reply;
      if (r.type === 'error') throw workerError('scanner', r);
      scanned.push(...r.files);
    }
    return scanned;
  } finally {
    await pool.destroy();
  }
}
