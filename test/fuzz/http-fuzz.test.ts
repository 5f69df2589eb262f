/**
 * 10,000 random and malformed HTTP requests against a real node: bad JSON,
 * wrong types, huge strings, deep nesting, unicode, negative numbers,
 * prototype-pollution keys, odd methods, paths, queries and content types.
 * Properties: every answer has a documented status and the JSON error shape
 * (never a 5xx), the node keeps serving valid requests, its RSS stays
 * bounded, and only the requests it accepted changed its tasks or members.
 */
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeSet, waitFor } from '../support/nodes.ts'

const REQUESTS = Number(process.env.TASKMESH_HTTP_FUZZ_REQUESTS ?? 10_000)
const PER_RUN = 20
const SEED = Number(process.env.TASKMESH_FUZZ_SEED ?? Date.now() % 2 ** 31)
/** Every status the API documents; anything else (a 5xx above all) fails. */
const DOCUMENTED = new Set([200, 202, 400, 404, 409, 413, 414, 415, 422, 429])
/** Pages for people and tools (dashboard, docs, metrics): answered in their own formats, not the API's JSON. */
const NOT_JSON = /^\/(?:$|\?|dashboard\/|docs(?:$|[/?])|metrics(?:$|\?))/
const MAX_PAYLOAD = 64 * 1024

interface FuzzRequest { method: string, path: string, contentType: string | undefined, body: string | undefined }

const PROTO_BODIES = [
  '{"__proto__": {"polluted": true}}',
  '{"type": "echo", "__proto__": {"polluted": true}}',
  '{"type": "echo", "payload": {"__proto__": {"polluted": true}}}',
  '{"type": "echo", "payload": {"constructor": {"prototype": {"polluted": true}}}}',
  '{"tasks": [{"type": "echo", "payload": {"a": {"__proto__": {"polluted": true}}}}]}',
  '{"constructor": {"prototype": {"polluted": true}}, "type": "echo"}'
]

const weird: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.integer({ min: -(2 ** 53), max: 2 ** 53 }) },
  { weight: 3, arbitrary: fc.constantFrom(-1, -0, 0.5, 1e308, -1e308, 2 ** 31, -(2 ** 31), Number.MAX_SAFE_INTEGER + 2, null, true, '', '0', '-1', 'NaN') },
  { weight: 1, arbitrary: fc.constantFrom(70_000, 300_000).map(n => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 1_000 }).map(depth => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown) }
)

const taskType = fc.oneof(fc.constant('echo'), fc.constantFrom('resize', 'sleep ', 'ECHO', '', 'x'.repeat(65), '../../etc/passwd', '__proto__', 'constructor'), fc.string({ unit: 'grapheme', maxLength: 70 }))

const submitBody: fc.Arbitrary<Record<string, unknown>> = fc.record({
  type: fc.oneof(taskType, weird),
  payload: weird,
  priority: fc.oneof(fc.integer({ min: -2000, max: 2000 }), weird),
  timeoutMs: fc.oneof(fc.integer({ min: -10, max: 100_000_000 }), weird),
  maxAttempts: fc.oneof(fc.integer({ min: -5, max: 200 }), weird),
  idempotencyKey: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 300 }), weird),
  extra: weird
}, { requiredKeys: [] }).map(o => {
  const { extra, ...rest } = o
  return extra === undefined ? rest : { ...rest, [typeof extra === 'string' && extra.length < 20 ? extra : 'unknownField']: extra }
})

const rawBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: taskType, payload: fc.jsonValue({ maxDepth: 4 }) }).map(b => JSON.stringify(b)) },
  { weight: 6, arbitrary: submitBody.map(b => JSON.stringify(b)) },
  { weight: 3, arbitrary: fc.array(submitBody, { maxLength: 8 }).map(tasks => JSON.stringify({ tasks })) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTO_BODIES) },
  { weight: 1, arbitrary: submitBody.map(b => JSON.stringify(b)).chain(s => fc.nat({ max: Math.max(0, s.length - 1) }).map(n => s.slice(0, n))) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 90, max: 30_000 }).map(d => '{"type": "echo", "payload": ' + '['.repeat(d) + ']'.repeat(d) + '}') },
  { weight: 1, arbitrary: fc.integer({ min: 90, max: 30_000 }).map(d => '{"a":'.repeat(d) + '1' + '}'.repeat(d)) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_PAYLOAD + 1_000, MAX_PAYLOAD + 1_000, 3 * 1024 * 1024).map(n => JSON.stringify({ type: 'echo', payload: 'y'.repeat(n) })) },
  { weight: 1, arbitrary: fc.jsonValue().map(v => JSON.stringify(v)) }
)

