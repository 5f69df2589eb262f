/**
 * Carries tasks through the cluster. Every node plays three parts:
 * - origin: validates a submit, stores it on disk here and on one other live
 *   node (the leader when it can: that store is also the hand-over), and only
 *   then answers 202;
 * - leader: feeds the pure Scheduler, sends its assignments in batches per
 *   worker (each carrying the term), and sends every state change to the
 *   task's holders;
 * - worker: refuses assignments of a stale term, runs attempts in the
 *   HandlerPool, reports to the leader and sends progress and its result
 *   straight to the holders.
 * Decisions live in src/core (Scheduler, mergeUpdate); this file moves data.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { Scheduler } from '../core/scheduler.ts'
import type { Assignment, SchedulerConfig, WorkerSlots } from '../core/scheduler.ts'
import { isTerminal, lostAttemptUpdate, mergeUpdate, newestUpdate, updateOf } from '../core/tasks.ts'
import type { TaskRecord, TaskSpec, TaskStatus, TaskUpdate } from '../core/tasks.ts'
import { QueueFullError, TaskFinishedError, TaskNotFoundError, UnavailableError, UnknownTaskTypeError, PayloadTooLargeError } from '../errors.ts'
import type { TaskExecutor } from '../exec/handler-pool.ts'
import type { RpcReply, RpcRequest } from '../protocol/rpc.ts'
import type { TaskStore } from '../store/task-store.ts'
import type { Clock } from './clock.ts'
import type { ClusterRuntime } from './cluster-runtime.ts'
import { chunkBySize } from './chunks.ts'
import { Outbox } from './outbox.ts'
import type { ClusterTransport } from './transport.ts'

export interface SubmitInput {
  type: string
  payload: unknown
  priority?: number
  timeoutMs?: number
  maxAttempts?: number
  idempotencyKey?: string
}

export interface TaskRuntimeInit {
  store: TaskStore
  pool: TaskExecutor
  transport: ClusterTransport
  cluster: ClusterRuntime
  clock: Clock
  log: Logger
  capacity: number
  maxPayloadBytes: number
  /** Largest RPC frame; batches are split to stay well under it. */
  maxFrameBytes: number
  defaultTimeoutMs: number
  defaultMaxAttempts: number
  /** Tasks accepted here that may wait for a leader to take them (default: no limit). */
  maxQueuedTasksPerNode?: number
  scheduler: SchedulerConfig
  /** Called when this node, as leader of `term`, has gathered and begins to dispatch (tests and metrics). */
  onDispatching?: (term: number) => void
  /** New task ids (default: random UUIDs). */
  newId?: () => string
}

/** Time allowed for one RPC exchange on the task path. */
const RPC_TIMEOUT_MS = 10_000
/** How many ended tasks a leader remembers, to answer late hand-overs. */
const FINISHED_MEMORY = 100_000
/** Undeliverable endings kept for one member until it is back. */
const MAX_PARKED_PER_MEMBER = 100_000
/** Nodes an origin tries, one after another, to store a second copy on. */
const MAX_STORE_TARGETS = 4
/** Progress of one task is sent to its holders at most this often. */
const PROGRESS_EVERY_MS = 200

/** An attempt assigned here: held in the pool's queue until `started`. */
interface RunningAttempt { spec: TaskSpec, attempt: number, abort: AbortController, started: boolean, startedAt: number | null }

export class TaskRuntime {
  readonly #init: TaskRuntimeInit
  readonly #id: string
  #scheduler: Scheduler | null = null
  /** Leader only: holders of each task it tracks. */
  readonly #holders = new Map<string, string[]>()
  /** Tasks held here that the current leader has not acknowledged. */
  readonly #unforwarded = new Set<string>()
  /** Worker only: attempts running here. */
  readonly #running = new Map<string, RunningAttempt>()
  readonly #waiters = new Map<string, Set<(rec: TaskRecord) => void>>()
  readonly #outbox: Outbox
  #dispatchQueued = false
  #forwarding = false
  #stopTimer: (() => void) | undefined

