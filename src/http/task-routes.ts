/** The task API: submit (single and batch), read (with long-poll), wait for many, cancel, list, purge. */
import { trace } from '../trace.ts'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { copiesOf, isTerminal } from '../core/tasks.ts'
import type { TaskRecord, TaskStatus } from '../core/tasks.ts'
import type { TaskRuntime } from '../runtime/task-runtime.ts'
import { InvalidRequestError, TooManyWaitersError } from '../errors.ts'
import type { PageKey } from '../core/listing.ts'
import { BatchItemBody, BatchReply, BatchWaitedReply, BulkWaitReply, CancelReply, ErrorReply, PurgeReply, RetryBody, RetryReply, SubmitBody, SubmittedReply, TaskListReply, TaskReply, TaskStatusSchema as Status, bulkWaitBody } from './schemas.ts'
import { MAX_ID_LENGTH, MAX_LIST_PAGE, MAX_TYPE_LENGTH } from '../protocol/constants.ts'

function batchBody (maxTasks: number) {
  return Type.Object({
    tasks: Type.Array(BatchItemBody, { minItems: 1, maxItems: maxTasks })
  }, { additionalProperties: false })
}

/**
 * The batch's 202, its two shapes as one object (as a union, the serializer would run an Ajv check of
 * every answer against the shapes, compiled on a node's first batch): without `?wait=`, `ids`, `copies`
 * and `refs` (BatchReply); with a wait that expired, `ids`, `tasks` and `pending` (BatchWaitedReply).
 */
const BatchAccepted = Type.Object({
  ids: BatchReply.properties.ids,
  copies: Type.Optional(BatchReply.properties.copies),
  refs: BatchReply.properties.refs,
  tasks: Type.Optional(BatchWaitedReply.properties.tasks),
  pending: Type.Optional(BatchWaitedReply.properties.pending)
}, { description: 'without ?wait=: ids, copies and refs (the tasks accepted); with ?wait= that expired: ids, tasks (those that ended) and pending' })

const Digits = Type.String({ pattern: '^[0-9]{1,9}$' })
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }) })
const errors = { '4xx': ErrorReply, '5xx': ErrorReply }

/** Room in a request body for the JSON around a payload of maxPayloadBytes (type, options, escaping). */
export const BODY_SLACK_BYTES = 64 * 1024
/** Tasks `GET /v1/tasks` lists without `limit`, and the most it lists with one. */
const LIST_DEFAULT = 100

/** A listing cursor is the last record's key, as base64url JSON: opaque to clients, checked when it comes back. */
function encodeCursor (k: PageKey): string {
  return Buffer.from(JSON.stringify([k.createdAt, k.id])).toString('base64url')
}

function decodeCursor (text: string): PageKey {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[]
    if (typeof createdAt === 'number' && Number.isSafeInteger(createdAt) && createdAt >= 0 && typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) return { createdAt, id }
  } catch {}
  throw new InvalidRequestError('cursor is not one this API gave out')
}

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
  return {
    id: r.id, type: r.type, status: r.status, attempts: r.attempts, worker: r.worker, progress: r.progress, result: r.result, error: r.error, createdAt: r.createdAt, startedAt: r.startedAt, finishedAt: r.finishedAt,
    maxAttempts: r.maxAttempts, ...(r.runAt === undefined ? {} : { runAt: r.runAt }), ...(r.retries === undefined ? {} : { retries: r.retries }), ...(r.require === undefined ? {} : { require: r.require }),
    ...(r.callback === undefined ? {} : { callback: { url: r.callback.url } }), copies: copiesOf(r),
    ...(r.dependsOn === undefined ? {} : { dependsOn: r.dependsOn }), ...(r.parents === undefined ? {} : { parents: r.parents }),
    ...(r.schedule === undefined ? {} : { schedule: r.schedule })
  }
}

/** The routes that may wait (a label of the long-poll counter). */
export type LongPollRoute = 'task' | 'submit' | 'batch' | 'wait'

/**
 * `runtime` returns the task runtime, or throws while the node is starting.
 * Returns the number of long-polls waiting now, and those begun so far by route (metrics).
 */