const id = fc.oneof(fc.uuid(), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }), fc.constantFrom('__proto__', 'constructor', '..', '%00', 'x'.repeat(300)))
const query = fc.oneof(
  fc.constant(''),
  fc.oneof(fc.nat({ max: 50 }), fc.integer({ min: -100, max: -1 }), fc.string({ maxLength: 12 }), fc.constantFrom(999_999_999, 10 ** 12, 1.5)).map(w => `?wait=${encodeURIComponent(String(w))}`),
  fc.tuple(fc.string({ maxLength: 10 }), fc.oneof(fc.nat(), fc.string({ maxLength: 10 }))).map(([s, l]) => `?status=${encodeURIComponent(s)}&limit=${encodeURIComponent(String(l))}`),
  fc.constantFrom('?__proto__[polluted]=1', '?constructor[prototype][polluted]=1', '?wait=1&wait=2', '?limit=-1', '?limit=99999999999', '?status=succeeded&limit=5')
)

const request: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ path: fc.constantFrom('/v1/tasks', '/v1/tasks/batch'), q: query, body: rawBody, ct: fc.constantFrom<string | undefined>('application/json', 'application/json; charset=utf-8', 'application/json', 'text/plain', undefined, 'application/x-www-form-urlencoded', 'application/json; charset=latin1') })
    .map(r => ({ method: 'POST', path: r.path + (r.q.startsWith('?wait') ? r.q : ''), contentType: r.ct, body: r.body })) },
  { weight: 2, arbitrary: fc.tuple(id, query).map(([i, q]) => ({ method: 'GET', path: `/v1/tasks/${encodeURIComponent(i)}${q}`, contentType: undefined, body: undefined })) },
  { weight: 1, arbitrary: id.map(i => ({ method: 'DELETE', path: `/v1/tasks/${encodeURIComponent(i)}`, contentType: undefined, body: undefined })) },
  { weight: 1, arbitrary: query.map(q => ({ method: 'GET', path: `/v1/tasks${q}`, contentType: undefined, body: undefined })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'POST'), fc.oneof(fc.constantFrom('/v1/cluster', '/healthz', '/v1', '/v1/tasks/', '//v1/tasks', '/v1/tasks/a/b'), fc.webPath()), fc.option(rawBody, { nil: undefined }))
    .map(([method, path, body]) => ({ method, path: path.startsWith('/') ? path : `/${path}`, contentType: body === undefined ? undefined : 'application/json', body: method === 'GET' ? undefined : body })) }
)

function rssBytes (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) * 1024
}

