/**
 * The service's request and reply schemas (zod): fastify validates requests and serializes replies with them
 * (fastify-type-provider-zod), so a bad request is refused with a message naming the field before a handler runs.
 * A run's config inside a request is checked by the project's own config schema, which names the bad key.
 */
import { z } from 'zod';

const runName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "a run name is letters, digits, '.', '_' and '-', starting with a letter or digit");

export const runIdParams = z.strictObject({ id: runName });

export const startBody = z.strictObject({
  preset: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'a preset is a name from config/ (tiny, lm-small, criteo-small, ...), not a path')
    .optional()
    .describe('the preset to start from'),
  set: z.array(z.string()).default([]).describe('key=value overrides, as with --set'),
  config: z.record(z.string(), z.unknown()).optional().describe('config keys as an object, applied after set'),
  name: runName.optional().describe('the run name (a folder under the runs folder); default a timestamp'),
});

export const resumeBody = z.strictObject({ set: z.array(z.string()).default([]) }).default({ set: [] });

export const predictBody = z.strictObject({
  input: z.unknown().refine((v) => v !== undefined, 'input is required'),
  step: z.union([z.number().int().min(0), z.literal('newest')]).default('newest'),
  groups: z.array(z.number().int().min(0)).min(1).optional(),
  topK: z.number().int().min(1).max(1000).optional(),
});

export const metricsQuery = z.strictObject({
  /** Only these event types (comma-separated), e.g. step,eval. */
  type: z.string().optional(),
  /** Only events after this id. */
  after: z.coerce.number().int().min(-1).default(-1),
});

export const reportParams = z.strictObject({ experiment: runName, name: runName });
export const reportFileParams = reportParams.extend({ file: z.string().min(1) });

export const runInfo = z.object({
  id: z.string(),
  runDir: z.string(),
  workload: z.string(),
  groups: z.number(),
  steps: z.number(),
  step: z.number(),
  state: z.enum(['running', 'stopping', 'finished', 'stopped', 'failed', 'interrupted']),
  live: z.boolean(),
  events: z.number(),
  lastEval: z.object({ step: z.number(), losses: z.array(z.number()), ensembleLoss: z.number() }).optional(),
  error: z.string().optional(),
});

export const stopReply = z.object({
  id: z.string(),
  stopped: z.boolean(),
  steps: z.number(),
  /** The checkpoint step a resume continues from. */
  resumesAt: z.number(),
  losses: z.array(z.number()),
});

export const reportInfo = z.object({
  experiment: z.string(),
  name: z.string(),
  plots: z.array(z.string()),
  tables: z.array(z.string()),
  files: z.array(z.string()),
  modified: z.number(),
});

export const errorReply = z.object({ statusCode: z.number(), error: z.string(), message: z.string() });

export type RunInfoReply = z.output<typeof runInfo>;
