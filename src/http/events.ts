/**
 * GET /v1/events: server-sent events of what this node sees happen.
 *
 * Kinds: `hello` (first, once: the cluster as it stands, the recent history
 * of throughput and queue depth, and the latest tasks held here), `member`
 * (joined, status changed, forgotten), `leader` (a new leader or none, with
 * its term), `task` (a record held here was created or changed: state,
 * attempts, worker, progress, error; never payload or result), and
 * `cluster` (every second: the member table and one history sample).
 *
 * Costs nothing when nobody listens: an event is encoded only while a client
 * is connected, once for all clients. Each client's backlog is the socket's
 * write buffer; a client whose backlog passes `maxBacklogBytes` is
 * disconnected (it can reconnect and start again from `hello`), so a slow
 * client never holds unbounded memory.
 */
import { Type } from '@sinclair/typebox'
import type { Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'
import type { ClusterSnapshot } from '../core/cluster-core.ts'
import { copiesOf, isTerminal } from '../core/tasks.ts'
import type { TaskRecord } from '../core/tasks.ts'
import type { CoreEvent } from '../core/types.ts'
import { TooManyStreamsError } from '../errors.ts'
import { ErrorReply } from './schemas.ts'
import { MAX_ID_LENGTH } from '../protocol/constants.ts'
import type { ClusterEventData, ClusterEventView, HelloEventData, LeaderEventData, MemberEventData, SampleData, TaskEventData } from './schemas.ts'

export const EVENT_KINDS = ['member', 'leader', 'task', 'cluster'] as const
export type EventKind = typeof EVENT_KINDS[number]

/** One second of this node's history (fields: src/http/schemas.ts). */
export type Sample = Static<typeof SampleData>

export interface EventFeedInit {
  maxStreams: number
  /** A client further behind than this is dropped. */
  maxBacklogBytes?: number
  /** Samples kept for `hello` (one a second). */
  historySeconds?: number
  now: () => number
  snapshot: () => ClusterSnapshot | undefined
  recentTasks: (limit: number) => TaskRecord[]
}

interface Client {
  res: ServerResponse
  kinds: Set<EventKind>
  /** Only these tasks' events; null: every task. */
  tasks: Set<string> | null
}

/** What a task event carries: the record without payload and result (with the result too when `withResult` and the task ended). */
export function taskEvent (r: TaskRecord, withResult = false): Static<typeof TaskEventData> {
  const e = { id: r.id, type: r.type, status: r.status, attempts: r.attempts, worker: r.worker, progress: r.progress, error: r.error, origin: r.origin, createdAt: r.createdAt, startedAt: r.startedAt, finishedAt: r.finishedAt, copies: copiesOf(r), ...(r.runAt === undefined ? {} : { runAt: r.runAt }), ...(r.retries === undefined ? {} : { retries: r.retries }) }
  return withResult && isTerminal(r.status) ? { ...e, result: r.result } : e
}

function clusterEvent (s: ClusterSnapshot): Static<typeof ClusterEventView> {
  return { self: s.self, leader: s.leader, term: s.term, members: s.members.map(m => ({ id: m.id, name: m.name, http: m.http, status: m.status, capacity: m.capacity, running: m.running, queued: m.queued, load: m.load, lastSeenMs: m.lastSeenMs, types: m.types, ...(m.labels === undefined ? {} : { labels: m.labels }) })) }
}

/** The sampler's period: one `cluster` event and one history point per tick. */
const SAMPLE_EVERY_MS = 1_000
/** A comment line on every stream this often, so proxies and clients do not time an idle stream out. */
const KEEP_ALIVE_MS = 15_000
/** The SSE `retry:` a client waits before reconnecting. */
const RECONNECT_AFTER_MS = 1_000
/** The most recent tasks sent in `hello`. */
const HELLO_TASKS = 100
/** The most task ids one `?task=` filter may name. */
const MAX_FILTER_TASKS = 100

const EventsQuery = Type.Object({
  kinds: Type.Optional(Type.String({ pattern: `^(${EVENT_KINDS.join('|')})(,(${EVENT_KINDS.join('|')}))*$`, description: 'comma list of event kinds to receive (default: all)' })),
  task: Type.Optional(Type.String({ pattern: `^[^,]{1,${MAX_ID_LENGTH}}(,[^,]{1,${MAX_ID_LENGTH}}){0,${MAX_FILTER_TASKS - 1}}$`, description: `comma list of up to ${MAX_FILTER_TASKS} task ids: task events of these tasks only` }))
}, { additionalProperties: false })

export class EventFeed {
  readonly #init: Required<Pick<EventFeedInit, 'maxBacklogBytes' | 'historySeconds'>> & EventFeedInit
  readonly #clients = new Set<Client>()
  readonly #history: Sample[] = []
  #seq = 0
  #ended = { succeeded: 0, failed: 0, cancelled: 0 }
  #timer: NodeJS.Timeout | undefined
  #keepAlive: NodeJS.Timeout | undefined

  constructor (init: EventFeedInit) {
    this.#init = { maxBacklogBytes: 4 * 1024 * 1024, historySeconds: 600, ...init }
  }

  get streams (): number { return this.#clients.size }

  /** Starts the one-second sampler (history for the dashboard's charts, and `cluster` events). */
  start (): void {
    this.#timer = setInterval(() => { this.#sample() }, SAMPLE_EVERY_MS)
    this.#keepAlive = setInterval(() => { this.#write(': keep-alive\n\n', null, null) }, KEEP_ALIVE_MS)
    this.#timer.unref()
    this.#keepAlive.unref()
  }

  /** Ends every stream (before the HTTP server closes). */
  stop (): void {
    clearInterval(this.#timer)
    clearInterval(this.#keepAlive)
    for (const c of this.#clients) c.res.end()
    this.#clients.clear()
  }

  onCoreEvent (e: CoreEvent): void {
    if (this.#clients.size === 0) return
    switch (e.type) {
      case 'member-joined': this.#publish('member', { change: 'joined', id: e.id, name: e.name, status: 'alive' } satisfies Static<typeof MemberEventData>); break
      case 'member-status': this.#publish('member', { change: 'status', id: e.id, name: e.name, from: e.from, status: e.to, reason: e.reason } satisfies Static<typeof MemberEventData>); break
      case 'member-removed': this.#publish('member', { change: 'removed', id: e.id, name: e.name } satisfies Static<typeof MemberEventData>); break
      case 'leader-changed': this.#publish('leader', { leader: e.leader, previous: e.previous, term: e.leader?.term ?? null } satisfies Static<typeof LeaderEventData>); break
      default: break
    }
  }

  onTasks (records: readonly TaskRecord[]): void {
    for (const r of records) {
      if (isTerminal(r.status)) this.#ended[r.status]++
    }
    if (this.#clients.size === 0) return
    for (const r of records) {
      // A stream that named this task (?task=) gets its result with the ending; the others never do.
      const named = isTerminal(r.status) && [...this.#clients].some(c => c.tasks?.has(r.id) === true)
      if (!named) { this.#publish('task', taskEvent(r), r.id); continue }
      const seq = ++this.#seq
      const plain = `id: ${seq}\nevent: task\ndata: ${JSON.stringify(taskEvent(r))}\n\n`
      const full = `id: ${seq}\nevent: task\ndata: ${JSON.stringify(taskEvent(r, true))}\n\n`
      for (const c of this.#clients) {
        if (!c.kinds.has('task') || (c.tasks !== null && !c.tasks.has(r.id))) continue
        this.#send(c, c.tasks === null ? plain : full)
      }
    }
  }

  register (app: FastifyInstance): void {
    app.get('/v1/events', {
      schema: {
        summary: 'Server-sent events: membership, leader and task changes (text/event-stream)',
        description: 'Event kinds: hello (first: cluster, history, recent tasks), member, leader, task, cluster (every second). `kinds` selects kinds; `task` keeps only these tasks\' events, and their endings then carry the result. Task events come from the nodes holding the task. 503 TOO_MANY_STREAMS beyond maxEventStreams.',
        querystring: EventsQuery,
        response: { 200: { description: 'a text/event-stream that stays open', type: 'string' }, '4xx': ErrorReply, '5xx': ErrorReply }
      }
    }, (req, reply) => {
      if (this.#clients.size >= this.#init.maxStreams) throw new TooManyStreamsError(this.#init.maxStreams)
      const q = req.query as { kinds?: string, task?: string }
      const client: Client = {
        res: reply.raw,
        kinds: new Set(q.kinds === undefined ? EVENT_KINDS : q.kinds.split(',') as EventKind[]),
        tasks: q.task === undefined ? null : new Set(q.task.split(','))
      }
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' })
      reply.raw.socket?.setNoDelay(true)
      this.#clients.add(client)
      const drop = (): void => { this.#clients.delete(client) }
      reply.raw.on('close', drop)
      reply.raw.on('error', drop)
      const s = this.#init.snapshot()
      const recent = this.#init.recentTasks(HELLO_TASKS).filter(r => client.tasks === null || client.tasks.has(r.id)).map(r => taskEvent(r, client.tasks !== null))
      this.#send(client, `retry: ${RECONNECT_AFTER_MS}\nid: ${++this.#seq}\nevent: hello\ndata: ${JSON.stringify({ cluster: s === undefined ? null : clusterEvent(s), history: this.#history, tasks: recent } satisfies Static<typeof HelloEventData>)}\n\n`)
    })
  }

  #sample (): void {
    const s = this.#init.snapshot()
    let running = 0
    let queued = 0
    for (const m of s?.members ?? []) {
      if (m.status === 'dead') continue
      running += m.running
      if (m.id === s?.leader?.id) queued = m.queued
    }
    const sample: Sample = { t: this.#init.now(), ...this.#ended, running, queued }
    this.#ended = { succeeded: 0, failed: 0, cancelled: 0 }
    this.#history.push(sample)
    if (this.#history.length > this.#init.historySeconds) this.#history.shift()
    if (this.#clients.size > 0 && s !== undefined) this.#publish('cluster', { ...clusterEvent(s), sample } satisfies Static<typeof ClusterEventData>)
  }

  #publish (kind: EventKind, data: unknown, taskId: string | null = null): void {
    this.#write(`id: ${++this.#seq}\nevent: ${kind}\ndata: ${JSON.stringify(data)}\n\n`, kind, taskId)
  }

  #write (chunk: string, kind: EventKind | null, taskId: string | null): void {
    for (const c of this.#clients) {
      if (kind !== null && !c.kinds.has(kind)) continue
      if (taskId !== null && c.tasks !== null && !c.tasks.has(taskId)) continue
      this.#send(c, chunk)
    }
  }

  #send (c: Client, chunk: string): void {
    if (c.res.writableLength > this.#init.maxBacklogBytes) {
      // Too far behind: drop it rather than buffer without end.
      this.#clients.delete(c)
      c.res.destroy()
      return
    }
    c.res.write(chunk)
  }
}
