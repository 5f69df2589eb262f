/**
 * The local HTTP shim: a thin layer over the runtime. It never decides
 * anything about the cluster; it reports what the core knows.
 */
import { trace, tracing } from '../trace.ts'
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import type { ClusterSnapshot } from '../core/cluster-core.ts'
import { TaskmeshError } from '../errors.ts'
import { requireToken } from './auth.ts'
import { registerDocs } from './docs.ts'
import { lazySchemaCompilers } from './lazy-schemas.ts'
import { MAX_JSON_DEPTH, deeperThan } from './json-depth.ts'
import { ClusterReply, ErrorReply, HealthReply } from './schemas.ts'

export interface HttpDeps {
  snapshot: () => ClusterSnapshot
  self: { id: string, name: string }
  startedMs: number
  now: () => number
  log: Logger
  /** Default body limit (routes may set their own). */
  bodyLimit: number
  /** Bearer token every route but /healthz requires; null: none. */
  token: string | null
}

export async function buildHttpServer (deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Longer than any id (128): a longer parameter is a 400 from the route's schema, one over this a 414.
    routerOptions: { maxParamLength: 256 },
    // Bad URLs and overlong parameters are refused before routing: in the API's error shape too.
    frameworkErrors: (err, _req, reply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      void (reply as FastifyReply).code(tooLong ? 414 : 400).send({ error: { code: tooLong ? 'URI_TOO_LONG' : 'MALFORMED_REQUEST', message: tooLong ? 'a path parameter is longer than 256 characters' : err.message } })
    },
    // Reject rather than silently fix: no type coercion, no dropping of unknown fields. The route schemas
    // are ours (TypeBox-built; test/unit/http-schemas.test.ts checks them against the meta-schema), so
    // Ajv does not compile the meta-schema to check them again on a node's first requests (about half
    // of the CPU of compiling the batch route's validator).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, validateSchema: false } },
    // Each route's schemas compile on its first request, not at start.
    schemaController: { compilersFactory: lazySchemaCompilers() }
  })

  // The task-path trace (src/trace.ts): when a request arrived and when its answer was written.
  if (tracing) {
    app.addHook('onRequest', async () => { trace('http.request') })
    app.addHook('onResponse', async () => { trace('http.response') })
  }

  // Before routing, body parsing and every route's own hooks: an unauthenticated request costs nothing more.
  if (deps.token !== null) app.addHook('onRequest', requireToken(deps.token))

  // Deeply nested JSON parses fine but would overflow the stack wherever it is walked recursively later.
  app.addHook('preValidation', async (req, reply) => {
    if (req.body !== undefined && deeperThan(req.body, MAX_JSON_DEPTH)) {
      await reply.code(400).send({ error: { code: 'INVALID_REQUEST', message: `the body nests deeper than ${MAX_JSON_DEPTH} levels` } })
    }
  })

  // Before any route, so that the OpenAPI document sees every route registered after it.
  await registerDocs(app, '0.1.0')

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` } })
  })
  app.setErrorHandler((err: Error & { statusCode?: number, code?: string, validation?: unknown }, _req, reply) => {
    if (err instanceof TaskmeshError) {
      if (err.retryAfterS !== undefined) void reply.header('Retry-After', String(err.retryAfterS))
      return reply.code(err.status).send({ error: { code: err.code, message: err.message } })
    }
    if (err.validation !== undefined) return reply.code(400).send({ error: { code: 'INVALID_REQUEST', message: err.message } })
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
    const code = status === 413 ? 'BODY_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status === 400 ? 'MALFORMED_REQUEST' : (err.code ?? 'INTERNAL')
    if (status >= 500) deps.log.error({ err }, 'request failed')
    return reply.code(status).send({ error: { code, message: err.message } })
  })

  app.get('/healthz', { schema: { response: { 200: HealthReply } } }, () => ({
    status: 'ok' as const,
    ...deps.self,
    uptimeMs: deps.now() - deps.startedMs
  }))

  app.get('/v1/cluster', { schema: { response: { 200: ClusterReply, '4xx': ErrorReply } } }, () => {
    const snap = deps.snapshot()
    return { self: snap.self, leader: snap.leader, members: snap.members }
  })

  return app
}
