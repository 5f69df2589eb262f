/** GET /metrics: the node's Prometheus metrics (text exposition format). */
import type { FastifyInstance } from 'fastify'
import type { NodeMetrics } from '../metrics.ts'

export function registerMetricsRoute (app: FastifyInstance, metrics: NodeMetrics): void {
  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics of this node: taskmesh_* plus Node.js process metrics',
      response: { 200: { description: 'Prometheus text format', type: 'string' } }
    }
  }, async (_req, reply) => {
    const { contentType, body } = await metrics.text()
    return await reply.type(contentType).send(body)
  })
}
