/**
 * The local HTTP shim: a thin layer over the runtime. It never decides
 * anything about the cluster; it reports what the core knows.
 */
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { ClusterSnapshot } from '../core/cluster-core.ts'
import { TaskmeshError } from '../errors.ts'
import { registerDocs } from './docs.ts'
import { ClusterReply, ErrorReply, HealthReply } from './schemas.ts'

export interface HttpDeps {
  snapshot: () => ClusterSnapshot
  self: { id: string, name: string }
  startedMs: number
  now: () => number
  log: Logger
  /** Default body limit (routes may set their own). */
  bodyLimit: number
}

export async function buildHttpServer (deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Reject rather than silently fix: no type coercion, no dropping of unknown fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } }
  })

  // First, so that the OpenAPI document sees every route registered after it.
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
