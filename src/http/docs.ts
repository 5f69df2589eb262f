/**
 * OpenAPI, generated from the routes' own schemas (@fastify/swagger), and
 * Swagger UI at /docs (its files come from the installed package: no
 * network at run time). The document itself is GET /docs/json.
 * Must be registered before any route, so that every route is seen.
 *
 * Built on the first request under /docs, not at start: the two plugins
 * (and the YAML, glob and static-file modules they bring) cost a start about
 * 60 ms of CPU and a few MB for a page most nodes never serve. Until then the
 * node only notes each route it registers; the first /docs request builds a
 * private fastify instance holding the same routes (with no-op handlers) and
 * the two plugins, and every /docs request is answered by it, with the same
 * status, headers and body as before, after this server's own hooks (the
 * bearer token) ran.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, RouteOptions } from 'fastify'
import { DEFAULTS } from '../config.ts'

/** One-line summaries of routes whose schemas (elsewhere) carry none. */
const SUMMARIES: Record<string, string> = {
  'GET /healthz': 'Liveness: this node\'s id, name and uptime',
  'GET /v1/cluster': 'The members and the leader as this node sees them',
  'POST /v1/tasks': 'Submit a task: 202 once it is stored on two nodes (one on a lone node, unless minCopies is 2), with the copies stored; ?wait=MS answers 200 with the task if it ends within MS. runAt or delayMs delay it (status scheduled until then)',
  'POST /v1/tasks/{id}/retry': 'Retry a failed or cancelled task through the leader: same id, attempts continue, optional new maxAttempts; 409 for any other status',
  'POST /v1/tasks/batch': `Submit up to maxBatchTasks (default ${DEFAULTS.maxBatchTasks}) tasks in one request; ?wait=MS answers once all ended (200) or MS passed (202), with the tasks that ended`,
  'POST /v1/tasks/wait': 'Wait for many tasks in one request (any node): answers once one of them has ended, or waitMs passed, with every one that has ended; ids no live node knows are listed as missing',
  'GET /v1/tasks': 'Tasks held by this node, most recently changed first',
  'GET /v1/tasks/{id}': 'One task, read from any node; ?wait=MS long-polls until it ends',
  'DELETE /v1/tasks/{id}': 'Cancel a task (its running handler gets its abort signal)',
  'DELETE /v1/tasks': 'Purge: forget the finished records that ended before ?before=TS (of ?status=, when given) on every live node'
}

const PREFIX = '/docs'
/**
 * Set on the docs instance's answers that this server must give itself (a
 * 404, an error), so that they come in the API's error shape from its own
 * handlers; never sent to a client.
 */
const HANDOFF = 'x-taskmesh-docs-handoff'

/** The routes as registered, for the docs instance to register again. */
type NotedRoute = Pick<RouteOptions, 'method' | 'url' | 'schema'>

async function buildDocsServer (routes: readonly NotedRoute[], version: string): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
    import('fastify'), import('@fastify/swagger'), import('@fastify/swagger-ui')
  ])
  // The HEAD routes fastify added to the real server are among the noted ones.
  const docs = Fastify({ exposeHeadRoutes: false })
  // The schemas are only read for the document here: nothing is validated or serialized with them.
  docs.setValidatorCompiler(() => () => true)
  docs.setSerializerCompiler(() => data => JSON.stringify(data))
  docs.setNotFoundHandler((_req, reply) => { void reply.code(404).header(HANDOFF, 'not-found').send('') })
  docs.setErrorHandler((err: Error & { statusCode?: number, code?: string }, _req, reply) => {
    void reply.code(err.statusCode ?? 500).header(HANDOFF, 'error').send({ message: err.message, code: err.code })
  })
  await docs.register(swagger, {
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
  for (const r of routes) docs.route({ method: r.method, url: r.url, schema: r.schema, handler: () => null })
  await docs.register(swaggerUi, { routePrefix: PREFIX, uiConfig: { docExpansion: 'list', deepLinking: false } })
  await docs.ready()
  return docs
}

export async function registerDocs (app: FastifyInstance, version: string): Promise<void> {
  const routes: NotedRoute[] = []
  app.addHook('onRoute', r => {
    if (r.url !== PREFIX && !r.url.startsWith(`${PREFIX}/`)) routes.push({ method: r.method, url: r.url, schema: r.schema })
  })
  let docs: Promise<FastifyInstance> | undefined
  const serve = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    // A failed build is tried again by the next request.
    docs ??= buildDocsServer(routes, version).catch((err: unknown) => { docs = undefined; throw err })
    // HEAD as GET: the docs instance has no HEAD routes of its own; this server sends no body for HEAD.
    const method = (req.method === 'HEAD' ? 'GET' : req.method) as HTTPMethods
    const res = await (await docs).inject({ method, url: req.url, headers: req.headers })
    if (res.headers[HANDOFF] === 'not-found') {
      reply.callNotFound()
      return reply
    }
    if (res.headers[HANDOFF] === 'error') {
      const { message, code } = res.json<{ message: string, code?: string }>()
      throw Object.assign(new Error(message), { statusCode: res.statusCode, code })
    }
    const headers = { ...res.headers }
    // This server's own (the body sent is the same, so its content-length stands).
    delete headers['transfer-encoding']
    delete headers.connection
    delete headers.date
    return await reply.code(res.statusCode).headers(headers).send(res.rawPayload.length === 0 ? undefined : res.rawPayload)
  }
  const hide = { schema: { hide: true } }
  app.route({ method: ['GET', 'HEAD'], url: PREFIX, ...hide, handler: serve })
  app.route({ method: ['GET', 'HEAD'], url: `${PREFIX}/*`, ...hide, handler: serve })
}
