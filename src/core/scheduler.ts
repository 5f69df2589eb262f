/**
 * The leader's dispatcher, pure: delayed tasks held until their runAt (a
 * heap of due times: `nextDueMs` tells the runtime when to tick next), a
 * priority queue (FIFO within a priority), placement by the configured
 * strategy on a live worker that supports the type, meets the task's
 * required labels and has room (placement.ts), retries with exponential backoff, and a watchdog for attempts
 * that never report. Stepped with events and `nowMs`; returns updates (to
 * persist and send to the task's holders) and assignments (to send to
 * workers, batched per worker). It never touches the network or a clock.
 */
import { RunTimes, WIDE_WINDOW } from './run-times.ts'
import { generationOf, isDelayed, retryDelayMs } from './tasks.ts'
import { takeOver } from './take-over.ts'
import type { Inventory, TakeOver } from './take-over.ts'
import type { TaskSpec, TaskStatus, TaskUpdate } from './tasks.ts'
import { Fifo } from './fifo.ts'
import { DueHeap } from './due-heap.ts'
import { Placement } from './placement.ts'
import type { PlacementLoad, PlacementStrategy, PlacementWorker } from './placement.ts'
import { TypeLimiter, countByType } from './type-limits.ts'
import type { TypeCounts } from './type-limits.ts'

export interface SchedulerConfig {
  /** Tasks the cluster may hold waiting (scheduled, queued or retrying) before submits are refused. */
  maxQueuedTasks: number
  retryBaseMs: number
  retryMaxMs: number
  /** Extra time past a task's timeout before the leader gives up on hearing from its worker. */
  resultGraceMs: number
  /**
   * Attempts the leader keeps outstanding per task slot of a worker. Above 1,
   * a worker holds its next task while it runs the current one, so a slot
   * never idles for a round trip to the leader.
   */
  outstandingPerSlot: number
  /** How the leader chooses among the workers that can take a task (see placement.ts); default least-loaded. */
  placement?: PlacementStrategy
}

/** A worker: its id, slots, task types and labels. */
export type WorkerSlots = PlacementWorker

export interface Assignment {
  spec: TaskSpec
  attempt: number
}

export interface Decisions {
  updates: TaskUpdate[]
  /** Worker id -> the tasks to send it in one batch. */
  assignments: Map<string, Assignment[]>
}

export type { Inventory, TakeOver }

export type EnqueueResult = 'queued' | 'known' | 'full' | 'exhausted'

interface Entry {
  spec: TaskSpec
  status: TaskStatus
  attempts: number
  worker: string | null
  startedAt: number | null
  /** When an assigned attempt is given up if no result arrived; when a retry may run; when a scheduled task is due. */
  deadlineMs: number
  /** A cancel reached it while an attempt ran: a failed attempt ends it as cancelled, not retried. */
  cancelRequested?: boolean
  /** A worker whose assignment of an attempt went unanswered (timed out, reset): it may be running it still. */
  unacknowledgedOn?: string
}

export class Scheduler {
  readonly #config: SchedulerConfig
  readonly #tasks = new Map<string, Entry>()
  /** priority -> FIFO of task ids waiting to be placed. */
  readonly #queues = new Map<number, Fifo<string>>()
  #priorities: number[] = []
  #waiting = 0
  /** Delayed tasks not yet due, by due time (entries whose task moved on are skipped when they surface). */
  readonly #due = new DueHeap()
  #scheduled = 0
  readonly #load = new Map<string, number>()
  readonly #placement: Placement
  readonly #runTimes = new RunTimes()
  /** Per-type limits (src/core/type-limits.ts); types whose waiting tasks were held back by their rate in the last dispatch. */
  readonly limiter = new TypeLimiter()
  readonly #rateLimited = new Set<string>()

  constructor (config: SchedulerConfig) {
    this.#config = config
    this.#placement = new Placement(config.placement)
  }

