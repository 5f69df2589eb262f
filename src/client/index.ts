/**
 * The taskmesh client library: `import { TaskmeshClient } from 'taskmesh/client'`.
 *
 *   const client = new TaskmeshClient({ nodes: ['http://127.0.0.1:7421', 'http://127.0.0.1:7422'] })
 *   const { id } = await client.submit({ type: 'echo', payload: { hello: 'world' } })
 *   const task = await client.wait(id)                  // long-polls until it ends
 *   const done = await client.submitAndWait({ type: 'echo', payload: 1 })  // both in one request
 *   const ids = await client.submitMany(tasks)          // batches of 1,000
 *   const done = await client.waitMany(ids)             // one bulk wait per 1,000 ids per round
 *   for await (const e of client.events({ kinds: ['leader'] })) console.log(e.data.leader?.name)
 *
 * Every node serves the whole API, so the client talks to one node and moves
 * to another it knows of (those given, then the members it learns from
 * `cluster()` and the event feed) when that one cannot be reached. A request
 * that reached a node and may have been acted on is not sent again elsewhere
 * (a submit is re-sent only when the connection was refused, or when it
 * carries an idempotencyKey). Answers other than 2xx throw TaskmeshApiError.
 * The types come from the server's own schemas (src/http/schemas.ts).
 * The taskmesh CLI uses this client for everything it asks a node.
 */
import { TaskmeshApiError, answerError, openEventStream } from './sse.ts'
import { httpText } from './http-request.ts'
import type { HttpAnswer, RequestFailedError } from './http-request.ts'
import { isTerminalStatus } from './types.ts'
import { PartialSubmitError } from './options.ts'
import type { EventsOptions, SubmitManyOptions, TaskmeshClientOptions, WaitManyOptions, WaitOptions } from './options.ts'
import type { BatchSubmitted, BatchWaited, BulkWaited, Cancelled, Retried, Schedule, ScheduleChanged, ScheduleDeleted, ScheduleSpec, TypeRow, TypeLimitSet, Cluster, Draining, EventKind, Health, Submitted, Task, TaskStatus, TaskSubmission, BatchTaskSubmission, TaskmeshEvent } from './types.ts'

export { TaskmeshApiError } from './sse.ts'
export { isTerminalStatus } from './types.ts'
export type * from './types.ts'

export type { EventsOptions, SubmitManyOptions, TaskmeshClientOptions, WaitManyOptions, WaitOptions } from './options.ts'
export { PartialSubmitError } from './options.ts'

/** Longest single long-poll; the server caps `?wait=` at its maxWaitMs too. */
const LONG_POLL_MS = 30_000
/** Least time between the starts of two rounds of one waitMany group (see WaitManyOptions.roundMs). */
const ROUND_MS = 50
/** Tasks per POST /v1/tasks/batch (the server's default maxBatchTasks). */
const BATCH = 1000

/** `none`: only the current node (a request about that node itself). */
type Failover = 'reads' | 'refused' | 'none'

export class TaskmeshClient {
  #nodes: string[]
  readonly #token: string | undefined
  readonly #timeoutMs: number

  constructor (options: TaskmeshClientOptions = {}) {
    const given = options.nodes === undefined ? ['http://127.0.0.1:7420'] : typeof options.nodes === 'string' ? [options.nodes] : options.nodes
    if (given.length === 0) throw new TypeError('TaskmeshClient: give at least one node URL')
    this.#nodes = [...new Set(given.map(u => u.replace(/\/+$/, '')))]
    this.#token = options.token === '' ? undefined : options.token
    this.#timeoutMs = options.timeoutMs ?? 30_000
  }

