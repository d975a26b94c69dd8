import { describeKeys } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** Prints the resolved config as JSON, or the documented key table. */
export function configCommand(config: Config | undefined, flags: { markdown?: boolean }): void {
  if (config) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return;
  }
  const keys = describeKeys();
  if (flags.markdown) {
    const lines = ['| key | type | default | meaning |', '| --- | --- | --- | --- |'];
    const esc = (v: string) => v.replaceAll('|', '\\|');
    for (const k of keys) lines.push(`| \`${k.key}\` | ${esc(k.type)} | \`${JSON.stringify(k.default)}\` | ${esc(k.doc)} |`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  const width = Math.max(...keys.map((k) => k.key.length));
  for (const k of keys) {
    process.stdout.write(`${k.key.padEnd(width)}  ${JSON.stringify(k.default).padEnd(14)} ${k.doc}  [${k.type}]\n`);
  }
}
