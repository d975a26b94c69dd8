/**
 * `codistill serve`: an HTTP service that starts, stops, resumes and watches runs, answers predictions from their
 * checkpoints, shows experiment reports, exports Prometheus metrics and serves a dashboard.
 *
 *   GET  /api/health                          ok, and how many runs are live
 *   GET  /api/runs                            every run (live, and on disk under the runs folder)
 *   POST /api/runs                      auth  start one: { preset?, set?, config?, name? }          201
 *   GET  /api/runs/:id                        one run's state
 *   POST /api/runs/:id/stop             auth  checkpoint every group and stop; resolves once they have
 *   POST /api/runs/:id/resume           auth  continue from the newest checkpoint: { set? }           201
 *   GET  /api/runs/:id/events                 Server-Sent Events: the history, then live; Last-Event-ID resumes
 *   GET  /api/runs/:id/metrics                the history as JSON (?type=step,eval&after=<id>)
 *   POST /api/runs/:id/predict                { input, step?, groups?, topK? } from a named or the newest checkpoint
 *   GET  /api/reports                         experiment reports
 *   GET  /api/reports/:experiment/:name       one report: its markdown and files
 *   GET  /api/reports/:experiment/:name/files/:file
 *   GET  /metrics                             Prometheus text format
 *   GET  /                                    the dashboard
 *
 * "auth": the request needs `Authorization: Bearer <token>` (compared in constant time). Every error is a JSON
 * `{ statusCode, error, message }` whose message names the problem.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyBaseLogger, type RawServerDefault, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { fastifySSE } from '@fastify/sse';
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../config/load.js';
import { InputError } from '../train/predict.js';
import { NoCheckpointError } from '../train/snapshots.js';
import type { ServeOptions } from './options.js';
import { PredictorCache } from './predictors.js';
import { ServiceMetrics } from './prometheus.js';
import { Reports } from './reports.js';
import { RunRegistry, ServiceError } from './runs.js';
import * as s from './schemas.js';

export interface Service {
  readonly app: FastifyInstance;
  readonly runs: RunRegistry;
  /** The bearer token requests that change something need. */
  readonly token: string;
  /** Listens on the configured host and port; resolves with the address (http://host:port). */
  listen(): Promise<string>;
  /** Stops every live run with a checkpoint, closes the predictors and the server. */
  close(): Promise<void>;
}

/** The dashboard's files, in the package's src/serve/dashboard/ (found from here whether running src/ or dist/). */
function dashboardFile(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    const file = join(dir, 'src', 'serve', 'dashboard', name);
    if (existsSync(file)) return file;
  }
  throw new Error(`cannot find the dashboard's ${name} (src/serve/dashboard/) in the package`);
}