  /** The node requests go to now (the first that answered). */
  get node (): string { return this.#nodes[0]! }

  /** Every node URL the client knows of, the current one first. */
  get nodes (): readonly string[] { return this.#nodes }

  /** Submits one task; resolves once a node accepted it (it is then held by two members, see the guarantees). */
  async submit (task: TaskSubmission): Promise<Submitted> {
    return await this.#request<Submitted>('POST', '/v1/tasks', task, { failover: submitFailover([task]) })
  }

  /**
   * Submits one task and waits for it to end: one request (POST
   * /v1/tasks?wait=) while it ends within 30 s, then long-polls as wait()
   * does. Resolves with its record once it ended, or as it stands after
   * `timeoutMs` (default 10 minutes). Re-sent to another node only as
   * submit() is (a refused connection, or an idempotencyKey).
   */
  async submitAndWait (task: TaskSubmission, options: WaitOptions = {}): Promise<Task> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000)
    // At least 1 ms: without ?wait= the node answers with the submit's short answer, not the record.
    const waitMs = Math.max(1, Math.min(deadline - Date.now(), LONG_POLL_MS))
    const first = await this.#request<Task>('POST', `/v1/tasks?wait=${waitMs}`, task, { failover: submitFailover([task]), timeoutMs: this.#timeoutMs + waitMs })
    if (isTerminalStatus(first.status) || Date.now() >= deadline) return first
    return await this.wait(first.id, { timeoutMs: deadline - Date.now() })
  }

  /**
   * Submits many tasks in batches of 1,000; resolves with their ids in order.
   * `onBatch` sees the ids accepted so far. With `{ wait }` it also waits for
   * them to end and resolves with their records in order: up to 1,000 tasks
   * go in one request that also waits (POST /v1/tasks/batch?wait=), more are
   * waited for with waitMany. A `ref` names a task for the dependsOn of the
   * others in its batch of 1,000 only.
   */
  async submitMany (tasks: BatchTaskSubmission[], options?: ((accepted: readonly string[]) => void) | (SubmitManyOptions & { wait?: undefined })): Promise<string[]>
  async submitMany (tasks: BatchTaskSubmission[], options: SubmitManyOptions & { wait: true | WaitManyOptions }): Promise<Task[]>
  async submitMany (tasks: BatchTaskSubmission[], options: ((accepted: readonly string[]) => void) | SubmitManyOptions = {}): Promise<string[] | Task[]> {
    const opts: SubmitManyOptions = typeof options === 'function' ? { onBatch: options } : options
    const wait: WaitManyOptions | undefined = opts.wait === true ? {} : opts.wait
    const deadline = Date.now() + (wait?.timeoutMs ?? 600_000)
    const ids: string[] = []
    const ended = new Map<string, Task>()
    for (let i = 0; i < tasks.length; i += BATCH) {
      const chunk = tasks.slice(i, i + BATCH)
      // One batch and a wait: submit and wait in the same request.
      const waitMs = wait !== undefined && tasks.length <= BATCH ? Math.max(0, Math.min(deadline - Date.now(), LONG_POLL_MS)) : 0
      try {
        const r = await this.#request<BatchWaited | BatchSubmitted>('POST', `/v1/tasks/batch${waitMs > 0 ? `?wait=${waitMs}` : ''}`, { tasks: chunk }, { failover: submitFailover(chunk), timeoutMs: this.#timeoutMs + waitMs })
        ids.push(...r.ids)
        for (const t of 'tasks' in r ? r.tasks : []) { ended.set(t.id, t); wait?.onTask?.(t) }
      } catch (err) {
        if (err instanceof TaskmeshApiError) throw new PartialSubmitError(err, ids)
        throw err
      }
      opts.onBatch?.(ids)
    }
    if (wait === undefined) return ids
    const rest = await this.waitMany(ids.filter(id => !ended.has(id)), { ...wait, timeoutMs: Math.max(0, deadline - Date.now()) })
    for (const t of rest) ended.set(t.id, t)
    return ids.map(id => ended.get(id)!)
  }

  /** The task as it stands; with `waitMs`, the node holds the request until the task ends or that time passes. */
  async get (id: string, options: { waitMs?: number } = {}): Promise<Task> {
    const wait = Math.max(0, Math.floor(options.waitMs ?? 0))
    return await this.#request<Task>('GET', `/v1/tasks/${encodeURIComponent(id)}${wait > 0 ? `?wait=${wait}` : ''}`, undefined, { failover: 'reads', timeoutMs: this.#timeoutMs + wait })
  }

