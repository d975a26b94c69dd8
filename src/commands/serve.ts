/**
 * `codistill serve`: the HTTP service and its dashboard, until SIGTERM or SIGINT, which stop every live run with a
 * checkpoint of each group (resumable from the service or `codistill train --resume`) before the process exits.
 */
import { loadServeOptions, type ServeOptions } from '../serve/options.js';
import { createService } from '../serve/server.js';

export async function serveCommand(file: string | undefined, flags: Partial<Record<keyof ServeOptions, unknown>>): Promise<void> {
  const options = loadServeOptions(file, flags);
  const service = createService(options);
  const url = await service.listen();
  const chosen = options.token !== undefined || process.env.CODISTILL_TOKEN !== undefined;
  process.stderr.write(
    `codistill serve: ${url} (dashboard at ${url}/), runs in ${service.runs.root}\n` +
      (chosen ? '' : `requests that change something need: Authorization: Bearer ${service.token}\n`),
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`codistill serve: ${signal}: checkpointing the live runs, then exiting\n`);
      service.close().then(resolve, (err: Error) => {
        process.stderr.write(`codistill serve: ${err.message}\n`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
