#!/usr/bin/env node
// Entry point of the `codistill` command: runs the compiled CLI (npm ci / npm run build produce dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('codistill: dist/ is missing; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
// A closed pipe (`codistill config --keys | head`) is a normal end, not a crash.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { main } = await import(cli.href);
process.exitCode = await main(process.argv);