  /** Resolves once the task ended (succeeded, failed or cancelled), or with the record as it stands when `timeoutMs` passes. */
  async wait (id: string, options: WaitOptions = {}): Promise<Task> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000)
    for (;;) {
      const left = deadline - Date.now()
      const t = await this.get(id, { waitMs: Math.max(0, Math.min(left, LONG_POLL_MS)) })
      if (isTerminalStatus(t.status) || Date.now() >= deadline) return t
    }
  }

  /**
   * Waits up to `timeoutMs` for one of the tasks to end, in one request to
   * any node (POST /v1/tasks/wait, at most the server's maxBatchTasks ids):
   * the tasks that have ended by then, the ids still pending, and the ids no
   * live node knows (`missing`).
   */
  async waitAny (ids: readonly string[], options: WaitOptions = {}): Promise<BulkWaited> {
    const wait = Math.max(0, Math.floor(options.timeoutMs ?? LONG_POLL_MS))
    return await this.#request<BulkWaited>('POST', '/v1/tasks/wait', { ids, waitMs: wait }, { failover: 'reads', timeoutMs: this.#timeoutMs + wait })
  }

  /**
   * wait() for many tasks: resolves with their records in the order of `ids`
   * once all ended, or with the records as they stand when `timeoutMs` passes.
   * Bulk waits, not one long-poll per task: the ids go in groups of 1,000,
   * and each group's loop asks for its remaining ids in one request per round
   * (a round ends as soon as one of them has ended; rounds start at most every
   * `roundMs`, default 50 ms, so frequent endings come in batches). `onTask` sees each record
   * as it ends. An id no live node knows fails it with TASK_NOT_FOUND (404).
   */
  async waitMany (ids: readonly string[], options: WaitManyOptions = {}): Promise<Task[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000)
    const found = new Map<string, Task>()
    const unique = [...new Set(ids)]
    const groups: string[][] = []
    for (let i = 0; i < unique.length; i += BATCH) groups.push(unique.slice(i, i + BATCH))
    const roundMs = Math.max(0, options.roundMs ?? ROUND_MS)
    await Promise.all(groups.map(async group => {
      let remaining = group
      let roundAt = 0
      while (remaining.length > 0) {
        const pause = roundAt + roundMs - Date.now()
        if (pause > 0 && Date.now() + pause < deadline) await new Promise(resolve => setTimeout(resolve, pause))
        roundAt = Date.now()
        const r = await this.waitAny(remaining, { timeoutMs: Math.max(0, Math.min(deadline - Date.now(), LONG_POLL_MS)) })
        if (r.missing.length > 0) throw new TaskmeshApiError(`no task with id ${r.missing.slice(0, 5).map(id => `"${id}"`).join(', ')}${r.missing.length > 5 ? ` (and ${r.missing.length - 5} more)` : ''} on any live node`, 404, 'TASK_NOT_FOUND')
        for (const t of r.tasks) {
          found.set(t.id, t)
          options.onTask?.(t)
        }
        remaining = r.pending
        if (Date.now() >= deadline) break
      }
      // The wait expired: the others as they stand.
      for (const id of remaining) found.set(id, await this.get(id))
    }))
    return ids.map(id => found.get(id)!)
  }

  /** Cancels a task: `cancelled` once its holders recorded the cancel, `cancelling` while a running attempt is told to stop or the ending is not yet recorded (see docs/http-api.md). */
  async cancel (id: string): Promise<Cancelled> {
    return await this.#request<Cancelled>('DELETE', `/v1/tasks/${encodeURIComponent(id)}`, undefined, { failover: 'reads' })
  }

  /**
   * Retries a failed or cancelled task (same id; its attempts continue).
   * `maxAttempts`: its new total, above the attempts used. Not re-sent to
   * another node: a retry that may have landed is not repeated.
   */
  async retry (id: string, options: { maxAttempts?: number } = {}): Promise<Retried> {
    return await this.#request<Retried>('POST', `/v1/tasks/${encodeURIComponent(id)}/retry`, options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }, { failover: 'refused' })
  }

  /** Creates or replaces a recurring schedule (PUT /v1/schedules/:name): the leader fires its task once per tick. */
  async putSchedule (name: string, spec: ScheduleSpec): Promise<ScheduleChanged> {
    return await this.#request<ScheduleChanged>('PUT', `/v1/schedules/${encodeURIComponent(name)}`, spec, { failover: 'reads' })
  }

  /** Every recurring schedule, with its latest and next tick (GET /v1/schedules). */
  async schedules (): Promise<Schedule[]> {
    return (await this.#request<{ schedules: Schedule[] }>('GET', '/v1/schedules', undefined, { failover: 'reads' })).schedules
  }

  async schedule (name: string): Promise<Schedule> {
    return await this.#request<Schedule>('GET', `/v1/schedules/${encodeURIComponent(name)}`, undefined, { failover: 'reads' })
  }

  async deleteSchedule (name: string): Promise<ScheduleDeleted> {
    return await this.#request<ScheduleDeleted>('DELETE', `/v1/schedules/${encodeURIComponent(name)}`, undefined, { failover: 'reads' })
  }

  /** Pauses a schedule: no tick fires until it is resumed (and the pause's ticks are not caught up). */
  async pauseSchedule (name: string): Promise<ScheduleChanged> {
    return await this.#request<ScheduleChanged>('POST', `/v1/schedules/${encodeURIComponent(name)}/pause`, undefined, { failover: 'reads' })
  }

  async resumeSchedule (name: string): Promise<ScheduleChanged> {
    return await this.#request<ScheduleChanged>('POST', `/v1/schedules/${encodeURIComponent(name)}/resume`, undefined, { failover: 'reads' })
  }

  /** Each task type with a limit or tasks: its cluster-wide limit and its queued, running and limited counts (GET /v1/types). */
  async types (): Promise<TypeRow[]> {
    return (await this.#request<{ types: TypeRow[] }>('GET', '/v1/types', undefined, { failover: 'reads' })).types
  }

  /** Sets a type's whole cluster-wide limit (a field left out: no limit of that kind; `{}` removes it). PUT /v1/types/:type. */
  async setTypeLimit (type: string, limit: { maxConcurrent?: number, perSecond?: number }): Promise<TypeLimitSet> {
    return await this.#request<TypeLimitSet>('PUT', `/v1/types/${encodeURIComponent(type)}`, limit, { failover: 'reads' })
  }

  /** Tasks held by the current node, newest first. */
  async list (options: { status?: TaskStatus, limit?: number } = {}): Promise<Task[]> {
    const q = new URLSearchParams()
    if (options.status !== undefined) q.set('status', options.status)
    if (options.limit !== undefined) q.set('limit', String(options.limit))
    const qs = q.toString()
    return (await this.#request<{ tasks: Task[] }>('GET', `/v1/tasks${qs === '' ? '' : `?${qs}`}`, undefined, { failover: 'reads' })).tasks
  }

  /**
   * One page of every task in the cluster (any node answers), newest submit
   * first; pass the page's `cursor` back for the next one (null: no more).
   * `partial`: a member did not answer, so tasks held only there may be missing.
   */
  async listCluster (options: { status?: TaskStatus, type?: string, limit?: number, cursor?: string } = {}): Promise<{ tasks: Task[], cursor: string | null, partial: boolean }> {
    const q = new URLSearchParams({ scope: 'cluster' })
    if (options.status !== undefined) q.set('status', options.status)
    if (options.type !== undefined) q.set('type', options.type)
    if (options.limit !== undefined) q.set('limit', String(options.limit))
    if (options.cursor !== undefined) q.set('cursor', options.cursor)
    const page = await this.#request<{ tasks: Task[], cursor?: string | null, partial?: boolean }>('GET', `/v1/tasks?${q.toString()}`, undefined, { failover: 'reads' })
    return { tasks: page.tasks, cursor: page.cursor ?? null, partial: page.partial === true }
  }

  /** The members and the leader as the current node sees them; also teaches the client the members' URLs. */
  async cluster (): Promise<Cluster> {
    const c = await this.#request<Cluster>('GET', '/v1/cluster', undefined, { failover: 'reads' })
    this.#learn(c.members)
    return c
  }

  /** POST /v1/drain: the current node (never another) drains, leaves the cluster and stops. */
  async drain (): Promise<Draining> {
    return await this.#request<Draining>('POST', '/v1/drain', undefined, { failover: 'none' })
  }

  /** GET /healthz of the current node (needs no token). */
  async health (): Promise<Health> {
    return await this.#request<Health>('GET', '/healthz', undefined, { failover: 'reads' })
  }

  /**
   * The event feed (GET /v1/events) as an async iterator. When the node goes
   * away the iterator connects to another member it knows of (learned from
   * the events themselves) and goes on: each connection starts with `hello`.
   * A refusal (4xx, e.g. a wrong token) ends it with TaskmeshApiError.
   * Breaking out of the loop, or `signal`, closes the stream.
   */
  async * events (options: EventsOptions = {}): AsyncGenerator<TaskmeshEvent, void, undefined> {
    const abort = new AbortController()
    const outer = options.signal
    const onAbort = (): void => { abort.abort() }
    outer?.addEventListener('abort', onAbort, { once: true })
    const q = new URLSearchParams()
    if (options.kinds !== undefined) q.set('kinds', options.kinds.join(','))
    if (options.tasks !== undefined && options.tasks.length > 0) q.set('task', options.tasks.join(','))
    const qs = q.toString() === '' ? '' : `?${q.toString()}`
    try {
      let failedInRow = 0
      while (!abort.signal.aborted && outer?.aborted !== true) {
        const node = this.node
        try {
          for await (const e of await openEventStream(`${node}/v1/events${qs}`, abort.signal, this.#headers({}))) {
            failedInRow = 0
            const ev = { event: e.event, id: e.id, node, data: e.data } as TaskmeshEvent
            if (ev.event === 'hello' && ev.data.cluster !== null) this.#learn(ev.data.cluster.members)
            else if (ev.event === 'cluster') this.#learn(ev.data.members)
            yield ev
          }
          throw new Error('the stream ended')
        } catch (err) {
          if (abort.signal.aborted) return
          if (err instanceof TaskmeshApiError && err.status !== undefined && err.status < 500) throw err
          options.onDisconnect?.(node, err as Error)
          this.#rotate()
          if (++failedInRow >= this.#nodes.length) {
            failedInRow = 0
            await delay(options.retryDelayMs ?? 1_000, abort.signal)
          }
        }
      }
    } finally {
      outer?.removeEventListener('abort', onAbort)
      abort.abort()
    }
  }

  #headers (headers: Record<string, string>): Record<string, string> {
    return this.#token === undefined ? headers : { ...headers, authorization: `Bearer ${this.#token}` }
  }

  /** Members not known gone (dead, left) or leaving become failover targets, after the current node. */
  #learn (members: ReadonlyArray<{ http: string, status: string }>): void {
    const live = members.filter(m => m.status !== 'dead' && m.status !== 'left' && m.status !== 'draining' && m.http !== '').map(m => m.http.replace(/\/+$/, ''))
    this.#nodes = [...new Set([this.node, ...live, ...this.#nodes])]
  }

  #rotate (): void {
    if (this.#nodes.length > 1) this.#nodes.push(this.#nodes.shift()!)
  }

  /**
   * One request to the current node; when it cannot be reached, to the next
   * known node (for 'refused' only when the connection was refused, so the
   * request surely did nothing), until each was tried once.
   */
  async #request<T> (method: string, path: string, body: unknown, options: { failover: Failover, timeoutMs?: number }): Promise<T> {
    let last: TaskmeshApiError | undefined
    for (let tried = 0; tried < this.#nodes.length; tried++) {
      const url = `${this.node}${path}`
      let res: HttpAnswer
      try {
        res = await httpText(url, {
          method,
          headers: this.#headers(body === undefined ? {} : { 'content-type': 'application/json' }),
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(options.timeoutMs ?? this.#timeoutMs)
        })
      } catch (err) {
        const code = (err as RequestFailedError).code
        last = new TaskmeshApiError(`cannot reach ${url}: ${(err as Error).message}`)
        if (options.failover === 'reads' || (options.failover === 'refused' && code === 'ECONNREFUSED')) {
          this.#rotate()
          continue
        }
        throw last
      }
      if (res.status < 200 || res.status > 299) {
        const err = answerError(method, url, res)
        // A draining node refuses before it does anything: the next node can take the request.
        if (err.code !== 'DRAINING' || options.failover === 'none') throw err
        last = err
        this.#rotate()
        continue
      }
      return JSON.parse(res.body) as T
    }
    throw last!
  }
}

/** A submit is sent again to another node only when the connection was refused, or when every task carries an idempotencyKey. */
function submitFailover (tasks: ReadonlyArray<{ idempotencyKey?: string }>): Failover {
  return tasks.every(t => t.idempotencyKey !== undefined) ? 'reads' : 'refused'
}

async function delay (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}