export function registerTaskRoutes (app: FastifyInstance, runtime: () => TaskRuntime, limits: TaskRouteLimits): { longPolls: () => number, longPollsBegun: () => Record<LongPollRoute, number> } {
  // Long-polls in progress: each holds a socket and a waiter until it ends (a bulk wait is one, however many ids it names).
  let waiting = 0
  const begun: Record<LongPollRoute, number> = { task: 0, submit: 0, batch: 0, wait: 0 }
  /** Runs a request that waits `waitMs` as one of at most maxLongPolls; refuses (changing nothing) beyond. */
  async function asWaiter<T> (route: LongPollRoute, waitMs: number, handle: () => Promise<T>): Promise<T> {
    if (waitMs <= 0) return await handle()
    if (waiting >= limits.maxLongPolls) throw new TooManyWaitersError(limits.maxLongPolls)
    begun[route]++
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
    trace('http.recv')
    const wait = Math.min(Number((req.query as { wait?: string }).wait ?? 0), limits.maxWaitMs)
    return await asWaiter('submit', wait, async () => {
      const { ids: [id], copies } = await runtime().accept([req.body as never])
      trace('http.accepted', id)
      // `scheduled` for a delayed task (the origin holds a copy of every task it accepted).
      if (wait <= 0) return await reply.code(202).send({ id, status: runtime().acceptedStatus(id!), copies })
      // Submit and wait in one request: 200 with the record once it ended, 202 with it if it has not yet.
      const rec = await runtime().get(id!, wait)
      trace('http.got', id)
      const sent = await reply.code(isTerminal(rec.status) ? 200 : 202).send(view(rec))
      trace('http.sent', id)
      return sent
    })
  })

  app.post('/v1/tasks/batch', {
    bodyLimit: limits.maxBatchBodyBytes,
    schema: {
      body: batchBody(limits.maxBatchTasks),
      querystring: Type.Object({ wait: Type.Optional(Digits) }, { additionalProperties: false }),
      response: { 200: BatchWaitedReply, 202: BatchAccepted, ...errors }
    }
  }, async (req, reply) => {
    const wait = Math.min(Number((req.query as { wait?: string }).wait ?? 0), limits.maxWaitMs)
    return await asWaiter('batch', wait, async () => {
      const tasks = (req.body as { tasks: Array<{ ref?: string }> }).tasks
      const { ids, copies } = await runtime().accept(tasks as never[])
      const refs = Object.fromEntries(tasks.flatMap((t, i) => t.ref === undefined ? [] : [[t.ref, ids[i]!]]))
      if (wait <= 0) return await reply.code(202).send({ ids, copies, ...(Object.keys(refs).length === 0 ? {} : { refs }) })
      // Submit and wait in one request: 200 once every task ended, 202 with those that did when the wait expired.
      const r = await runtime().waitAll(ids, wait)
      const pending = [...r.pending, ...r.missing]
      return await reply.code(pending.length === 0 ? 200 : 202).send({ ids, tasks: r.ended.map(view), pending })
    })
  })

  app.post('/v1/tasks/wait', {
    // maxBatchTasks ids, each escaped at worst to four bytes a character.
    bodyLimit: limits.maxBatchTasks * (4 * MAX_ID_LENGTH + 3) + BODY_SLACK_BYTES,
    schema: { body: bulkWaitBody(limits.maxBatchTasks), response: { 200: BulkWaitReply, ...errors } }
  }, async req => {
    const body = req.body as { ids: string[], waitMs?: number }
    const wait = Math.min(body.waitMs ?? 0, limits.maxWaitMs)
    // One long-poll however many ids it names.
    return await asWaiter('wait', wait, async () => {
      const r = await runtime().waitAny(body.ids, wait)
      return { tasks: r.ended.map(view), pending: r.pending, missing: r.missing }
    })
  })

  app.get('/v1/tasks/:id', {
    schema: { params: IdParams, querystring: Type.Object({ wait: Type.Optional(Digits) }, { additionalProperties: false }), response: { 200: TaskReply, ...errors } }
  }, async req => {
    const { id } = req.params as { id: string }
    const wait = Math.min(Number((req.query as { wait?: string }).wait ?? 0), limits.maxWaitMs)
    return await asWaiter('task', wait, async () => {
      const rec = await runtime().get(id, wait)
      const unplaceable = runtime().unplaceable(rec)
      const deliveries = isTerminal(rec.status) ? await runtime().deliveries(rec) : []
      return {
        ...view(rec),
        ...(unplaceable === undefined ? {} : { unplaceable }),
        ...(deliveries.length === 0 ? {} : { callbacks: deliveries.map(d => ({ deliveryId: d.id, url: d.url, source: d.source, event: d.event, state: d.state, attempts: d.attempts, ...(d.state === 'pending' ? { nextAttemptAt: d.nextAtMs } : {}), lastStatus: d.lastStatus, lastError: d.lastError, deliveredAt: d.deliveredAt })) })
      }
    })
  })

  app.delete('/v1/tasks/:id', {
    schema: { params: IdParams, response: { 202: CancelReply, ...errors } }
  }, async (req, reply) => {
    const { id } = req.params as { id: string }
    return await reply.code(202).send(await runtime().cancel(id))
  })

  app.post('/v1/tasks/:id/retry', {
    schema: {
      description: 'Retries a failed or cancelled task: the same id, queued again through the leader; its attempts continue (the next is attempts + 1). 409 TASK_NOT_RETRYABLE for any other status, 404 for an unknown id.',
      params: IdParams,
      body: RetryBody,
      response: { 202: RetryReply, ...errors }
    },
    // The body is optional: none is an empty one.
    preValidation: async req => { req.body ??= {} }
  }, async (req, reply) => {
    const { id } = req.params as { id: string }
    const body = (req.body ?? {}) as { maxAttempts?: number }
    return await reply.code(202).send(await runtime().retry(id, body.maxAttempts))
  })

  app.get('/v1/tasks', {
    schema: {
      querystring: Type.Object({
        status: Type.Optional(Status),
        type: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH })),
        limit: Type.Optional(Digits),
        scope: Type.Optional(Type.Union([Type.Literal('node'), Type.Literal('cluster')], { description: 'node (default): the tasks this node holds, most recently changed first; cluster: every task in the cluster, newest submit first, a page at a time' })),
        cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,512}$', description: 'scope=cluster: the cursor of the previous page' }))
      }, { additionalProperties: false }),
      response: { 200: TaskListReply, ...errors }
    }
  }, async req => {
    const q = req.query as { status?: TaskStatus, type?: string, limit?: string, scope?: 'node' | 'cluster', cursor?: string }
    const limit = Math.max(1, Math.min(Number(q.limit ?? LIST_DEFAULT), MAX_LIST_PAGE))
    if (q.scope !== 'cluster') {
      if (q.cursor !== undefined) throw new InvalidRequestError('cursor is for scope=cluster')
      const tasks = runtime().list({ status: q.status, limit: q.type === undefined ? limit : MAX_LIST_PAGE })
      return { tasks: tasks.filter(t => q.type === undefined || t.type === q.type).slice(0, limit).map(view) }
    }
    const page = await runtime().listCluster({ status: q.status, type: q.type, limit, ...(q.cursor === undefined ? {} : { before: decodeCursor(q.cursor) }) })
    return { tasks: page.tasks.map(view), cursor: page.next === null ? null : encodeCursor(page.next), ...(page.partial ? { partial: true } : {}) }
  })
  app.delete('/v1/tasks', {
    schema: {
      description: 'Purge: forgets the finished records (of `status`, when given) that ended before `before` (unix ms), on this node and every reachable member, in small steps. A purged id then answers 404 TASK_EXPIRED where a node still remembers it.',
      querystring: Type.Object({
        status: Type.Optional(Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')])),
        before: Type.String({ pattern: '^[0-9]{1,15}$', description: 'unix ms: records of tasks that ended before it are forgotten' })
      }, { additionalProperties: false }),
      response: { 200: PurgeReply, ...errors }
    }
  }, async req => {
    const q = req.query as { status?: 'succeeded' | 'failed' | 'cancelled', before: string }
    return await runtime().purge(q.status === undefined ? { before: Number(q.before) } : { status: q.status, before: Number(q.before) })
  })
  return { longPolls: () => waiting, longPollsBegun: () => ({ ...begun }) }
}
