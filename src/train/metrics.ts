/**
 * The run's metrics log: every event as one JSON line in the run folder (appended, so a resumed run continues the
 * same file). Experiments, plots and the service read it back with `readMetrics`.
 *
 * Writing (`appendMetrics`). Each event is `JSON.stringify(event) + '\n'`; a 'start' event is written without its
 * config (config.json beside the log holds it). A log whose last byte is not '\n' ends in a torn line (a write cut
 * short by a full disk or a crash): a '\n' is written first, so the next event starts a line of its own. The torn line
 * itself is left as it is: nothing is ever truncated. The first failed write (a full disk, a quota, a file-size
 * limit, any other I/O error, or a log that cannot be opened) becomes a `MetricsLogError`, handed once to `onError`
 * (or, with no `onError`, emitted as a process warning) and kept as `failure`. From then on `emit` writes nothing
 * but still hands every event on: losing the log never stops the run. `close()` always resolves, failed or not.
 *
 * Reading (`readMetrics`), line by line; blank lines are ignored:
 * - a line that parses as JSON is an event;
 * - a line that starts with '{' but does not parse is a torn event. When a complete event follows the torn part on
 *   the same line (logs of older versions appended a resumed run's first event to a torn line without a newline
 *   between), that event is recovered: the one that starts at the last `{"type":` from which the rest of the line
 *   parses. Otherwise the line is skipped, wherever it is: at the end (cut short by a full disk, a crash, or a
 *   writer still writing it) or in the middle (a resumed run appended after it);
 * - any other line is not this log's and throws `<file>:<line>: not a JSON line`.
 */
import { createWriteStream, closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { RunEvent } from './events.js';

/** Error codes with which a write reports no room: the disk, a quota, a file-size limit. */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * The metrics log could not be written. `bytes`: the bytes of run events not (wholly) written when the write failed;
 * `code`: the system error code, when there is one.
 *
 * Messages:
 *   <file>: no room left on the device to append 1,234 bytes of run events (ENOSPC); free space and resume the run:
 *   its checkpoints are intact
 *   <file>: appending 1,234 bytes of run events failed (EIO: i/o error, write)
 */
export class MetricsLogError extends Error {
  override name = 'MetricsLogError';
  readonly code: string | undefined;
  constructor(
    readonly file: string,
    readonly bytes: number,
    cause: unknown,
  ) {
    const raw = (cause as { code?: unknown } | undefined)?.code;
    const code = typeof raw === 'string' ? raw : undefined;
    const amount = `${bytes.toLocaleString('en-US')} bytes of run events`;
    let message: string;
    if (code !== undefined && NO_ROOM.has(code)) {
      message =
        `${file}: no room left on the device to append ${amount} (${code}); ` +
        'free space and resume the run: its checkpoints are intact';
    } else {
      const said = (cause as Error | undefined)?.message ?? String(cause);
      const detail = code === undefined || said.startsWith(code) ? said : `${code}: ${said}`;
      message = `${file}: appending ${amount} failed (${detail})`;
    }
    super(message, { cause });
    this.code = code;
  }
}

export interface MetricsLog {
  /** Writes the event to the log (unless a write failed before, or `close()` was called), then hands it on. */
  emit(e: RunEvent): void;
  /** Ends the log once what was emitted is written; resolves (never rejects) even after a failure. */
  close(): Promise<void>;
  /** The first write error, if there was one: nothing was written after it. */
  readonly failure: MetricsLogError | undefined;
}

/** Whether `file` exists, is not empty, and its last byte is not '\n' (it ends in a torn line). */
function endsTorn(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const { size } = fstatSync(fd);
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } catch {
    return false; // no file yet, or one that cannot be read: the write stream reports what matters
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Appends every event emitted to `file` (see the module comment) and hands it on to `next`. A failed write is
 * handed once to `onError` and kept as `failure`; the run goes on without the log.
 */
export function appendMetrics(
  file: string,
  next: (e: RunEvent) => void,
  onError?: (error: MetricsLogError) => void,
): MetricsLog {
  const out = createWriteStream(file, { flags: 'a' });
  const closed = new Promise<void>((resolve) => out.once('close', () => resolve()));
  let failure: MetricsLogError | undefined;
  let ended = false;
  // Bytes handed to the stream, and bytes it confirmed written: the difference is what a failure left unwritten.
  let queued = 0;
  let written = 0;

  out.on('error', (cause) => {
    if (failure) return;
    failure = new MetricsLogError(file, queued - written, cause);
    if (onError) onError(failure);
    else process.emitWarning(failure);
  });
  const write = (text: string): void => {
    const length = Buffer.byteLength(text);
    queued += length;
    // A stream that failed is destroyed before its 'error' event comes: count what it cannot take, write nothing.
    if (failure || out.destroyed) return;
    out.write(text, (e) => {
      if (!e) written += length;
    });
  };

  if (endsTorn(file)) write('\n');
  return {
    emit(e) {
      if (!failure && !ended) {
        // The resolved config is in config.json beside the log; repeating it on every start line adds nothing.
        const line = e.type === 'start' ? { ...e, config: undefined } : e;
        write(`${JSON.stringify(line)}\n`);
      }
      next(e);
    },
    close() {
      if (!ended) {
        ended = true;
        if (!out.destroyed) out.end();
      }
      return closed;
    },
    get failure() {
      return failure;
    },
  };
}

/** Where the complete event glued after a torn one starts: the last `{"type":` from which the rest parses. */
function recoverGlued(line: string): RunEvent | undefined {
  for (let at = line.lastIndexOf('{"type":'); at > 0; at = line.lastIndexOf('{"type":', at - 1)) {
    try {
      return JSON.parse(line.slice(at)) as RunEvent;
    } catch {
      // not here: an earlier one may start the complete event
    }
  }
  return undefined;
}

/**
 * The events of a metrics log (none when there is no file, nor a compressed FILE.gz), reading past torn lines (see the
 * module comment).
 */
export function readMetrics(file: string): RunEvent[] {
  // A finished log may be kept only compressed (an experiment's arms, as committed under results/).
  const gz = `${file}.gz`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : existsSync(gz) ? gunzipSync(readFileSync(gz)).toString('utf8') : undefined;
  if (text === undefined) return [];
  const events: RunEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    try {
      events.push(JSON.parse(line) as RunEvent);
      continue;
    } catch {
      if (!line.startsWith('{')) throw new Error(`${file}:${i + 1}: not a JSON line`);
    }
    const glued = recoverGlued(line);
    if (glued) events.push(glued);
  }
  return events;
}