describe('HTTP API fuzzing', () => {
  const set = new NodeSet()
  afterEach(async () => { await set.stopAll() })

  it(`answers ${REQUESTS} random and malformed requests with documented statuses, keeps serving, and changes nothing it refused`, async () => {
    const node = await set.start({ name: 'fuzzed', args: ['--capacity', '2'], env: { TASKMESH_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD) } })
    await waitFor(async () => (await node.cluster()).leader !== null, 10_000, 'the node to lead')
    const send = async (r: FuzzRequest): Promise<{ status: number, text: string, type?: string }> => {
      try {
        const res = await fetch(node.url + r.path, {
          method: r.method,
          headers: r.contentType === undefined ? {} : { 'content-type': r.contentType },
          body: r.body,
          signal: AbortSignal.timeout(30_000)
        })
        return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? undefined }
      } catch (err) {
        // A body over the limit is answered 413 and the connection closed at once: a client still
        // writing it may see the reset instead of the answer. Anything else is a failure.
        if (Buffer.byteLength(r.body ?? '') > MAX_PAYLOAD + 64 * 1024) return { status: 413, text: '{"error": {"code": "BODY_TOO_LARGE", "message": "connection closed while sending"}}' }
        throw err
      }
    }
    const valid = async (n: number): Promise<string> => {
      const r = await send({ method: 'POST', path: '/v1/tasks?wait=10000', contentType: 'application/json', body: JSON.stringify({ type: 'echo', payload: { valid: n } }) })
      expect(r.status, r.text).toBe(200)
      const t = JSON.parse(r.text) as { id: string, status: string, result: unknown }
      expect(t).toMatchObject({ status: 'succeeded', result: { valid: n } })
      return t.id
    }
    const accepted = new Set<string>([await valid(-1)])
    const membersBefore = (await node.cluster()).members.map(m => ({ id: m.id, name: m.name }))
    const statuses = new Map<number, number>()
    let sent = 0
    let rssStart = 0
    const started = Date.now()
    console.log(`HTTP fuzz seed ${SEED} (replay: TASKMESH_FUZZ_SEED=${SEED})`)
    await fc.assert(fc.asyncProperty(fc.array(request, { minLength: PER_RUN, maxLength: PER_RUN }), async batch => {
      const answers = await Promise.all(batch.map(send))
      answers.forEach((a, i) => {
        const r = batch[i]!
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1)
        const what = `${r.method} ${r.path.slice(0, 200)} ${String(r.contentType)} ${String(r.body?.slice(0, 300))} -> ${a.status} ${a.text.slice(0, 300)}`
        expect(DOCUMENTED.has(a.status), what).toBe(true)
        if (a.status < 400 && a.type?.startsWith('application/json') !== true) {
          // As the server saw it: the client resolves dot segments ("/." is "/").
          const url = new URL(r.path, 'http://node')
          expect(NOT_JSON.test(url.pathname + url.search), what).toBe(true)
          return
        }
        const body = JSON.parse(a.text) as { error?: { code: unknown, message: unknown }, id?: string, ids?: string[] }
        if (a.status >= 400) {
          expect(typeof body.error?.code, what).toBe('string')
          expect(typeof body.error?.message, what).toBe('string')
        }
        if (r.method === 'POST' && (a.status === 202 || a.status === 200)) {
          if (body.id !== undefined) accepted.add(body.id)
          for (const x of body.ids ?? []) accepted.add(x)
        }
      })
      sent += batch.length
      if (rssStart === 0 && sent >= 1_000) rssStart = rssBytes(node.proc.pid!)
      if (sent % 2_000 === 0) accepted.add(await valid(sent))
    }), { numRuns: Math.ceil(REQUESTS / PER_RUN), seed: SEED, endOnFailure: true })
    const rssEnd = rssBytes(node.proc.pid!)
    const growthMb = (rssEnd - rssStart) / 2 ** 20
    console.log(`HTTP fuzz: ${sent} requests in ${((Date.now() - started) / 1000).toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; node RSS ${(rssStart / 2 ** 20).toFixed(0)} MB after the first 1,000 -> ${(rssEnd / 2 ** 20).toFixed(0)} MB at the end (growth ${growthMb.toFixed(1)} MB)`)
    expect(sent).toBe(Math.ceil(REQUESTS / PER_RUN) * PER_RUN)
    expect(growthMb).toBeLessThan(150)

    // Still serving, the same member, and only accepted submits became tasks.
    expect(node.proc.exitCode).toBeNull()
    accepted.add(await valid(REQUESTS))
    expect((await node.cluster()).members.map(m => ({ id: m.id, name: m.name }))).toEqual(membersBefore)
    const listed = await send({ method: 'GET', path: '/v1/tasks?limit=1000', contentType: undefined, body: undefined })
    const ids = (JSON.parse(listed.text) as { tasks: Array<{ id: string }> }).tasks.map(t => t.id)
    expect(ids.length).toBe(Math.min(1000, accepted.size))
    for (const x of ids) expect(accepted.has(x), `task ${x} was never accepted`).toBe(true)
  })
})
