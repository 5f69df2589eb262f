import { describe, expect, it } from 'vitest'
import { Ajv } from 'ajv'
import * as shapes from '../../src/http/schemas.ts'
import * as scheduleShapes from '../../src/http/schedule-schemas.ts'

/** The nodes' Ajv skips checking schemas against the meta-schema (src/http/server.ts): this test does it instead. */
describe('the HTTP API shapes', () => {
  it('are valid JSON Schema (the draft the route validators use)', () => {
    const ajv = new Ajv({ strict: false })
    const all: Array<[string, unknown]> = [...Object.entries(shapes), ...Object.entries(scheduleShapes), ['bulkWaitBody(1000)', shapes.bulkWaitBody(1000)]]
    const schemas = all.filter(([, s]) => typeof s === 'object' && s !== null)
    expect(schemas.length).toBeGreaterThan(20)
    for (const [name, schema] of schemas) {
      const ok = ajv.validateSchema(schema as object)
      expect({ name, ok, errors: ajv.errors ?? null }).toEqual({ name, ok: true, errors: null })
    }
  })

  it('serialize a task as before: status as a string, nullable fields as null or their value', async () => {
    const { SerializerSelector } = (await import('@fastify/fast-json-stringify-compiler')).default
    const serialize = SerializerSelector()({}, {})({ schema: shapes.BulkWaitReply, method: 'POST', url: '/v1/tasks/wait', httpStatus: '200' }) as (v: unknown) => string
    const task = { id: 't', type: 'echo', status: 'failed', attempts: 2, worker: null, progress: null, result: null, error: 'boom', createdAt: 1, startedAt: null, finishedAt: 3, copies: 2, payload: 'never shown' }
    const { payload: _, ...shown } = task
    expect(JSON.parse(serialize({ tasks: [task], pending: [], missing: [] }))).toEqual({ tasks: [shown], pending: [], missing: [] })
    // A value of no listed type is refused, as the anyOf of a type and null refused it.
    expect(() => serialize({ tasks: [{ ...task, worker: 7 }], pending: [], missing: [] })).toThrow(/worker/)
  })
})
