/**
 * The local HTTP shim: a thin layer over the runtime. It never decides
 * anything about the cluster; it reports what the core knows.
 */
import Fastify, { LogController } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { ClusterSnapshot } from '../core/cluster-core.ts'
import { ClusterReply, ErrorReply, HealthReply } from './schemas.ts'

export interface HttpDeps {
  snapshot: () => ClusterSnapshot
  self: { id: string, name: string }
  startedMs: number
  now: () => number
  log: Logger
}

export function buildHttpServer (deps: HttpDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024 })

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` } })
  })
  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500
    if (status >= 500) deps.log.error({ err }, 'request failed')
    void reply.code(status).send({ error: { code: err.code ?? 'INTERNAL', message: err.message } })
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
