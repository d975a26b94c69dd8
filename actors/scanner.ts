/**
 * The scanner actor: a piscina worker that checks input files and cuts them into documents (corpus/inputs.ts,
 * scanFile), so that `codistill ingest` reads and hashes its inputs on every core (corpus/scan-pool.ts is the other
 * side). A request is a run of consecutive files; an input error comes back as data, its message naming the file.
 */
import type { ScanReply, ScanRequest } from '../src/protocol.js';
import { type ScannedFile, scanFile } from '../src/workloads/lm/corpus/inputs.js';
import { errorReply } from '../src/workloads/lm/corpus/worker-tasks.js';

export default async function handler(req: ScanRequest): Promise<ScanReply> {
  try {
    if (req?.type !== 'scan') throw new Error(`unknown request type "${String(req?.type)}"`);
    const files: ScannedFile[] = [];
    for (const file of req.files) files.push(await scanFile(file, req.maxDocumentBytes, undefined, req.invalidUtf8));
    return { type: 'scanned', files };
  } catch (err) {
    return errorReply(err);
  }
}
