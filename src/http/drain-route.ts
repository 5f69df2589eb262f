/** POST /v1/drain: this node drains, leaves the cluster and stops (as on SIGTERM). */
import type { FastifyInstance } from 'fastify'
import { DrainReply, ErrorReply } from './schemas.ts'

export interface DrainRouteDeps {
  self: { id: string, name: string }
  drainTimeoutMs: number
  /** Begins the drain, or does nothing when one is under way. */
  begin: () => void
}

export function registerDrainRoute (app: FastifyInstance, deps: DrainRouteDeps): void {
  app.post('/v1/drain', {
    schema: {
      summary: 'Drain this node, then stop it: it takes no new work, finishes its running attempts within drainTimeoutMs, hands leadership over, announces that it left, and exits',
      response: { 202: DrainReply, '5xx': ErrorReply }
    }
  }, async (_req, reply) => {
    deps.begin()
    return await reply.code(202).send({ ...deps.self, status: 'draining' as const, drainTimeoutMs: deps.drainTimeoutMs })
  })
}