  constructor (init: TaskRuntimeInit) {
    this.#init = init
    this.#id = init.transport.id
    this.#startSeq = Math.max(0, init.store.seq - 2_000)
    this.#outbox = new Outbox(init.transport, init.clock, RPC_TIMEOUT_MS, Math.floor(init.maxFrameBytes / 4), (to, err, failures) => {
      init.log[failures === 1 ? 'debug' : 'warn']({ to, failures, err: err.message }, 'task updates not delivered; retrying while the holder lives')
    }, peer => this.#members().some(m => m.id === peer && m.status !== 'dead'), (peer, dropped) => { this.#park(peer, dropped) })
  }

  start (): void {
    const { cluster, transport } = this.#init
    for (const rec of this.#init.store.unfinished()) {
      this.#unforwarded.add(rec.id)
      this.#staleAfterRestart.add(rec.id)
    }
    cluster.onEvent(e => {
      if (e.type === 'leader-changed') this.#onLeaderChanged()
      if (e.type === 'member-status' && e.to === 'dead') this.#onWorkerGone(e.id)
      // A new incarnation (a restart quicker than the failure detector) runs none of the old one's attempts.
      if (e.type === 'member-joined') this.#onWorkerGone(e.id)
      if ((e.type === 'member-status' && e.to === 'alive') || e.type === 'member-joined') this.#unpark(e.id)
    })
    // Endings this node recorded just before it stopped may not have reached the other holders.
    this.#passOnEndings(this.#init.store.endedSince(this.#startSeq, 2_000).records)
    transport.onRequest(async (msg, from) => await this.#handle(msg, from))
    this.#stopTimer = this.#init.clock.every(100, () => { this.#tick() })
    this.#onLeaderChanged()
  }

  async stop (): Promise<void> {
    this.#stopTimer?.()
    for (const r of this.#running.values()) r.abort.abort()
    await this.#outbox.flush()
  }

  /** For heartbeats: attempts running here, and (as leader) tasks waiting. */
  load (): { running: number, queued: number } {
    let running = 0
    for (const r of this.#running.values()) if (r.started) running++
    return { running, queued: this.#scheduler?.waiting ?? 0 }
  }

  /** Task types run by live members (this node included). */
  clusterTypes (members = this.#members()): Set<string> {
    const types = new Set(this.#init.pool.types())
    for (const m of members) if (m.status !== 'dead') for (const t of m.types) types.add(t)
    return types
  }

  // ---- origin ------------------------------------------------------------

  /** Validates, stores durably on two nodes (when there are two), hands over to the leader; returns ids in order. */
  async submit (inputs: readonly SubmitInput[]): Promise<string[]> {
    const { store, clock } = this.#init
    const members = this.#members()
    const types = this.clusterTypes(members)
    inputs.forEach((t, i) => {
      if (!types.has(t.type)) throw new UnknownTaskTypeError(t.type, [...types].sort())
      const bytes = Buffer.byteLength(JSON.stringify(t.payload ?? null))
      if (bytes > this.#init.maxPayloadBytes) throw new PayloadTooLargeError(inputs.length > 1 ? `tasks[${i}].payload` : 'payload', bytes, this.#init.maxPayloadBytes)
    })
    const leader = this.#init.cluster.core.leader()
    const waiting = leader === null ? 0 : leader.id === this.#id ? (this.#scheduler?.waiting ?? 0) : (members.find(m => m.id === leader.id)?.queued ?? 0)
    if (waiting + inputs.length > this.#init.scheduler.maxQueuedTasks) throw new QueueFullError(this.#init.scheduler.maxQueuedTasks)
    // Without a leader (or before it takes them) accepted tasks wait here: bounded too.
    const perNode = this.#init.maxQueuedTasksPerNode ?? Infinity
    if (this.#unforwarded.size + inputs.length > perNode) throw new QueueFullError(perNode, 'node')

    const ids: string[] = []
    const fresh: TaskSpec[] = []
    const pending: Array<[number, Promise<string>]> = []
    const now = clock.now()
    for (const t of inputs) {
      const inFlight = t.idempotencyKey === undefined ? undefined : this.#pendingKeys.get(t.idempotencyKey)
      if (inFlight !== undefined) { pending.push([ids.length, inFlight]); ids.push(''); continue }
      const existing = t.idempotencyKey === undefined ? undefined : (store.byIdempotencyKey(t.idempotencyKey) ?? fresh.find(f => f.idempotencyKey === t.idempotencyKey))
      if (existing !== undefined) { ids.push(existing.id); continue }
      const spec: TaskSpec = {
        id: (this.#init.newId ?? randomUUID)(),
        type: t.type,
        payload: t.payload ?? null,
        priority: t.priority ?? 0,
        timeoutMs: t.timeoutMs ?? this.#init.defaultTimeoutMs,
        maxAttempts: t.maxAttempts ?? this.#init.defaultMaxAttempts,
        idempotencyKey: t.idempotencyKey ?? null,
        createdAt: now,
        origin: this.#id,
        replicas: []
      }
      fresh.push(spec)
      ids.push(spec.id)
    }
    // A key being stored by a concurrent submit resolves to that submit's id, once it is durable.
    const mine = new Map<string, PromiseWithResolvers<string>>()
    for (const spec of fresh) {
      if (spec.idempotencyKey === null) continue
      const d = Promise.withResolvers<string>()
      d.promise.catch(() => {})
      mine.set(spec.idempotencyKey, d)
      this.#pendingKeys.set(spec.idempotencyKey, d.promise)
    }
    try {
      const canonical = fresh.length === 0 ? new Map<string, string>() : await this.#storeDurably(fresh, leader?.id ?? null)
      for (const spec of fresh) if (spec.idempotencyKey !== null) mine.get(spec.idempotencyKey)?.resolve(canonical.get(spec.id) ?? spec.id)
      const out = ids.map(id => canonical.get(id) ?? id)
      for (const [i, p] of pending) out[i] = await p
      return out
    } catch (err) {
      for (const d of mine.values()) d.reject(err)
      throw err
    } finally {
      for (const key of mine.keys()) this.#pendingKeys.delete(key)
    }
  }

  /** Idempotency keys whose first task is being stored right now. */
  readonly #pendingKeys = new Map<string, Promise<string>>()

  async #storeDurably (specs: TaskSpec[], leaderId: string | null): Promise<Map<string, string>> {
    const { store } = this.#init
    const others = this.#members().filter(m => m.id !== this.#id && m.status === 'alive')
    if (others.length === 0) {
      const canonical = store.insert(specs)
      this.#handOver(specs.map(s => s.id))
      return canonical
    }
    // The leader first: storing there is also the hand-over. Then the least loaded others.
    const targets = others
      .sort((a, b) => (a.id === leaderId ? -1 : b.id === leaderId ? 1 : a.running / a.capacity - b.running / b.capacity))
      .map(m => m.id)
    // Until a second node has them, these records are not accepted: never handed over, offered or run.
    for (const s of specs) this.#storing.add(s.id)
    try {
      return await this.#storeOnAnother(specs, targets, leaderId)
    } finally {
      for (const s of specs) this.#storing.delete(s.id)
      // Handed over while still being stored: they can go now, not on the next tick.
      this.#forward()
    }
  }

  /** The records of these tasks held here that have ended. */
  #endedOf (specs: readonly TaskSpec[]): TaskRecord[] {
    return specs.map(s => this.#init.store.get(s.id)).filter((r): r is TaskRecord => r !== undefined && isTerminal(r.status))
  }

  /** Ids of records stored here whose second copy is being made (not yet accepted). */
  readonly #storing = new Set<string>()

  async #storeOnAnother (specs: TaskSpec[], targets: string[], leaderId: string | null): Promise<Map<string, string>> {
    const { store } = this.#init
    // A target that failed may still have stored them (a lost reply): it stays a holder, so that its copy
    // hears how they end instead of lingering unfinished.
    const tried: string[] = []
    for (const target of targets.slice(0, MAX_STORE_TARGETS)) {
      const kind = target === leaderId ? 'submit' : 'replicate'
      tried.push(target)
      const withReplica = specs.map(s => ({ ...s, replicas: [...tried] }))
      if (tried.length === 1) store.insert(withReplica)
      else store.setReplicas(specs.map(s => s.id), tried)
      try {
        const reply = await this.#init.transport.request(target, { kind, tasks: withReplica }, RPC_TIMEOUT_MS)
        if (reply.kind === 'error' && reply.code === 'QUEUE_FULL') {
          store.delete(specs.map(s => s.id))
          throw new QueueFullError(this.#init.scheduler.maxQueuedTasks)
        }
        if (reply.kind !== 'stored') throw new Error(reply.kind === 'error' ? `${reply.code}: ${reply.message}` : `unexpected reply ${reply.kind}`)
        const canonical = new Map(reply.canonical)
        const duplicates = specs.filter(s => canonical.get(s.id) !== s.id).map(s => s.id)
        if (duplicates.length > 0) store.delete(duplicates)
        if (kind === 'replicate') this.#handOver(specs.filter(s => canonical.get(s.id) === s.id).map(s => s.id))
        // An earlier target that seemed to fail had them after all, and they have already ended: tell every holder.
        if (tried.length > 1) this.#passOnEndings(this.#endedOf(specs))
        return canonical
      } catch (err) {
        if (err instanceof QueueFullError) throw err
        this.#init.log.warn({ target, kind, err: (err as Error).message }, 'could not store tasks on a second node; trying another')
      }
    }
    // A target whose reply was lost may have stored them all the same: if they have begun to run, it did.
    if (specs.some(s => { const r = store.get(s.id); return r !== undefined && (r.status !== 'queued' || r.attempts > 0) })) {
      this.#handOver(specs.map(s => s.id))
      this.#passOnEndings(this.#endedOf(specs))
      return new Map(specs.map(s => [s.id, s.id]))
    }
    store.delete(specs.map(s => s.id))
    throw new UnavailableError('no other live node could store the task durably; nothing was accepted, retry')
  }

  /** Queues tasks here when this node leads; otherwise they go to the leader on the next tick. */
  #handOver (ids: string[]): void {
    for (const id of ids) this.#unforwarded.add(id)
    this.#forward()
  }

  /** Sends held, unfinished tasks the current leader has not acknowledged. */
  #forward (): void {
    if (this.#unforwarded.size === 0 || this.#forwarding) return
    const leader = this.#init.cluster.core.leader()
    if (leader === null) return
    if (this.#staleAfterRestart.size > 0) {
      // Not before the join window has passed: until then the view may not list the other holders yet.
      if (this.#init.cluster.core.joining(this.#init.clock.now())) return
      this.#forwarding = true
      void this.#reconcile([...this.#staleAfterRestart].slice(0, 200)).finally(() => { this.#forwarding = false })
      return
    }
    const candidates = [...this.#unforwarded].filter(id => !this.#storing.has(id)).slice(0, 1000)
    const unfinished = candidates.map(id => this.#init.store.get(id)).filter((r): r is TaskRecord => r !== undefined && !isTerminal(r.status))
    for (const id of candidates) if (!unfinished.some(r => r.id === id)) this.#unforwarded.delete(id)
    const records = chunkBySize(unfinished, this.#batchBytes())[0] ?? []
    const ids = records.map(r => r.id)
    if (ids.length === 0) return
    if (leader.id === this.#id) {
      if (this.#gathering !== null) return // the gathering takes in every held task
      for (const id of ids) {
        this.#unforwarded.delete(id)
        if (this.#rerun.delete(id)) this.#finished.delete(id)
      }
      this.#enqueue(records.map(r => ({ ...specOf(r), attempts: r.attempts })))
      return
    }
    this.#forwarding = true
    const specs = records.map(specOf)
    const rerun = ids.filter(id => this.#rerun.has(id))
    this.#init.transport.request(leader.id, { kind: 'submit', tasks: specs, attempts: records.map(r => r.attempts), ...(rerun.length > 0 ? { rerun } : {}) }, RPC_TIMEOUT_MS).then(reply => {
      if (reply.kind !== 'stored') return
      // A leader that has been replaced meanwhile may have dropped them: the new one gets them again.
      const now = this.#init.cluster.core.leader()
      if (now?.id !== leader.id || now.term !== leader.term) return
      for (const id of ids) this.#unforwarded.delete(id)
      for (const id of ids) this.#rerun.delete(id)
      // Ended under this leader, but our copy missed it: fetch the ending from the other holders.
      if (reply.ended !== undefined && reply.ended.length > 0) void this.#catchUpEnded(reply.ended.filter(id => ids.includes(id)))
    }, (err: Error) => {
      this.#init.log.debug({ leader: leader.name, err: err.message }, 'hand-over to the leader failed; will retry')
    }).finally(() => { this.#forwarding = false })
  }

  /** Aborts that arrived before their assignment (kept for a minute). */
  readonly #aborted = new Map<string, number>()

  #rememberAborted (id: string): void {
    const now = this.#init.clock.now()
    this.#aborted.set(id, now)
    for (const [old, at] of this.#aborted) if (now - at > 60_000) this.#aborted.delete(old)
  }

  /** Tasks held since before this node (re)started: their other holders may know how they ended. */
  readonly #staleAfterRestart = new Set<string>()

  /**
   * Brings records held from before a restart up to date from their other
   * holders, so that a task that ended elsewhere while this node was down is
   * not handed to the leader (and run) again.
   */
  async #reconcile (ids: string[]): Promise<string[]> {
    const answeredIds: string[] = []
    await Promise.all(ids.map(async id => {
      const rec = this.#init.store.get(id)
      const live = new Set(this.#members().filter(m => m.status !== 'dead').map(m => m.id))
      const others = rec === undefined ? [] : [rec.origin, ...rec.replicas].filter(h => h !== this.#id && live.has(h))
      let answered = others.length === 0
      for (const h of others) {
        try {
          const r = await this.#init.transport.request(h, { kind: 'get', id, waitMs: 0 }, RPC_TIMEOUT_MS)
          answered = true
          if (r.kind === 'task' && r.task !== null) this.#apply([{ ...updateOf(r.task as TaskRecord), id }])
        } catch (err) {
          this.#init.log.debug({ id, holder: h, err: (err as Error).message }, 'holder did not answer reconcile')
        }
      }
      if (answered) {
        this.#staleAfterRestart.delete(id)
        answeredIds.push(id)
      }
    }))
    return answeredIds
  }

  /** Tasks the leader says ended that no holder has the ending of: handed over again, to be run again. */
  readonly #rerun = new Set<string>()

  /**
   * The leader says these tasks ended, but the copy here is unfinished:
   * fetch the ending from the other holders. When every live holder answers
   * without one (the ending was lost with the nodes it was sent to), no one
   * has seen it, and the task runs again rather than stay unfinished.
   */
  async #catchUpEnded (ids: string[]): Promise<void> {
    const answered = await this.#reconcile(ids)
    for (const id of answered) {
      const rec = this.#init.store.get(id)
      if (rec === undefined || isTerminal(rec.status)) continue
      this.#rerun.add(id)
      this.#unforwarded.add(id)
    }
  }

  // ---- reads -------------------------------------------------------------

  /** The task's record from this node or any live node; waits up to waitMs for it to end. */
  async get (id: string, waitMs = 0, opts: { everywhere?: boolean } = {}): Promise<TaskRecord> {
    const local = await this.#getLocal(id, waitMs)
    if (local !== undefined && opts.everywhere !== true && isTerminal(local.status)) return local
    const live = this.#members().filter(m => m.id !== this.#id && m.status !== 'dead').map(m => m.id)
    // An unfinished copy here may be a message or two behind the task's other holders: they answer too.
    // Without a copy here, every live member is asked.
    const ask = local !== undefined && opts.everywhere !== true
      ? [...new Set([local.origin, ...local.replicas])].filter(h => live.includes(h))
      : live
    const askWaitMs = local !== undefined ? 0 : waitMs
    const replies = await Promise.allSettled(ask.map(async m => {
      const r = await this.#init.transport.request(m, { kind: 'get', id, waitMs: askWaitMs }, askWaitMs + (local !== undefined ? 2_000 : RPC_TIMEOUT_MS))
      return r.kind === 'task' ? r.task as TaskRecord | null : null
    }))
    // Holders may lag one another by a message: answer with the most advanced record.
    let best: TaskRecord | undefined = local
    for (const r of replies) {
      if (r.status !== 'fulfilled' || r.value === null) continue
      if (best === undefined || mergeUpdate(best, r.value) !== null) best = r.value
    }
    if (best === undefined) throw new TaskNotFoundError(id)
    return best
  }

  list (filter: { status?: TaskStatus, limit: number }): TaskRecord[] {
    return this.#init.store.list(filter)
  }

  async #getLocal (id: string, waitMs: number): Promise<TaskRecord | undefined> {
    const rec = this.#init.store.get(id)
    if (rec === undefined || waitMs <= 0 || isTerminal(rec.status)) return rec
    return await new Promise(resolve => {
      const set = this.#waiters.get(id) ?? new Set()
      this.#waiters.set(id, set)
      const done = (r: TaskRecord): void => {
        if (!isTerminal(r.status)) return
        cancelTimer()
        set.delete(done)
        if (set.size === 0) this.#waiters.delete(id)
        resolve(r)
      }
      const cancelTimer = this.#init.clock.after(waitMs, () => {
        set.delete(done)
        if (set.size === 0) this.#waiters.delete(id)
        resolve(this.#init.store.get(id))
      })
      set.add(done)
    })
  }

  // ---- cancel ------------------------------------------------------------

  async cancel (id: string): Promise<{ id: string, status: 'cancelled' | 'cancelling' }> {
    const rec = await this.get(id)
    if (isTerminal(rec.status)) throw new TaskFinishedError(id, rec.status)
    const leader = this.#init.cluster.core.leader()
    if (leader === null) throw new UnavailableError('no leader to cancel through; retry')
    if (leader.id === this.#id && this.#gathering !== null) await this.#gathering
    const reply = leader.id === this.#id
      ? this.#cancelAsLeader(id)
      : await this.#init.transport.request(leader.id, { kind: 'cancel', id }, RPC_TIMEOUT_MS)
    if (reply.kind !== 'cancel') throw new UnavailableError(`the leader could not cancel: ${reply.kind === 'error' ? reply.message : reply.kind}`)
    if (reply.outcome === 'cancelled') return { id, status: 'cancelled' }
    if (reply.outcome === 'aborting') return { id, status: 'cancelling' }
    // The leader does not track it: it just ended (a holder here may lag), or it was never handed over.
    const latest = await this.get(id, 0, { everywhere: true })
    if (isTerminal(latest.status)) throw new TaskFinishedError(id, latest.status)
    if (latest.status !== 'queued' && latest.status !== 'retrying') throw new UnavailableError('the task is between leaders; retry the cancel')
    const update: TaskUpdate = { id, status: 'cancelled', attempts: rec.attempts, worker: rec.worker, progress: rec.progress, result: null, error: 'cancelled by request', startedAt: rec.startedAt, finishedAt: this.#init.clock.now() }
    this.#sendUpdates([update], [rec.origin, ...rec.replicas])
    this.#unforwarded.delete(id)
    return { id, status: 'cancelled' }
  }

  #cancelAsLeader (id: string): RpcReply {
    const r = this.#scheduler?.cancel(id, this.#init.clock.now()) ?? null
    if (r === null) return { kind: 'cancel', outcome: 'unknown' }
    this.#distribute(r.updates)
    if (r.abortOn !== null) {
      this.#deliver(r.abortOn, { kind: 'abort', ids: [id] })
      return { kind: 'cancel', outcome: 'aborting' }
    }
    return { kind: 'cancel', outcome: 'cancelled' }
  }

  // ---- leader ------------------------------------------------------------

  #onLeaderChanged (): void {
    const core = this.#init.cluster.core
    const term = core.leader()?.term ?? 0
    if (this.#scheduler !== null && (!core.isLeader() || this.#schedulerTerm !== term)) {
      // No longer leader, or leader in a newer term: what this scheduler knew is gathered again.
      this.#scheduler = null
      this.#holders.clear()
      this.#finished.clear()
      this.#init.log.info(core.isLeader() ? { term } : {}, core.isLeader() ? 'leading in a newer term: gathering again' : 'stopped dispatching: no longer leader')
    }
    if (core.isLeader() && this.#scheduler === null) {
      const scheduler = new Scheduler(this.#init.scheduler)
      this.#scheduler = scheduler
      this.#schedulerTerm = term
      const gathering: Promise<void> = this.#gather(scheduler, term).finally(() => {
        if (this.#gathering === gathering) this.#gathering = null
      })
      this.#gathering = gathering
    }
    // A new leader knows nothing yet: hand it every unfinished task held here.
    if (core.leader() !== null) {
      for (const rec of this.#init.store.unfinished()) if (!this.#storing.has(rec.id)) this.#unforwarded.add(rec.id)
      this.#forward()
    }
  }

  #gathering: Promise<void> | null = null
  /** The term the current scheduler dispatches in. */
  #schedulerTerm = 0

  /**
   * A new leader learns the state before it dispatches: every live member
   * reports the attempts it runs (adopted as they are, never restarted) and
   * the unfinished tasks it holds (queued unless some worker runs them).
   */
  async #gather (scheduler: Scheduler, term: number): Promise<void> {
    const startedMs = this.#init.clock.now()
    const quorum = this.#init.cluster.quorum
    for (let round = 1; ; round++) {
      const members = this.#members().filter(m => m.status !== 'dead')
      // The inventory request is also the vote: each member grants this term to this leader only.
      const replies = await Promise.all(members.map(async m => {
        try {
          const r = m.id === this.#id ? await this.#grantedInventory(term, this.#id) : await this.#init.transport.request(m.id, { kind: 'inventory', term }, 3_000)
          return { from: m.id, r }
        } catch (err) {
          this.#init.log.warn({ member: m.id, err: (err as Error).message }, 'no inventory from member')
          return null
        }
      }))
      if (this.#scheduler !== scheduler) return
      if (replies.some(x => x !== null && x.r.kind === 'error' && (x.r.code === 'TERM_TAKEN' || x.r.code === 'STALE_TERM'))) {
        this.#init.log.warn({ term }, 'this term was granted to another leader; claiming a newer one')
        this.#init.cluster.claimNewTerm(term)
        return
      }
      const inventories = replies.flatMap(x => x === null || x.r.kind !== 'inventory' ? [] : [{ from: x.from, running: x.r.running, held: x.r.held }])
      if (quorum > 0 && inventories.length < quorum) {
        // Not enough grants to be sure no other leader holds this term: nothing is dispatched yet.
        this.#init.log.warn({ term, granted: inventories.length, quorum, round }, 'too few members granted this term; asking again')
        await new Promise<void>(resolve => { this.#init.clock.after(this.#init.cluster.heartbeatIntervalMs, resolve) })
        if (this.#scheduler !== scheduler) return
        continue
      }
      const now = this.#init.clock.now()
      // A member declared dead while we gathered has lost its attempts: they are not adopted.
      const live = new Set(this.#members().filter(m => m.status !== 'dead').map(m => m.id))
      const { taken, updates, adopted, queued } = scheduler.takeOver(inventories, live, now)
      for (const spec of taken) this.#addHolders(spec)
      this.#distribute(updates)
      this.#init.log.info({ term, adopted, queued, failed: updates.length, tookMs: now - startedMs }, 'dispatching as leader')
      this.#init.onDispatching?.(term)
      this.#scheduleDispatch()
      return
    }
  }

  /** Answers a leader's inventory request once this node has durably granted it the term. */
  async #grantedInventory (term: number, leader: string): Promise<RpcReply> {
    const g = this.#init.cluster.grant(term, leader)
    if (!g.granted) return { kind: 'error', code: 'TERM_TAKEN', message: `term ${term} refused: this node granted it, or a newer one, to another leader` }
    await g.durable
    return this.#inventory()
  }

  #inventory (): RpcReply {
    const running = [...this.#running.values()].map(r => ({ spec: specOf(r.spec), attempt: r.attempt, startedAt: r.startedAt }))
    // Records still waiting for their post-restart reconcile may have ended elsewhere: not offered.
    const held = this.#init.store.unfinished().filter(rec => !this.#staleAfterRestart.has(rec.id) && !this.#storing.has(rec.id)).map(rec => ({ spec: specOf(rec), attempts: rec.attempts }))
    // The reply must fit one frame; held tasks left out reach the new leader by the holders' hand-over.
    return { kind: 'inventory', running, held: chunkBySize(held, this.#batchBytes())[0] ?? [] }
  }

  /** Holders' copies may list different replicas (an origin that retried lists every node it tried): the leader keeps them all. */
  #addHolders (spec: TaskSpec): void {
    const known = this.#holders.get(spec.id) ?? []
    this.#holders.set(spec.id, [...new Set([...known, spec.origin, ...spec.replicas])])
  }

  #enqueue (records: readonly (TaskSpec & { attempts?: number })[]): boolean {
    const scheduler = this.#scheduler
    if (scheduler === null) return false
    const now = this.#init.clock.now()
    const lost: TaskUpdate[] = []
    // Ended under this leader (a copy held here missed the ending): never run again; the copy catches up.
    const ended = records.filter(r => this.#finished.has(r.id)).map(r => r.id)
    if (ended.length > 0) void this.#catchUpEnded(ended.filter(id => this.#init.store.get(id) !== undefined))
    for (const r of records) {
      if (this.#finished.has(r.id)) continue
      this.#addHolders(r)
      const result = scheduler.enqueue(specOf(r), r.attempts ?? 0, now)
      if (result === 'exhausted') lost.push(lostAttemptUpdate(r.id, r.attempts ?? 0, now))
      else if (result !== 'queued' && !scheduler.has(r.id)) this.#holders.delete(r.id)
      // Already durable and acknowledged: never dropped, only delayed until the queue has room.
      if (result === 'full' && this.#init.store.get(r.id) !== undefined) this.#unforwarded.add(r.id)
    }
    this.#distribute(lost)
    this.#scheduleDispatch()
    return true
  }

  #scheduleDispatch (): void {
    if (this.#dispatchQueued) return
    this.#dispatchQueued = true
    this.#init.clock.after(0, () => {
      this.#dispatchQueued = false
      this.#dispatch()
    })
  }

  #dispatch (): void {
    if (this.#gathering !== null) return // #gather dispatches when it is done
    const scheduler = this.#scheduler
    const leader = this.#init.cluster.core.leader()
    if (scheduler === null || leader === null || leader.id !== this.#id) return
    const workers: WorkerSlots[] = this.#members().filter(m => m.status === 'alive').map(m => ({ id: m.id, capacity: m.capacity, types: m.types }))
    const { updates, assignments } = scheduler.dispatch(workers, this.#init.clock.now())
    this.#distribute(updates)
    for (const [worker, batch] of assignments) this.#assign(worker, leader.term, batch)
  }

  #assign (worker: string, term: number, assignments: Assignment[]): void {
    for (const batch of chunkBySize(assignments, this.#batchBytes())) this.#assignBatch(worker, term, batch)
  }

  /** Batches stay at a quarter of the frame limit: room for the envelope and for growth. */
  #batchBytes (): number {
    return Math.floor(this.#init.maxFrameBytes / 4)
  }

  #assignBatch (worker: string, term: number, batch: Assignment[]): void {
    const msg: RpcRequest = { kind: 'assign', term, leader: this.#id, tasks: batch.map(a => ({ spec: a.spec, attempt: a.attempt })) }
    const reply = worker === this.#id ? Promise.resolve(this.#acceptAssignment(msg, this.#id)) : this.#init.transport.request(worker, msg, RPC_TIMEOUT_MS)
    reply.then(r => {
      if (r.kind !== 'ok') this.#failAssignment(worker, batch, r.kind === 'error' ? `${r.code}: ${r.message}` : r.kind)
    }, (err: Error) => { this.#failAssignment(worker, batch, err.message) })
  }

  #failAssignment (worker: string, batch: Assignment[], why: string): void {
    const scheduler = this.#scheduler
    if (scheduler === null) return
    this.#init.log.warn({ worker, tasks: batch.length, why }, 'assignment not accepted')
    const now = this.#init.clock.now()
    const updates = batch.flatMap(a => scheduler.onResult(a.spec.id, worker, a.attempt, { ok: false, error: `assignment not accepted: ${why}` }, now))
    this.#distribute(updates)
    this.#scheduleDispatch()
  }

  #onReport (msg: Extract<RpcRequest, { kind: 'report' }>, from: string): RpcReply {
    const scheduler = this.#scheduler
    if (scheduler === null) return { kind: 'error', code: 'NOT_LEADER', message: 'this node does not lead' }
    const updates: TaskUpdate[] = []
    for (const r of msg.reports) {
      if (r.event === 'started') updates.push(...scheduler.onStarted(r.id, from, r.attempt, r.atMs, this.#init.clock.now()))
      else if (r.outcome !== undefined) {
        const ended = scheduler.onResult(r.id, from, r.attempt, r.outcome, r.atMs, r.progress ?? null, r.startedAt)
        const late = ended.length === 0 && r.outcome.ok ? scheduler.lateSuccess(r.id, from, r.attempt, r.outcome.result, r.progress ?? null, r.startedAt ?? null, r.atMs) : null
        updates.push(...ended, ...(late?.updates ?? []))
        if (late?.abortOn != null) this.#deliver(late.abortOn, { kind: 'abort', ids: [r.id] })
      }
    }
    this.#distribute(updates)
    this.#scheduleDispatch()
    return { kind: 'ok' }
  }

  /** A member died, or came back as a new incarnation: the attempts it had are lost. */
  #onWorkerGone (id: string): void {
    const scheduler = this.#scheduler
    if (scheduler === null) return
    this.#distribute(scheduler.onWorkerLost(id, this.#init.clock.now()))
    this.#scheduleDispatch()
  }

  /** Sends scheduler updates to each task's holders (applying them here when this node holds the task). */
  #distribute (updates: readonly TaskUpdate[]): void {
    const byHolder = new Map<string, TaskUpdate[]>()
    for (const u of updates) {
      for (const h of this.#holders.get(u.id) ?? []) {
        const list = byHolder.get(h) ?? []
        list.push(u)
        byHolder.set(h, list)
      }
      if (isTerminal(u.status)) {
        this.#holders.delete(u.id)
        this.#rememberFinished(u)
      }
    }
    for (const [holder, list] of byHolder) this.#sendUpdates(list, [holder])
  }

  /** Leader only: ids of tasks that ended under this leader, oldest first (bounded), so a late hand-over does not run one again. */
  readonly #finished = new Set<string>()

  #rememberFinished (u: TaskUpdate): void {
    this.#finished.add(u.id)
    if (this.#finished.size > FINISHED_MEMORY) {
      const oldest = this.#finished.values().next().value
      if (oldest !== undefined) this.#finished.delete(oldest)
    }
  }

  #tick (): void {
    this.#forward()
    void this.#flushReports()
    const scheduler = this.#scheduler
    if (scheduler === null) return
    const updates = scheduler.tick(this.#init.clock.now())
    if (updates.length > 0) this.#distribute(updates)
    if (scheduler.waiting > 0) this.#scheduleDispatch()
  }

  // ---- worker ------------------------------------------------------------

  #acceptAssignment (msg: Extract<RpcRequest, { kind: 'assign' }>, from: string): RpcReply {
    const core = this.#init.cluster.core
    if (msg.term < core.term) {
      return { kind: 'error', code: 'STALE_TERM', message: `assignment of term ${msg.term} refused: this node knows term ${core.term}` }
    }
    if (msg.leader !== from) return { kind: 'error', code: 'FORGED', message: 'assignments come only from the leader itself' }
    if (!this.#init.cluster.grant(msg.term, msg.leader).granted) {
      return { kind: 'error', code: 'STALE_TERM', message: `assignment of term ${msg.term} refused: this node granted that term, or a newer one, to another leader` }
    }
    for (const { spec, attempt } of msg.tasks) {
      if (!this.#init.pool.supports(spec.type)) {
        this.#deliver(msg.leader, { kind: 'report', reports: [{ id: spec.id, attempt, event: 'result', atMs: this.#init.clock.now(), outcome: { ok: false, error: `task type "${spec.type}" is not allowed on this node` } }] })
        continue
      }
      if (this.#aborted.has(spec.id)) {
        // Cancelled before its assignment arrived.
        this.#deliver(msg.leader, { kind: 'report', reports: [{ id: spec.id, attempt, event: 'result', atMs: this.#init.clock.now(), outcome: { ok: false, error: 'cancelled by request', cancelled: true } }] })
        continue
      }
      const current = this.#running.get(spec.id)
      if (current !== undefined) {
        // Already running here (for an attempt a leader gave up on, or one a new leader did not hear
        // of): it continues under the number of the newest assignment, which the current leader tracks.
        current.attempt = attempt
        if (current.started) this.#deliver(msg.leader, { kind: 'report', reports: [{ id: spec.id, attempt, event: 'started', atMs: current.startedAt ?? this.#init.clock.now() }] })
        continue
      }
      void this.#runAttempt(spec, attempt, msg.leader)
    }
    return { kind: 'ok' }
  }

  async #runAttempt (spec: TaskSpec, attempt: number, leader: string): Promise<void> {
    const abort = new AbortController()
    const run: RunningAttempt = { spec, attempt, abort, started: false, startedAt: null }
    this.#running.set(spec.id, run)
    const holders = [spec.origin, ...spec.replicas]
    let startedAt: number | null = null
    let lastProgressMs = 0
    let lastProgress: unknown = null
    const outcome = await this.#init.pool.run({
      taskId: spec.id,
      attempt,
      type: spec.type,
      payload: spec.payload,
      timeoutMs: spec.timeoutMs,
      signal: abort.signal,
      onStarted: () => {
        run.started = true
        startedAt = this.#init.clock.now()
        run.startedAt = startedAt
        this.#deliver(leader, { kind: 'report', reports: [{ id: spec.id, attempt: run.attempt, event: 'started', atMs: startedAt }] })
      },
      onProgress: value => {
        lastProgress = value
        const now = this.#init.clock.now()
        if (now - lastProgressMs < PROGRESS_EVERY_MS) return
        lastProgressMs = now
        this.#sendUpdates([{ id: spec.id, status: 'running', attempts: run.attempt, worker: this.#id, progress: value, result: null, error: null, startedAt, finishedAt: null }], holders)
      }
    })
    this.#running.delete(spec.id)
    const finishedAt = this.#init.clock.now()
    this.#deliver(leader, { kind: 'report', reports: [{ id: spec.id, attempt: run.attempt, event: 'result', atMs: finishedAt, outcome, progress: lastProgress, startedAt }] })
    if (outcome.ok) {
      // The result goes straight to the holders too, so it is recorded even if the leader dies now.
      this.#sendUpdates([{ id: spec.id, status: 'succeeded', attempts: run.attempt, worker: this.#id, progress: lastProgress, result: outcome.result, error: null, startedAt, finishedAt }], holders)
    }
  }

  // ---- plumbing ----------------------------------------------------------

  async #handle (msg: RpcRequest, from: string): Promise<RpcReply> {
    switch (msg.kind) {
      case 'submit': {
        if (this.#gathering !== null) await this.#gathering
        const scheduler = this.#scheduler
        if (scheduler === null) return { kind: 'error', code: 'NOT_LEADER', message: 'this node does not lead' }
        const incoming = msg.tasks.filter(t => !scheduler.has(t.id)).length
        if (scheduler.waiting + incoming > this.#init.scheduler.maxQueuedTasks) return { kind: 'error', code: 'QUEUE_FULL', message: 'queue full' }
        // Store only what this node holds: a hand-over of another holder's task is queued, not copied.
        for (const id of msg.rerun ?? []) this.#finished.delete(id)
        const held = msg.tasks.filter(t => t.origin === this.#id || t.replicas.includes(this.#id))
        const canonical = this.#init.store.insert(held)
        const toQueue: Array<TaskSpec & { attempts: number }> = []
        const ended: string[] = []
        msg.tasks.forEach((t, i) => {
          if (!canonical.has(t.id)) canonical.set(t.id, t.id)
          if (canonical.get(t.id) !== t.id) return
          const rec = this.#init.store.get(t.id)
          if (rec !== undefined && isTerminal(rec.status)) return
          // It ended under this leader and the holder's copy crossed the update (which the outbox
          // keeps retrying until that holder has it): not run again.
          if (this.#finished.has(t.id)) { ended.push(t.id); return }
          toQueue.push({ ...t, attempts: Math.max(msg.attempts?.[i] ?? 0, rec?.attempts ?? 0) })
        })
        this.#enqueue(toQueue)
        return { kind: 'stored', canonical: [...canonical], ...(ended.length > 0 ? { ended } : {}) }
      }
      case 'replicate':
        return { kind: 'stored', canonical: [...this.#init.store.insert(msg.tasks)] }
      case 'assign':
        return this.#acceptAssignment(msg, from)
      case 'report':
        if (this.#gathering !== null) await this.#gathering
        return this.#onReport(msg, from)
      case 'updates':
        this.#apply(msg.updates)
        return { kind: 'ok' }
      case 'get': {
        const task = await this.#getLocal(msg.id, msg.waitMs)
        return { kind: 'task', task: task ?? null }
      }
      case 'cancel':
        if (this.#gathering !== null) await this.#gathering
        return this.#cancelAsLeader(msg.id)
      case 'abort':
        for (const id of msg.ids) {
          const run = this.#running.get(id)
          if (run !== undefined) run.abort.abort()
          else this.#rememberAborted(id)
        }
        return { kind: 'ok' }
      case 'inventory':
        return await this.#grantedInventory(msg.term, from)
    }
  }

  /**
   * Endings that could not be delivered to a member declared dead, per
   * member (bounded): sent again when it is back, so that holders on the two
   * sides of a partition, or a restarted holder, converge.
   */
  readonly #parked = new Map<string, Map<string, TaskUpdate>>()
  /** Where the endings this node may not have passed on before it (re)started begin. */
  readonly #startSeq: number

  #park (peer: string, dropped: readonly TaskUpdate[]): void {
    const ended = dropped.filter(u => isTerminal(u.status))
    if (ended.length === 0) return
    const lane = this.#parked.get(peer) ?? new Map<string, TaskUpdate>()
    this.#parked.set(peer, lane)
    for (const u of ended) {
      const kept = newestUpdate(lane.get(u.id), u)
      lane.delete(u.id) // re-inserted last: the oldest parked endings go first when the lane is full
      lane.set(u.id, kept)
    }
    for (const id of lane.keys()) {
      if (lane.size <= MAX_PARKED_PER_MEMBER) break
      lane.delete(id)
    }
  }

  #unpark (peer: string): void {
    const lane = this.#parked.get(peer)
    if (lane === undefined) return
    this.#parked.delete(peer)
    this.#outbox.push(peer, [...lane.values()])
  }

  /** Merges updates into the records held here. */
  #apply (updates: readonly TaskUpdate[]): void {
    const ended: TaskRecord[] = []
    const { changed, refused } = this.#init.store.applyUpdates(updates)
    // A different ending that loses to ours: some holder has it, so ours goes to every other holder.
    this.#passOnEndings(refused)
    for (const rec of changed) {
      if (isTerminal(rec.status)) {
        this.#unforwarded.delete(rec.id)
        ended.push(rec)
      }
      for (const w of this.#waiters.get(rec.id) ?? []) w(rec)
    }
    // The sender too, when it holds the task: a worker's own copy hears only from the others.
    this.#passOnEndings(ended)
  }

  /**
   * Holders pass on how a task ended to every other holder:
   * a sender that died may have reached only some of them, and two different
   * endings (after a fault) must settle on the same one everywhere. A holder
   * that already has it changes nothing and passes nothing on.
   */
  #passOnEndings (ended: readonly TaskRecord[]): void {
    const byHolder = new Map<string, TaskUpdate[]>()
    for (const rec of ended) {
      for (const h of new Set([rec.origin, ...rec.replicas])) {
        if (h === this.#id) continue
        const list = byHolder.get(h) ?? []
        list.push(updateOf(rec))
        byHolder.set(h, list)
      }
    }
    for (const [h, list] of byHolder) this.#outbox.push(h, list)
  }

  #sendUpdates (updates: TaskUpdate[], holders: readonly string[]): void {
    for (const h of new Set(holders)) {
      if (h === this.#id) this.#applySoon(updates)
      else this.#outbox.push(h, updates)
    }
  }

  /** Local updates of one turn of the event loop are written in one transaction. */
  #applySoon (updates: TaskUpdate[]): void {
    this.#localUpdates.push(...updates)
    if (this.#localUpdates.length > updates.length) return
    this.#init.clock.after(0, () => {
      const batch = this.#localUpdates
      this.#localUpdates = []
      try {
        this.#apply(batch)
      } catch (err) {
        this.#init.log.error({ err: (err as Error).message, updates: batch.length }, 'could not store task updates')
      }
    })
  }

  #localUpdates: TaskUpdate[] = []

  #deliver (to: string, msg: Extract<RpcRequest, { kind: 'report' | 'abort' }>): void {
    if (msg.kind === 'report') {
      this.#reports.push(...msg.reports)
      this.#init.clock.after(0, () => { void this.#flushReports() })
      return
    }
    if (to === this.#id) {
      void this.#handle(msg, this.#id)
      return
    }
    void this.#init.transport.request(to, msg, RPC_TIMEOUT_MS).catch((err: Error) => { this.#init.log.warn({ to, err: err.message }, 'abort not delivered') })
  }

  /** Attempt reports not yet acknowledged by a leader. */
  #reports: Array<Extract<RpcRequest, { kind: 'report' }>['reports'][number]> = []
  #reporting = false

  /**
   * Sends attempt reports to whoever leads when they are sent (a new leader
   * has adopted the old one's attempts). Without a leader, or when the
   * leader refuses or cannot be reached, they wait and go with the next
   * tick or leader change: a report is never dropped.
   */
  async #flushReports (): Promise<void> {
    if (this.#reporting || this.#reports.length === 0) return
    const leader = this.#init.cluster.core.leader()
    if (leader === null) return
    const batch = chunkBySize(this.#reports.slice(0, 2_000), this.#batchBytes())[0] ?? []
    this.#reports.splice(0, batch.length)
    this.#reporting = true
    let delivered = false
    try {
      const reply = leader.id === this.#id
        ? await this.#handle({ kind: 'report', reports: batch }, this.#id)
        : await this.#init.transport.request(leader.id, { kind: 'report', reports: batch }, RPC_TIMEOUT_MS)
      delivered = reply.kind === 'ok'
      if (!delivered) this.#init.log.debug({ leader: leader.name, reply: reply.kind === 'error' ? reply.code : reply.kind }, 'reports refused; will resend')
    } catch (err) {
      this.#init.log.debug({ leader: leader.name, err: (err as Error).message }, 'reports not delivered; will resend')
    } finally {
      this.#reporting = false
    }
    if (!delivered) {
      this.#reports.unshift(...batch)
      return
    }
    if (this.#reports.length > 0) this.#init.clock.after(0, () => { void this.#flushReports() })
  }

  #members (): Array<{ id: string, status: string, capacity: number, running: number, queued: number, types: string[] }> {
    return this.#init.cluster.snapshot().members
  }
}

function specOf (r: TaskSpec): TaskSpec {
  return { id: r.id, type: r.type, payload: r.payload, priority: r.priority, timeoutMs: r.timeoutMs, maxAttempts: r.maxAttempts, idempotencyKey: r.idempotencyKey, createdAt: r.createdAt, origin: r.origin, replicas: r.replicas }
}