  /** Tasks waiting for a slot (queued or retrying). */
  get waiting (): number { return this.#waiting }

  /** Delayed tasks held until their runAt. */
  get scheduled (): number { return this.#scheduled }

  /**
   * When the earliest delayed task is due, or a type held back by its rate
   * has its next token (null: neither); `tick` then queues what is due, and a
   * dispatch places what its limit allows.
   */
  nextDueMs (nowMs: number): number | null {
    let next: number | null = null
    for (const type of this.#rateLimited) {
      const at = this.limiter.nextTokenMs(type, nowMs) ?? nowMs
      if (next === null || at < next) next = at
    }
    for (;;) {
      const top = this.#due.peek()
      if (top === undefined) return next
      if (this.#tasks.get(top.id)?.status === 'scheduled') return next === null ? top.atMs : Math.min(next, top.atMs)
      this.#due.pop()
    }
  }

  /** Per type: tasks waiting, attempts assigned or running, and the waiting ones its limit holds back now (see type-limits.ts). */
  typeCounts (nowMs: number): Map<string, TypeCounts> {
    return countByType(this.#tasks.values(), this.limiter, nowMs)
  }

  /** Tasks this scheduler tracks that are not terminal. */
  get active (): number { return this.#tasks.size }

  has (id: string): boolean { return this.#tasks.has(id) }

  /** Attempts this leader has placed on `worker` (running or held there) and not yet heard the end of. */
  running (worker: string): number { return this.#load.get(worker) ?? 0 }

  status (id: string): TaskStatus | undefined { return this.#tasks.get(id)?.status }

  /** Takes a task in (a new submit, or a handover of an unfinished one). `exhausted`: it has used all its attempts (one was lost); the caller ends it as failed. */
  enqueue (spec: TaskSpec, attempts: number, nowMs: number): EnqueueResult {
    if (this.#tasks.has(spec.id)) return 'known'
    if (attempts >= spec.maxAttempts) return 'exhausted'
    if (this.#waiting + this.#scheduled >= this.#config.maxQueuedTasks) return 'full'
    if (attempts === 0 && isDelayed(spec) && spec.runAt! > nowMs) {
      this.#tasks.set(spec.id, { spec, status: 'scheduled', attempts, worker: null, startedAt: null, deadlineMs: spec.runAt! })
      this.#due.push({ atMs: spec.runAt!, id: spec.id })
      this.#scheduled++
      return 'queued'
    }
    this.#tasks.set(spec.id, { spec, status: 'queued', attempts, worker: null, startedAt: null, deadlineMs: nowMs })
    this.#push(spec)
    return 'queued'
  }

  /**
   * A newer generation (a user's retry) of a task this leader tracks, heard
   * through a holder after an earlier leader decided it: the task waits
   * again under it, and an attempt of the old generation is given up (its
   * worker is returned, to be told to stop). Null when not newer.
   */
  renew (spec: TaskSpec, attempts: number, nowMs: number): { result: EnqueueResult, abortOn: string | null } | null {
    const e = this.#tasks.get(spec.id)
    if (e === undefined || (spec.retries ?? 0) <= (e.spec.retries ?? 0)) return null
    const abortOn = (e.status === 'assigned' || e.status === 'running') ? e.worker : null
    if (abortOn !== null) this.#release(abortOn, e.spec.type)
    // A stale place in a queue or the due heap is skipped when it surfaces (the entry it names moved on).
    if (e.status === 'queued' || e.status === 'retrying') this.#waiting--
    if (e.status === 'scheduled') this.#scheduled--
    this.#tasks.delete(spec.id)
    return { result: this.enqueue(spec, attempts, nowMs), abortOn }
  }

  /**
   * Takes over an attempt that a live worker is running (or holds) for a
   * previous leader: it is tracked as this leader's own, never queued again.
   */
  adopt (spec: TaskSpec, worker: string, attempt: number, startedAt: number | null, nowMs: number): boolean {
    if (this.#tasks.has(spec.id)) return false
    const running = startedAt !== null
    this.#tasks.set(spec.id, {
      spec,
      status: running ? 'running' : 'assigned',
      attempts: attempt,
      worker,
      startedAt,
      // The watchdog runs on this leader's clock; the worker's startedAt is only recorded. An attempt
      // held but not begun may wait behind a whole window (a wide one, for all this leader knows).
      deadlineMs: nowMs + (running ? 1 : Math.max(this.#config.outstandingPerSlot, WIDE_WINDOW)) * spec.timeoutMs + this.#config.resultGraceMs
    })
    this.#load.set(worker, this.running(worker) + 1)
    this.limiter.adopt(spec.type)
    return true
  }

  /** A new leader's take-over from the members' inventories (see take-over.ts). */
  takeOver (inventories: readonly Inventory[], live: ReadonlySet<string>, nowMs: number, gate?: (spec: TaskSpec, attempts: number) => boolean): TakeOver {
    return takeOver(this, inventories, live, nowMs, gate)
  }

  /**
   * The worker began attempt `attempt` at `atMs` (its clock, recorded as
   * startedAt); the watchdog runs on this leader's clock, `nowMs`.
   */
  onStarted (id: string, worker: string, attempt: number, atMs: number, nowMs: number): TaskUpdate[] {
    const e = this.#tasks.get(id)
    if (e === undefined || e.worker !== worker || e.attempts !== attempt || e.status !== 'assigned') return []
    e.status = 'running'
    e.startedAt = atMs
    e.deadlineMs = nowMs + e.spec.timeoutMs + this.#config.resultGraceMs
    return [this.#update(e, { startedAt: atMs })]
  }

  /**
   * A success of an attempt this leader had already given up on (a late
   * result after the watchdog, or a lost assignment reply): the task is done
   * after all. Returns its end, and the worker whose newer attempt should be
   * aborted (null when none runs).
   */
  lateSuccess (id: string, worker: string, attempt: number, result: unknown, progress: unknown, startedAt: number | null, atMs: number): { updates: TaskUpdate[], abortOn: string | null } | null {
    const e = this.#tasks.get(id)
    if (e === undefined) return null
    // Any attempt's success ends the task, even one already given up on; the record names that attempt,
    // exactly as the worker's own update to the holders does.
    let abortOn: string | null = null
    if ((e.status === 'assigned' || e.status === 'running') && e.worker !== null) {
      if (e.worker !== worker) abortOn = e.worker
      this.#release(e.worker, e.spec.type)
    } else {
      this.#unwait(e)
    }
    e.worker = worker
    e.attempts = attempt
    e.startedAt = startedAt
    return { updates: [this.#finish(e, 'succeeded', { result, error: null, progress }, atMs)], abortOn }
  }

  /**
   * A worker reported the end of an attempt at `atMs` (its clock, so that
   * every holder records the same times), with its last progress. Stale
   * reports (another attempt, another worker) are ignored.
   */
  onResult (id: string, worker: string, attempt: number, outcome: { ok: true, result: unknown } | { ok: false, error: string, cancelled?: boolean, unacknowledged?: boolean }, atMs: number, progress: unknown = null, startedAt?: number | null): TaskUpdate[] {
    const e = this.#tasks.get(id)
    if (e === undefined || e.worker !== worker || e.attempts !== attempt || (e.status !== 'assigned' && e.status !== 'running')) return []
    this.#release(worker, e.spec.type)
    // The worker's own start time: the record is then the same as the one the worker sends the holders.
    if (startedAt !== undefined) e.startedAt = startedAt
    if (e.startedAt !== null) this.#runTimes.observe(e.spec.type, atMs - e.startedAt)
    if (outcome.ok) return [this.#finish(e, 'succeeded', { result: outcome.result, error: null, progress }, atMs)]
    if (outcome.cancelled === true) return [this.#finish(e, 'cancelled', { error: outcome.error, progress }, atMs)]
    if (outcome.unacknowledged === true) e.unacknowledgedOn = worker
    return [this.#failAttempt(e, outcome.error, atMs)]
  }

  /**
   * Cancels a task: a waiting one ends at once; a running one gets
   * `{ worker }` back, to be told to abort (its result then ends it). A
   * waiting one whose last assignment went unanswered ends here too, and the
   * worker that may be running it anyway is named to be told to abort: its
   * success, if it comes first, is the task's ending at the holders (a
   * result outranks a cancel), so the cancel is not yet final.
   */
  cancel (id: string, nowMs: number): { updates: TaskUpdate[], abortOn: string | null } | null {
    const e = this.#tasks.get(id)
    if (e === undefined) return null
    if (e.status === 'assigned' || e.status === 'running') {
      e.cancelRequested = true
      return { updates: [], abortOn: e.worker }
    }
    this.#unwait(e)
    const abortOn = e.unacknowledgedOn ?? null
    return { updates: [this.#finish(e, 'cancelled', { error: 'cancelled by request' }, nowMs)], abortOn }
  }

  /**
   * A draining worker gave back an attempt it never began: the task waits
   * again, first in line, as if that attempt had not been assigned (it costs
   * no attempt). One a user cancelled meanwhile ends as cancelled.
   */
  giveBack (id: string, worker: string, attempt: number, nowMs: number): TaskUpdate[] {
    const e = this.#tasks.get(id)
    if (e === undefined || e.worker !== worker || e.attempts !== attempt || (e.status !== 'assigned' && e.status !== 'running')) return []
    this.#release(worker, e.spec.type)
    if (e.cancelRequested === true) return [this.#finish(e, 'cancelled', { error: 'cancelled by request' }, nowMs)]
    Object.assign(e, { status: 'queued', attempts: attempt - 1, worker: null, startedAt: null })
    if (!this.#queues.has(e.spec.priority)) this.#push(e.spec)
    else { this.#waiting++; this.#requeueFront(e.spec.priority, [id]) }
    return []
  }

  /** A worker died: its attempts failed; they retry if attempts remain. */
  onWorkerLost (worker: string, nowMs: number): TaskUpdate[] {
    const out: TaskUpdate[] = []
    for (const e of this.#tasks.values()) {
      if (e.worker === worker && (e.status === 'assigned' || e.status === 'running')) {
        this.#release(worker, e.spec.type)
        out.push(this.#failAttempt(e, `worker ${worker} was lost`, nowMs))
      }
    }
    this.#load.delete(worker)
    return out
  }

  /** Queues delayed tasks that are due, moves due retries back to the queue and fails attempts whose worker never reported. */
  tick (nowMs: number): TaskUpdate[] {
    const out: TaskUpdate[] = []
    for (let top = this.#due.peek(); top !== undefined && top.atMs <= nowMs; top = this.#due.peek()) {
      this.#due.pop()
      const e = this.#tasks.get(top.id)
      if (e === undefined || e.status !== 'scheduled') continue
      e.status = 'queued'
      this.#scheduled--
      this.#push(e.spec)
      out.push(this.#update(e, {}))
    }
    for (const e of this.#tasks.values()) {
      if (e.status === 'retrying' && nowMs >= e.deadlineMs) {
        e.status = 'queued'
        this.#waiting--
        this.#push(e.spec)
        out.push(this.#update(e, {}))
      } else if ((e.status === 'assigned' || e.status === 'running') && nowMs >= e.deadlineMs && e.worker !== null) {
        this.#release(e.worker, e.spec.type)
        out.push(this.#failAttempt(e, `no result from worker within ${e.spec.timeoutMs + this.#config.resultGraceMs} ms`, nowMs))
      }
    }
    return out
  }

  /** Places waiting tasks on workers with free slots, least loaded first. */
  dispatch (workers: readonly WorkerSlots[], nowMs: number): Decisions {
    const decisions: Decisions = { updates: [], assignments: new Map() }
    this.#rateLimited.clear()
    if (workers.length === 0 || this.#waiting === 0) return decisions
    const ordered = [...workers].sort((a, b) => (a.id < b.id ? -1 : 1))
    const widest = this.#runTimes.widest(this.#config.outstandingPerSlot)
    let free = ordered.reduce((n, w) => n + Math.max(0, w.capacity * widest - this.running(w.id)), 0)
    for (const priority of this.#priorities) {
      const queue = this.#queues.get(priority)
      if (queue === undefined) continue
      const skipped: string[] = []
      while (free > 0 && queue.size > 0) {
        const id = queue.shift()!
        const e = this.#tasks.get(id)
        if (e === undefined || e.status !== 'queued') continue
        // Held back by its type's cluster-wide limit: it keeps its place (a rate-limited type is looked at again at its next token).
        if (!this.limiter.admits(e.spec.type, nowMs)) {
          skipped.push(id)
          if (this.limiter.nextTokenMs(e.spec.type, nowMs) !== null) this.#rateLimited.add(e.spec.type)
          continue
        }
        const worker = this.#place(ordered, e.spec)
        if (worker === null) { skipped.push(id); continue }
        this.limiter.take(e.spec.type, nowMs)
        free--
        this.#waiting--
        this.#load.set(worker.id, this.running(worker.id) + 1)
        e.status = 'assigned'
        e.worker = worker.id
        e.attempts += 1
        e.startedAt = null
        // Not started yet: it may wait behind the worker's other attempts of the same slot.
        e.deadlineMs = nowMs + this.#window(e.spec.type) * e.spec.timeoutMs + this.#config.resultGraceMs
        decisions.updates.push(this.#update(e, {}))
        const batch = decisions.assignments.get(worker.id) ?? []
        batch.push({ spec: e.spec, attempt: e.attempts })
        decisions.assignments.set(worker.id, batch)
      }
      // Tasks no worker could take now keep their place at the front, in order.
      if (skipped.length > 0) this.#requeueFront(priority, skipped)
      if (free === 0) break
    }
    return decisions
  }

  /** See placement.ts: the configured strategy, among the workers that run the type, meet the task's labels and have room. */
  #place (workers: readonly WorkerSlots[], spec: TaskSpec): WorkerSlots | null {
    return this.#placement.place(workers, spec, this.#placementLoad)
  }

  readonly #placementLoad: PlacementLoad = { running: id => this.running(id), window: type => this.#window(type) }

  /** Attempts per slot a worker may hold of this type (see run-times.ts). */
  #window (type: string): number {
    return this.#runTimes.window(type, this.#config.outstandingPerSlot)
  }

  #push (spec: TaskSpec): void {
    let q = this.#queues.get(spec.priority)
    if (q === undefined) {
      q = new Fifo()
      this.#queues.set(spec.priority, q)
      this.#priorities = [...this.#queues.keys()].sort((a, b) => b - a)
    }
    q.push(spec.id)
    this.#waiting++
  }

  #requeueFront (priority: number, ids: string[]): void {
    const q = this.#queues.get(priority)!
    const rest: string[] = []
    for (let id = q.shift(); id !== undefined; id = q.shift()) rest.push(id)
    for (const id of [...ids, ...rest]) q.push(id)
  }

  /** A task that was waiting (scheduled, queued or retrying) stops waiting. */
  #unwait (e: Entry): void {
    if (e.status === 'scheduled') this.#scheduled--
    else if (e.status === 'queued' || e.status === 'retrying') this.#waiting--
  }

  #release (worker: string, type: string): void {
    this.limiter.release(type)
    const n = this.running(worker)
    if (n <= 1) this.#load.delete(worker)
    else this.#load.set(worker, n - 1)
  }

  #failAttempt (e: Entry, error: string, nowMs: number): TaskUpdate {
    if (e.cancelRequested === true) return this.#finish(e, 'cancelled', { error: 'cancelled by request' }, nowMs)
    if (e.attempts >= e.spec.maxAttempts) return this.#finish(e, 'failed', { error }, nowMs)
    e.status = 'retrying'
    e.deadlineMs = nowMs + retryDelayMs(e.attempts, this.#config.retryBaseMs, this.#config.retryMaxMs)
    this.#waiting++
    return this.#update(e, { error })
  }

  #finish (e: Entry, status: TaskStatus, fields: { result?: unknown, error: string | null, progress?: unknown }, nowMs: number): TaskUpdate {
    e.status = status
    this.#tasks.delete(e.spec.id)
    return this.#update(e, { ...fields, finishedAt: nowMs })
  }

  #update (e: Entry, fields: Partial<TaskUpdate>): TaskUpdate {
    return {
      id: e.spec.id,
      status: e.status,
      attempts: e.attempts,
      worker: e.worker,
      progress: null,
      result: null,
      error: null,
      startedAt: e.startedAt,
      finishedAt: null,
      ...generationOf(e.spec),
      ...fields
    }
  }
}
