import { workloadOf } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** What a loss is measured in for a run's workload: `nats/token`, `nats/row`, `nats/image`. */
export const lossUnit = (config: Config | undefined): string =>
  `nats/${config ? workloadOf(config).unit.replace(/s$/, '') : 'position'}`;
