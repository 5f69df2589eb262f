/**
 * OpenAPI, generated from the routes' own schemas (@fastify/swagger), and
 * Swagger UI at /docs (its files come from the installed package: no
 * network at run time). The document itself is GET /docs/json.
 * Must be registered before any route, so that every route is seen.
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { DEFAULTS } from '../config.ts'

/** One-line summaries of routes whose schemas (elsewhere) carry none. */
const SUMMARIES: Record<string, string> = {
  'GET /healthz': 'Liveness: this node\'s id, name and uptime',
  'GET /v1/cluster': 'The members and the leader as this node sees them',
  'POST /v1/tasks': 'Submit a task: 202 once it is stored on two nodes (one on a lone node, unless minCopies is 2), with the copies stored; ?wait=MS answers 200 with the task if it ends within MS',
  'POST /v1/tasks/batch': `Submit up to maxBatchTasks (default ${DEFAULTS.maxBatchTasks}) tasks in one request; ?wait=MS answers once all ended (200) or MS passed (202), with the tasks that ended`,
  'POST /v1/tasks/wait': 'Wait for many tasks in one request (any node): answers once one of them has ended, or waitMs passed, with every one that has ended; ids no live node knows are listed as missing',
  'GET /v1/tasks': 'Tasks held by this node, most recently changed first',
  'GET /v1/tasks/{id}': 'One task, read from any node; ?wait=MS long-polls until it ends',
  'DELETE /v1/tasks/{id}': 'Cancel a task (its running handler gets its abort signal)',
  'DELETE /v1/tasks': 'Purge: forget the finished records that ended before ?before=TS (of ?status=, when given) on every live node'
}

export async function registerDocs (app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    transform: ({ schema, url, route }) => {
      const method = Array.isArray(route.method) ? route.method[0] : route.method
      const summary = SUMMARIES[`${String(method)} ${url.replace(/:(\w+)/g, '{$1}')}`]
      return { schema: summary === undefined || schema?.summary !== undefined ? schema : { ...schema, summary }, url }
    },
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
