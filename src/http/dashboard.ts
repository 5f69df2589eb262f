/**
 * The dashboard at GET /: static files from src/http/dashboard and uPlot
 * from the installed package, read once at start and served from memory.
 * No build step, no CDN: the page works on a machine without internet.
 * It follows GET /v1/events; see dashboard/app.js.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'

interface Asset { body: Buffer, type: string }

function assets (): Map<string, Asset> {
  const own = join(import.meta.dirname, 'dashboard')
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot'))
  const files: Array<[string, string, string]> = [
    ['app.js', join(own, 'app.js'), 'text/javascript; charset=utf-8'],
    ['style.css', join(own, 'style.css'), 'text/css; charset=utf-8'],
    ['uplot.js', join(uplot, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    ['uplot.css', join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8']
  ]
  return new Map(files.map(([name, path, type]) => [name, { body: readFileSync(path), type }]))
}

export function registerDashboard (app: FastifyInstance): void {
  const index = readFileSync(join(import.meta.dirname, 'dashboard', 'index.html'))
  const files = assets()
  const hide = { schema: { hide: true } }
  app.get('/', hide, (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(index))
  app.get<{ Params: { file: string } }>('/dashboard/:file', hide, (req, reply) => {
    const a = files.get(req.params.file)
    if (a === undefined) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no dashboard file ${req.params.file}` } })
    return reply.type(a.type).header('cache-control', 'public, max-age=300').send(a.body)
  })
}
