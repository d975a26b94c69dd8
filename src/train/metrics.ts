/**
 * The run's metrics log: every event as one JSON line in the run folder (appended, so a resumed run continues the
 * same file). Experiments and plots read it back with `readMetrics`.
 */
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import type { RunEvent } from './events.js';

export interface MetricsLog {
  /** Writes the event to the log, then hands it on. */
  emit(e: RunEvent): void;
  close(): Promise<void>;
}

export function appendMetrics(file: string, next: (e: RunEvent) => void): MetricsLog {
  const out = createWriteStream(file, { flags: 'a' });
  return {
    emit(e) {
      // The resolved config is in config.json beside the log; repeating it on every start line adds nothing.
      const line = e.type === 'start' ? { ...e, config: undefined } : e;
      out.write(`${JSON.stringify(line)}\n`);
      next(e);
    },
    close: () => new Promise((resolve) => out.end(resolve)),
  };
}

export function readMetrics(file: string): RunEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l) as RunEvent;
      } catch {
        throw new Error(`${file}:${i + 1}: not a JSON line`);
      }
    });
}
