/**
 * OpenAPI, generated from the routes' own schemas (@fastify/swagger), and
 * Swagger UI at /docs (its files come from the installed package: no
 * network at run time). The document itself is GET /docs/json.
 * Must be registered before any route, so that every route is seen.
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

export async function registerDocs (app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'taskmesh',
        version,
        description: 'The HTTP API of one taskmesh node. Every node serves the same API; tasks submitted to any node are readable from every node.'
      }
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false } })
}
