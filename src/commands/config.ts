import { describeKeys, type KeyDoc } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { markdownTable } from '../util/table.js';
import { builtInWorkloads, loadWorkload } from '../workloads/registry.js';

/** The keys every run has, then each built-in workload's own sections (the config is a union keyed on `workload`). */
function keyGroups(): { title: string; keys: KeyDoc[] }[] {
  return [
    { title: 'every run', keys: describeKeys(loadWorkload('lm'), 'common') },
    ...builtInWorkloads().map((kind) => ({ title: `workload = ${kind}`, keys: describeKeys(loadWorkload(kind), 'workload') })),
  ];
}

/** Prints the resolved config as JSON, or the documented key table. */
export function configCommand(config: Config | undefined, flags: { markdown?: boolean }): void {
  if (config) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return;
  }
  const groups = keyGroups();
  if (flags.markdown) {
    const tables = groups.map(({ title, keys }) => {
      const rows = keys.map((k) => [`\`${k.key}\``, k.type, `\`${JSON.stringify(k.default)}\``, k.doc]);
      return `**Keys of ${title}**\n\n${markdownTable(['key', 'type', 'default', 'meaning'], rows)}`;
    });
    process.stdout.write(tables.join('\n'));
    return;
  }
  const width = Math.max(...groups.flatMap((g) => g.keys.map((k) => k.key.length)));
  for (const { title, keys } of groups) {
    process.stdout.write(`# ${title}\n`);
    for (const k of keys) process.stdout.write(`${k.key.padEnd(width)}  ${JSON.stringify(k.default).padEnd(14)} ${k.doc}  [${k.type}]\n`);
  }
}
