/** The task API: submit (single and batch), read (with long-poll), cancel, list. */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { isTerminal } from '../core/tasks.ts'
import type { TaskRecord, TaskStatus } from '../core/tasks.ts'
import type { TaskRuntime } from '../runtime/task-runtime.ts'
import { TooManyWaitersError } from '../errors.ts'
import { BatchReply, CancelReply, ErrorReply, SubmitBody, SubmittedReply, TaskListReply, TaskReply, TaskStatusSchema as Status } from './schemas.ts'
import { MAX_ID_LENGTH } from '../protocol/constants.ts'

function batchBody (maxTasks: number) {
  return Type.Object({
    tasks: Type.Array(SubmitBody, { minItems: 1, maxItems: maxTasks })
  }, { additionalProperties: false })
}

const Digits = Type.String({ pattern: '^[0-9]{1,9}$' })
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }) })
const errors = { '4xx': ErrorReply, '5xx': ErrorReply }

/** Room in a request body for the JSON around a payload of maxPayloadBytes (type, options, escaping). */
export const BODY_SLACK_BYTES = 64 * 1024
/** Tasks `GET /v1/tasks` lists without `limit`, and the most it lists with one. */
const LIST_DEFAULT = 100
const LIST_MAX = 1000

export interface TaskRouteLimits {
  maxPayloadBytes: number
  maxBatchBodyBytes: number
  /** Longest `?wait=` honoured. */
  maxWaitMs: number
  /** Most tasks in one batch. */
  maxBatchTasks: number
  /** Most requests waiting (`?wait=`) at once; more get 429. */
  maxLongPolls: number
}

function view (r: TaskRecord): Record<string, unknown> {
  return { id: r.id, type: r.type, status: r.status, attempts: r.attempts, worker: r.worker, progress: r.progress, result: r.result, error: r.error, createdAt: r.createdAt, startedAt: r.startedAt, finishedAt: r.finishedAt }
}

/** `runtime` returns the task runtime, or throws while the node is starting. */
/** Returns the number of long-polls waiting now (a metric). */
export function registerTaskRoutes (app: FastifyInstance, runtime: () => TaskRuntime, limits: TaskRouteLimits): { longPolls: () => number } {
  const slack = 64 * 1024
  // Long-polls in progress: each holds a socket and a waiter until it ends.
  let waiting = 0
  /** Runs a request that waits `waitMs` as one of at most maxLongPolls; refuses (changing nothing) beyond. */
  async function asWaiter<T> (waitMs: number, handle: () => Promise<T>): Promise<T> {
    if (waitMs <= 0) return await handle()
    if (waiting >= limits.maxLongPolls) throw new TooManyWaitersError(limits.maxLongPolls)
    waiting++
    try { return await handle() } finally { waiting-- }
  }

  app.post('/v1/tasks', {
    bodyLimit: limits.maxPayloadBytes + BODY_SLACK_BYTES,
    schema: {
      body: SubmitBody,
      querystring: Type.Object({ wait: Type.Optional(Digits) }, { additionalProperties: false }),
      response: { 200: TaskReply, 202: Type.Union([TaskReply, SubmittedReply]), ...errors }
    }
  }, async (req, reply) => {
    const wait = Math.min(Number((req.query as { wait?: string }).wait ?? 0), limits.maxWaitMs)
    return await asWaiter(wait, async () => {
      const [id] = await runtime().submit([req.body as never])
      if (wait <= 0) return await reply.code(202).send({ id, status: 'queued' })
      // Submit and wait in one request: 200 with the record once it ended, 202 with it if it has not yet.
      const rec = await runtime().get(id!, wait)
      return await reply.code(isTerminal(rec.status) ? 200 : 202).send(view(rec))
    })
  })

  app.post('/v1/tasks/batch', {
    bodyLimit: limits.maxBatchBodyBytes,
    schema: { body: batchBody(limits.maxBatchTasks), response: { 202: BatchReply, ...errors } }
  }, async (req, reply) => {
    const ids = await runtime().submit((req.body as { tasks: never[] }).tasks)
    return await reply.code(202).send({ ids })
  })

  app.get('/v1/tasks/:id', {
    schema: { params: IdParams, querystring: Type.Object({ wait: Type.Optional(Digits) }, { additionalProperties: false }), response: { 200: TaskReply, ...errors } }
  }, async req => {
    const { id } = req.params as { id: string }
    const wait = Math.min(Number((req.query as { wait?: string }).wait ?? 0), limits.maxWaitMs)
    return await asWaiter(wait, async () => view(await runtime().get(id, wait)))
  })

  app.delete('/v1/tasks/:id', {
    schema: { params: IdParams, response: { 202: CancelReply, ...errors } }
  }, async (req, reply) => {
    const { id } = req.params as { id: string }
    return await reply.code(202).send(await runtime().cancel(id))
  })

  app.get('/v1/tasks', {
    schema: {
      querystring: Type.Object({ status: Type.Optional(Status), limit: Type.Optional(Digits) }, { additionalProperties: false }),
      response: { 200: TaskListReply, ...errors }
    }
  }, async req => {
    const q = req.query as { status?: TaskStatus, limit?: string }
    const limit = Math.max(1, Math.min(Number(q.limit ?? LIST_DEFAULT), LIST_MAX))
    return { tasks: runtime().list({ status: q.status, limit }).map(view) }
  })
  return { longPolls: () => waiting }
}