const require = createRequire(import.meta.url);
const uplot = (name: string) => require.resolve(`uplot/dist/${name}`);

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const STATIC: Record<string, { file: () => string; type: string }> = {
  '/': { file: () => dashboardFile('index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: () => dashboardFile('dashboard.js'), type: JS },
  '/dashboard.css': { file: () => dashboardFile('dashboard.css'), type: CSS },
  '/vendor/uPlot.iife.min.js': { file: () => uplot('uPlot.iife.min.js'), type: JS },
  '/vendor/uPlot.min.css': { file: () => uplot('uPlot.min.css'), type: CSS },
};

type ZodApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;

const digest = (t: string) => createHash('sha256').update(t).digest();

/** Whether the request carries the token: both sides hashed to the same length, then compared in constant time. */
function authorized(header: string | undefined, expected: Buffer): 'ok' | 'missing' | 'wrong' {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return 'missing';
  return timingSafeEqual(digest(m[1]), expected) ? 'ok' : 'wrong';
}

function statusOf(err: FastifyError | Error): number {
  if (err instanceof ServiceError) return err.statusCode;
  if (err instanceof NoCheckpointError) return 404;
  if (err instanceof ConfigError || err instanceof InputError) return 400;
  const code = (err as FastifyError).statusCode;
  return code && code >= 400 && code < 600 ? code : 500;
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 406: 'Not Acceptable', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 500: 'Internal Server Error' };

/** The message a client sees: what was wrong with its request, in words. */
function messageOf(err: FastifyError | Error, limit: number): string {
  const e = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(err)) {
    return err.validation.map((v) => `${err.validationContext ?? 'request'}${v.instancePath.replace(/\//g, '.') || ''}: ${v.message}`).join('; ');
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return `the request body is larger than the service's limit of ${limit} bytes`;
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return 'send the body as application/json';
  if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return 'the body is empty: send a JSON object';
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return `the body is not valid JSON: ${e.message}`;
  return e.message;
}

export function createService(opts: ServeOptions & { log?: boolean }): Service {
  const token = opts.token ?? process.env.CODISTILL_TOKEN ?? randomBytes(24).toString('base64url');
  const expected = digest(token);
  const metrics = new ServiceMetrics();
  const runs = new RunRegistry({ runs: opts.runs, onEvent: (id, e, config) => metrics.observe(id, e, config) });
  const reports = new Reports(opts.results);
  const predictors = new PredictorCache(opts.predictors);
  const app = Fastify({ bodyLimit: opts.bodyLimit, logger: opts.log ?? false, forceCloseConnections: true, return503OnClosing: true });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.routeOptions.config.public) return;
    const a = authorized(req.headers.authorization, expected);
    if (a === 'ok') return;
    reply.header('www-authenticate', `Bearer realm="codistill"${a === 'wrong' ? ', error="invalid_token"' : ''}`);
    return reply.code(401).send({
      statusCode: 401,
      error: 'Unauthorized',
      message: a === 'missing' ? `${req.method} ${req.url} changes something: send Authorization: Bearer <token>` : 'the bearer token is wrong',
    });
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ method: req.method, route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
  });
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const status = statusOf(err);
    if (status >= 500) req.log.error(err);
    return reply.code(status).send({ statusCode: status, error: REASONS[status] ?? 'Error', message: status >= 500 && !(err instanceof ServiceError) ? `internal error: ${err.message}` : messageOf(err, opts.bodyLimit) });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );

  // The SSE plugin sees the routes registered after it (in this child scope); hooks and handlers above apply to all.
  void app.register(fastifySSE, { heartbeatInterval: 15_000 });
  void app.register(async (scope) => routes(scope.withTypeProvider<ZodTypeProvider>()));

  function routes(api: ZodApp): void {

  for (const [url, { file, type }] of Object.entries(STATIC)) {
    api.get(url, (_req, reply) => reply.type(type).header('cache-control', 'no-cache').send(readFileSync(file())));
  }

  api.get('/api/health', { schema: { response: { 200: z.object({ ok: z.boolean(), live: z.number() }) } } }, () => ({
    ok: true,
    live: runs.list().filter((r) => r.live).length,
  }));

  api.get('/api/runs', { schema: { response: { 200: z.array(s.runInfo) } } }, () => runs.list());

  api.post('/api/runs', { schema: { body: s.startBody, response: { 201: s.runInfo } } }, async (req, reply) => {
    const { preset, set, config, name } = req.body;
    const resolved = loadConfig({ preset, set, overrides: config });
    reply.code(201);
    return runs.start(resolved, name);
  });

  api.get('/api/runs/:id', { schema: { params: s.runIdParams, response: { 200: s.runInfo } } }, (req) => runs.info(req.params.id));

  api.post('/api/runs/:id/stop', { schema: { params: s.runIdParams, response: { 200: s.stopReply } } }, async (req) => {
    const { id } = req.params;
    const summary = await runs.stop(id);
    // Where a resume continues: the checkpoint step the run's `stopped` event names (or the end, had it finished).
    const stoppedAt = runs.history(id).findLast((e) => e.type === 'stopped');
    const resumesAt = stoppedAt?.type === 'stopped' ? stoppedAt.resumesAt : summary.steps;
    return { id, stopped: summary.stopped, steps: summary.steps, resumesAt, losses: summary.losses };
  });

  api.post('/api/runs/:id/resume', { schema: { params: s.runIdParams, body: s.resumeBody, response: { 201: s.runInfo } } }, async (req, reply) => {
    reply.code(201);
    return runs.resume(req.params.id, req.body?.set ?? []);
  });

  api.get('/api/runs/:id/events', { sse: { kind: 'only' }, schema: { params: s.runIdParams } }, async (req, reply) => {
    const { id } = req.params;
    runs.info(id); // 404 before the stream starts
    const last = Number(reply.sse.lastEventId ?? (req.query as { after?: string }).after ?? -1);
    const from = Number.isInteger(last) ? last + 1 : 0;
    const closed = new AbortController();
    reply.sse.onClose(() => closed.abort());
    async function* messages() {
      for await (const { index, event } of runs.events(id, from, closed.signal)) yield { id: String(index), event: event.type, data: event };
      // The run has ended: say so, so that a browser's EventSource closes instead of reconnecting.
      if (!closed.signal.aborted) yield { event: 'end', data: runs.info(id) };
    }
    await reply.sse.send(messages());
  });

  api.get('/api/runs/:id/metrics', { schema: { params: s.runIdParams, querystring: s.metricsQuery } }, async (req) => {
    const types = req.query.type?.split(',').map((t) => t.trim());
    return runs
      .history(req.params.id)
      .map((event, id) => ({ id, ...event }))
      .filter((e) => e.id > req.query.after && (!types || types.includes(e.type)));
  });

  api.post('/api/runs/:id/predict', { config: { public: true }, schema: { params: s.runIdParams, body: s.predictBody } }, async (req) => {
    const { id } = req.params;
    const { input, step, groups, topK } = req.body;
    const end = metrics.predictSeconds.startTimer({ run: id });
    const config = runs.config(id);
    const answer = await predictors.use({ id, config, runDir: runs.info(id).runDir, step, groups }, async (p) => ({
      step: p.step,
      groups: [...p.groups],
      prediction: await p.predict(input, { topK }),
    }));
    end();
    return answer;
  });

  api.get('/api/reports', { schema: { response: { 200: z.array(s.reportInfo) } } }, () => reports.list());

  api.get('/api/reports/:experiment/:name', { schema: { params: s.reportParams, response: { 200: s.reportInfo.extend({ markdown: z.string() }) } } }, (req) => ({
    ...reports.info(req.params.experiment, req.params.name),
    markdown: reports.markdown(req.params.experiment, req.params.name),
  }));

  api.get('/api/reports/:experiment/:name/files/:file', { schema: { params: s.reportFileParams } }, (req, reply) => {
    const { body, type } = reports.file(req.params.experiment, req.params.name, req.params.file);
    return reply.type(type).send(body);
  });

  api.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    runs,
    token,
    async listen() {
      return app.listen({ host: opts.host, port: opts.port });
    },
    close() {
      closing ??= (async () => {
        await runs.stopAll();
        await predictors.close();
        await app.close();
      })();
      return closing;
    },
  };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A POST that changes nothing (predict): no token needed. */
    public?: boolean;
  }
}
