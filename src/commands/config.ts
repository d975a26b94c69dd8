import { describeKeys } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { markdownTable } from '../util/table.js';

/** Prints the resolved config as JSON, or the documented key table. */
export function configCommand(config: Config | undefined, flags: { markdown?: boolean }): void {
  if (config) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return;
  }
  const keys = describeKeys();
  if (flags.markdown) {
    const rows = keys.map((k) => [`\`${k.key}\``, k.type, `\`${JSON.stringify(k.default)}\``, k.doc]);
    process.stdout.write(markdownTable(['key', 'type', 'default', 'meaning'], rows));
    return;
  }
  const width = Math.max(...keys.map((k) => k.key.length));
  for (const k of keys) {
    process.stdout.write(`${k.key.padEnd(width)}  ${JSON.stringify(k.default).padEnd(14)} ${k.doc}  [${k.type}]\n`);
  }
}
