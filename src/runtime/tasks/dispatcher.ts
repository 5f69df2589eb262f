/**
 * The leader's part: on taking office it gathers the members' inventories
 * (the vote of its term, tallied by src/core/gather.ts), then feeds the pure
 * Scheduler, sends its assignments in batches per worker (each carrying the
 * term), takes in hand-overs and reports, and sends every state change to
 * the task's holders.
 */
import { trace, tracing } from '../../trace.ts'
import { leaderHasRoom } from '../../core/admission.ts'
import { tallyGather } from '../../core/gather.ts'
import type { GatherAnswer } from '../../core/gather.ts'
import { EndedMemory, classifyHandOver, holdsCopy } from '../../core/hand-over.ts'
import { Scheduler } from '../../core/scheduler.ts'
import type { Assignment } from '../../core/scheduler.ts'
import type { TypeLimit } from '../../core/type-limits.ts'
import { isTerminal, lostAttemptUpdate, retryOf, specOf } from '../../core/tasks.ts'
import type { TaskRecord, TaskSpec, TaskUpdate } from '../../core/tasks.ts'
import { MAX_ATTEMPTS } from '../../protocol/constants.ts'
import { refusal, refusesTerm } from '../../protocol/rpc-errors.ts'
import type { RpcReply, RpcRequest } from '../../protocol/rpc.ts'
import { chunkBySize } from '../chunks.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'
import { Dependencies } from './dependencies.ts'

type Report = Extract<RpcRequest, { kind: 'report' }>['reports'][number]
type HandOverRequest = Extract<RpcRequest, { kind: 'submit' }>

export class Dispatcher {
  readonly #ctx: TaskContext
  #scheduler: Scheduler | null = null
  /** The term the current scheduler dispatches in. */
  #schedulerTerm = 0
  /** Holders of each task this leader tracks. */
  readonly #holders = new Map<string, string[]>()
  /** Tasks that ended under this leader (so a late hand-over does not run one again). */
  readonly #ended = new EndedMemory(TASK_PATH.endedMemory)
  #gathering: Promise<void> | null = null
  #dispatchQueued = false
  /** The timer armed for the scheduler's next due time (a delayed task's runAt). */
  #due: { atMs: number, cancel: () => void } | null = null
  /** Retry generations this leader has begun, per task (a second retry of the same ending is refused). */
  readonly #retried = new Map<string, number>()
  /** Tasks waiting for their parents (src/runtime/tasks/dependencies.ts). */
  readonly #deps: Dependencies

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
    this.#deps = new Dependencies(ctx, {
      tracked: id => this.#scheduler?.has(id) ?? false,
      release: (spec, attempts, update) => { this.#distribute([update]); this.enqueue([{ ...spec, attempts }]) },
      distribute: updates => { this.#distribute(updates) }
    })
  }

  /** Tasks waiting in this leader's queue, or for their parents (0 when it does not lead). */
  get waiting (): number { return this.#scheduler === null ? 0 : this.#scheduler.waiting + this.#deps.size }
  /** Delayed tasks this leader holds until their runAt. */
  get scheduled (): number { return this.#scheduler?.scheduled ?? 0 }
  /** A new leader is gathering: it dispatches nothing and takes in no hand-over until done. */
  get gathering (): boolean { return this.#gathering !== null }

  /** A task handed over again to run again: it is no longer "ended under this leader". */
  forgetEnded (id: string): void { this.#ended.forget(id) }

  onLeaderChanged (): void {
    const { cluster, log, roles } = this.#ctx
    const leader = cluster.leader()
    const leads = leader?.id === this.#ctx.self
    const term = leader?.term ?? 0
    if (this.#scheduler !== null && (!leads || this.#schedulerTerm !== term)) {
      // No longer leader, or leader in a newer term: what this scheduler knew is gathered again.
      this.#scheduler = null
      this.#holders.clear()
      this.#ended.clear()
      this.#retried.clear()
      this.#deps.clear()
      this.#armDue()
      log.info(leads ? { term } : {}, leads ? 'leading in a newer term: gathering again' : 'stopped dispatching: no longer leader')
    }
    if (leads && this.#scheduler === null) {
      const scheduler = new Scheduler(this.#ctx.init.scheduler)
      for (const [type, limit] of this.#ctx.roles.limits.current()) scheduler.limiter.set(type, limit)
      this.#scheduler = scheduler
      this.#schedulerTerm = term
      const gathering: Promise<void> = this.#gather(scheduler, term).finally(() => {
        if (this.#gathering === gathering) this.#gathering = null
      })
      this.#gathering = gathering
    }
    // A new leader knows nothing yet: hand it every unfinished task held here.
    if (leader !== null) roles.handOver.offerAll()
  }

  /**
   * A new leader learns the state before it dispatches: every reachable
   * member reports the attempts it runs (adopted as they are, never
   * restarted) and the unfinished tasks it holds (queued unless some worker
   * runs them).
   */
  async #gather (scheduler: Scheduler, term: number): Promise<void> {
    const { cluster, clock, log, transport, roles } = this.#ctx
    const startedMs = clock.now()
    for (let round = 1; ; round++) {
      const answers = await Promise.all(cluster.reachableMembers().map(async (m): Promise<GatherAnswer> => {
        try {
          const r = m.id === this.#ctx.self
            ? roles.worker.inventory(term, this.#ctx.self)
            : await transport.request(m.id, { kind: 'inventory', term }, TASK_PATH.inventoryTimeoutMs)
          if (r.kind === 'inventory') return { kind: 'granted', from: m.id, running: r.running, held: r.held }
          return refusesTerm(r) ? { kind: 'refused', from: m.id } : { kind: 'silent', from: m.id }
        } catch (err) {
          log.warn({ member: m.id, err: (err as Error).message }, 'no inventory from member')
          return { kind: 'silent', from: m.id }
        }
      }))
      if (this.#scheduler !== scheduler) return
      const verdict = tallyGather(answers, cluster.quorum)
      if (verdict.kind === 'claim-newer-term') {
        log.warn({ term }, 'this term was granted to another leader; claiming a newer one')
        cluster.claimNewTerm(term)
        return
      }
      if (verdict.kind === 'ask-again') {
        // Not enough grants to be sure no other leader holds this term: nothing is dispatched yet.
        log.warn({ term, granted: verdict.granted, quorum: verdict.quorum, round }, 'too few members granted this term; asking again')
        await new Promise<void>(resolve => { clock.after(cluster.heartbeatIntervalMs, resolve) })
        if (this.#scheduler !== scheduler) return
        continue
      }
      const now = clock.now()
      // A member declared dead while we gathered has lost its attempts: they are not adopted.
      const reachable = new Set(cluster.reachableMembers().map(m => m.id))
      const { taken, updates, adopted, queued } = scheduler.takeOver(verdict.inventories, reachable, now, (spec, attempts) => this.#deps.hold(spec, attempts))
      for (const spec of taken) this.#addHolders(spec)
      this.#distribute(updates)
      log.info({ term, adopted, queued, failed: updates.length, tookMs: now - startedMs }, 'dispatching as leader')
      this.#ctx.init.onDispatching?.(term)
      this.#scheduleDispatch()
      this.#armDue()
      return
    }
  }

  /** A holder's hand-over (or an origin's submit to this leader): stored if this node holds them, and queued. */
  async takeHandOver (msg: HandOverRequest): Promise<RpcReply> {
    trace('leader.hand-over', msg.tasks[0]?.id)
    if (this.#gathering !== null) await this.#gathering
    const scheduler = this.#scheduler
    if (scheduler === null) return refusal('NOT_LEADER', 'this node does not lead')
    const { store, init, roles } = this.#ctx
    const incoming = msg.tasks.filter(t => !scheduler.has(t.id)).length
    if (!leaderHasRoom(this.waiting + scheduler.scheduled, incoming, init.scheduler.maxQueuedTasks)) return refusal('QUEUE_FULL', 'queue full')
    for (const id of msg.rerun ?? []) this.#ended.forget(id)
    // An origin's submit is answered with the first task of a key only when that one is accepted.
    const conflict = msg.accepted === true ? null : roles.intake.keyConflict(msg.tasks)
    if (conflict !== null) return refusal('KEY_UNSETTLED', conflict)
    // Store only what this node holds: a hand-over of another holder's task is queued, not copied.
    const stored = store.insert(msg.tasks.filter(t => holdsCopy(this.#ctx.self, t)))
    // Accepted tasks keep their ids: a key that two accepted tasks share (submitted to two nodes at once,
    // or under two leaders) runs both, as both were answered 202.
    const canonical = msg.accepted === true ? new Map<string, string>() : stored
    for (const t of msg.tasks) if (!canonical.has(t.id)) canonical.set(t.id, t.id)
    const { queue, ended, endedHere } = classifyHandOver(msg.tasks, msg.attempts, id => canonical.get(id) ?? id, id => store.get(id), id => this.#ended.has(id))
    // Offered unfinished, ended in the copy here: the offering holder missed the ending, which goes to it (and the other holders) now.
    if (endedHere.length > 0) roles.holders.passOnEndings(endedHere.flatMap(id => { const r = store.get(id); return r === undefined ? [] : [r] }))
    // A copy this node holds of a task that ended under it, but without the ending (it was stored
    // just now, after the ending went out): it catches up from the other holders.
    const behind = ended.filter(id => { const r = store.get(id); return r !== undefined && !isTerminal(r.status) })
    if (behind.length > 0) void this.#ctx.roles.handOver.catchUpEnded(behind)
    this.enqueue(queue, true)
    return { kind: 'stored', canonical: [...canonical], ...(ended.length > 0 ? { ended } : {}) }
  }

  /** This node leads and tracks the task (queued, running, or ended under it). */
  tracks (id: string): boolean {
    return this.#scheduler !== null && (this.#scheduler.has(id) || this.#deps.has(id))
  }

  /**
   * Queues tasks here (this node leads and has gathered). `dispatchNow`
   * (a hand-over): dispatched in this turn when no dispatch is queued yet,
   * so a lone task is assigned before its hand-over is answered, not a turn
   * later; hand-overs that follow in the same turn go together with the
   * dispatch queued after it.
   */
  enqueue (records: ReadonlyArray<TaskSpec & { attempts?: number }>, dispatchNow = false): void {
    trace('leader.enqueue', records[0]?.id)
    const scheduler = this.#scheduler
    if (scheduler === null) return
    const { store, clock, roles } = this.#ctx
    const now = clock.now()
    const lost: TaskUpdate[] = []
    // Ended under this leader (a copy held here missed the ending): never run again; the copy catches up.
    const ended = records.filter(r => this.#ended.has(r.id)).map(r => r.id)
    if (ended.length > 0) void roles.handOver.catchUpEnded(ended.filter(id => store.get(id) !== undefined))
    for (const r of records) {
      if (this.#ended.has(r.id)) continue
      this.#addHolders(r)
      // A task with parents waits for them (its parents' results then come back with it, see dependencies.ts).
      if (!scheduler.has(r.id) && this.#deps.hold(specOf(r), r.attempts ?? 0)) continue
      let result = scheduler.enqueue(specOf(r), r.attempts ?? 0, now)
      if (result === 'known') {
        const renewed = scheduler.renew(specOf(r), r.attempts ?? 0, now)
        if (renewed !== null) {
          result = renewed.result
          if (renewed.abortOn !== null) this.#abortOn(renewed.abortOn, [r.id], 'superseded')
          // A retried task with parents waits for them again: out of the queue (that cancel's update is not sent).
          if (result === 'queued' && this.#deps.hold(specOf(r), r.attempts ?? 0)) scheduler.cancel(r.id, now)
        }
      }
      if (result === 'exhausted') lost.push(lostAttemptUpdate(r, r.attempts ?? 0, now))
      else if (result !== 'queued' && !scheduler.has(r.id)) this.#holders.delete(r.id)
      // Already durable and acknowledged: never dropped, only delayed until the queue has room.
      if (result === 'full' && store.get(r.id) !== undefined) roles.handOver.offerLater([r.id])
    }
    this.#distribute(lost)
    if (dispatchNow && !this.#dispatchQueued) this.#dispatch()
    this.#scheduleDispatch()
    this.#armDue()
  }

  /**
   * A user's retry of a failed or cancelled task (src/core/tasks.ts retryOf):
   * the new generation is stored on the task's holders before it is queued
   * and answered, so that a leader change after the answer keeps it.
   */
  async retry (rec: TaskRecord, maxAttempts: number | undefined): Promise<RpcReply> {
    if (this.#gathering !== null) await this.#gathering
    const scheduler = this.#scheduler
    if (scheduler === null) return refusal('NOT_LEADER', 'this node does not lead')
    const { store, transport, clock, roles } = this.#ctx
    const here = store.get(rec.id)
    const newer = here !== undefined && ((here.retries ?? 0) > (rec.retries ?? 0) || (!isTerminal(here.status) && (here.retries ?? 0) === (rec.retries ?? 0)))
    if (this.tracks(rec.id) || newer || (this.#retried.get(rec.id) ?? 0) > (rec.retries ?? 0)) {
      return { kind: 'retry', outcome: 'not-retryable', message: `task "${rec.id}" is not ended (it was retried already, or runs)`, copies: 0, maxAttempts: rec.maxAttempts }
    }
    const verdict = retryOf(rec, maxAttempts, MAX_ATTEMPTS, clock.now())
    if (!verdict.ok) return { kind: 'retry', outcome: verdict.reason, message: verdict.message, copies: 0, maxAttempts: rec.maxAttempts }
    this.#retried.set(rec.id, verdict.spec.retries ?? 0)
    // Persist, then act: the holders store the new generation before the task runs again.
    const holders = [...new Set([rec.origin, ...rec.replicas])]
    const stored = await Promise.allSettled(holders.map(async h => {
      if (h === this.#ctx.self) { roles.holders.apply([verdict.update]); return }
      const r = await transport.request(h, { kind: 'updates', updates: [verdict.update] }, TASK_PATH.rpcTimeoutMs)
      if (r.kind !== 'ok') throw new Error(r.kind === 'error' ? r.message : r.kind)
    }))
    const copies = stored.filter(r => r.status === 'fulfilled').length
    // A holder that missed it hears it later (the outbox retries while it lives).
    holders.forEach((h, i) => { if (stored[i]!.status === 'rejected') roles.holders.send([verdict.update], [h]) })
    if (this.#scheduler !== scheduler) return refusal('NOT_LEADER', 'this node stopped leading during the retry')
    if (copies === 0) return refusal('INTERNAL', 'no holder of the task could store the retry; retry later')
    this.#ended.forget(rec.id)
    this.enqueue([{ ...verdict.spec, attempts: verdict.attempts }])
    return { kind: 'retry', outcome: 'retried', status: verdict.update.status === 'scheduled' || verdict.update.status === 'waiting' ? verdict.update.status : 'queued', message: `task "${rec.id}" queued again after ${verdict.attempts} attempts (now at most ${verdict.spec.maxAttempts})`, copies, maxAttempts: verdict.spec.maxAttempts }
  }

  /** Attempt reports from a worker. */
  async onReports (reports: readonly Report[], from: string): Promise<RpcReply> {
    if (this.#gathering !== null) await this.#gathering
    const scheduler = this.#scheduler
    if (scheduler === null) return refusal('NOT_LEADER', 'this node does not lead')
    const now = this.#ctx.clock.now()
    const updates: TaskUpdate[] = []
    if (tracing) for (const r of reports) trace('leader.report', r.id, r.event)
    for (const r of reports) {
      if (r.event === 'started') updates.push(...scheduler.onStarted(r.id, from, r.attempt, r.atMs, now))
      else if (r.event === 'returned') updates.push(...scheduler.giveBack(r.id, from, r.attempt, now))
      else if (r.outcome !== undefined) {
        const ended = scheduler.onResult(r.id, from, r.attempt, r.outcome, r.atMs, r.progress ?? null, r.startedAt)
        const late = ended.length === 0 && r.outcome.ok ? scheduler.lateSuccess(r.id, from, r.attempt, r.outcome.result, r.progress ?? null, r.startedAt ?? null, r.atMs) : null
        updates.push(...ended, ...(late?.updates ?? []))
        if (late?.abortOn != null) this.#abortOn(late.abortOn, [r.id], 'superseded')
      }
    }
    this.#distribute(updates)
    this.#scheduleDispatch()
    return { kind: 'ok' }
  }

  /** Cancels a task this leader tracks. */
  async cancel (id: string): Promise<RpcReply> {
    if (this.#gathering !== null) await this.#gathering
    if (this.#scheduler !== null && this.#deps.cancel(id) !== null) return { kind: 'cancel', outcome: 'cancelled' }
    const r = this.#scheduler?.cancel(id, this.#ctx.clock.now()) ?? null
    if (r === null) return { kind: 'cancel', outcome: 'unknown' }
    this.#distribute(r.updates)
    if (r.abortOn !== null) {
      this.#abortOn(r.abortOn, [id])
      return { kind: 'cancel', outcome: 'aborting' }
    }
    return { kind: 'cancel', outcome: 'cancelled' }
  }

  /** A member died, or came back as a new incarnation: the attempts it had are lost. */
  onWorkerGone (id: string): void {
    const scheduler = this.#scheduler
    if (scheduler === null) return
    this.#distribute(scheduler.onWorkerLost(id, this.#ctx.clock.now()))
    this.#scheduleDispatch()
  }

  /** A type's limit changed: enforced from the next dispatch. */
  applyLimit (type: string, limit: TypeLimit): void {
    this.#scheduler?.limiter.set(type, limit)
    this.#scheduleDispatch()
  }

  /** Each limited type's limit, and every type's queued, running and limited counts (RPC `types`). */
  async typeRows (): Promise<RpcReply> {
    if (this.#gathering !== null) await this.#gathering
    const scheduler = this.#scheduler
    if (scheduler === null) return refusal('NOT_LEADER', 'this node does not lead')
    const counts = scheduler.typeCounts(this.#ctx.clock.now())
    return { kind: 'types', types: [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([type, c]) => ({ type, ...scheduler.limiter.limit(type), ...c })) }
  }

  /** Delayed tasks now due, timeouts and retry delays of the tasks this leader tracks. */
  tick (): void {
    const scheduler = this.#scheduler
    if (scheduler === null) return
    const updates = scheduler.tick(this.#ctx.clock.now())
    if (updates.length > 0) this.#distribute(updates)
    this.#deps.tick()
    if (scheduler.waiting > 0) this.#scheduleDispatch()
    this.#armDue()
  }

  /** Arms one timer for the scheduler's next due time (a delayed task's runAt), so it is queued then, not on the next periodic tick. */
  #armDue (): void {
    const due = this.#gathering === null ? (this.#scheduler?.nextDueMs(this.#ctx.clock.now()) ?? null) : null
    if (due === this.#due?.atMs) return
    this.#due?.cancel()
    this.#due = null
    if (due === null) return
    const { clock } = this.#ctx
    // A timer may fire a millisecond before the wall clock reaches its time: the tick then finds nothing due and arms again.
    this.#due = { atMs: due, cancel: clock.after(Math.max(1, due - clock.now()), () => { this.#due = null; this.tick() }) }
  }

  #abortOn (worker: string, ids: string[], reason: 'cancel' | 'superseded' = 'cancel'): void {
    if (worker === this.#ctx.self) {
      this.#ctx.roles.worker.abort(ids, reason)
      return
    }
    void this.#ctx.transport.request(worker, { kind: 'abort', ids, ...(reason === 'cancel' ? {} : { reason }) }, TASK_PATH.rpcTimeoutMs).catch((err: Error) => { this.#ctx.log.warn({ to: worker, err: err.message }, 'abort not delivered') })
  }

  /**
   * Sends scheduler updates to each task's holders (applying them here when
   * this node holds the task): endings (and releases) at once, passing states settled (see
   * HolderSync.sendSettled).
   */
  #distribute (updates: readonly TaskUpdate[]): void {
    const passing = new Map<string, TaskUpdate[]>()
    // Endings (and releases) go to all of a task's holders in one send, so that a copy held here takes
    // them before the other holders are sent them (HolderSync.send): grouped by the list of holders.
    const atOnce = new Map<string, { holders: string[], updates: TaskUpdate[] }>()
    for (const u of updates) {
      const ended = isTerminal(u.status)
      const holders = this.#holders.get(u.id) ?? []
      // The parents' results (a task's release) go at once too: a later update need not carry them.
      if (ended || u.parents !== undefined) {
        if (holders.length > 0) {
          const key = holders.join(' ')
          const group = atOnce.get(key)
          if (group === undefined) atOnce.set(key, { holders, updates: [u] })
          else group.updates.push(u)
        }
      } else {
        for (const h of holders) {
          const list = passing.get(h)
          if (list === undefined) passing.set(h, [u])
          else list.push(u)
        }
      }
      if (ended) {
        this.#holders.delete(u.id)
        this.#ended.remember(u.id)
      }
    }
    // Passing states first: an ending sent after them drops those it supersedes.
    for (const [holder, list] of passing) this.#ctx.roles.holders.sendSettled(list, [holder])
    for (const { holders, updates: list } of atOnce.values()) this.#ctx.roles.holders.send(list, holders)
    // Tasks waiting for one of these to end are released, or fail (and their own waiting children with them).
    this.#deps.ended(updates)
  }

  /** Holders' copies may list different replicas (an origin that retried lists every node it tried): the leader keeps them all. */
  #addHolders (spec: TaskSpec): void {
    const known = this.#holders.get(spec.id) ?? []
    this.#holders.set(spec.id, [...new Set([...known, spec.origin, ...spec.replicas])])
  }

  #scheduleDispatch (): void {
    if (this.#dispatchQueued) return
    this.#dispatchQueued = true
    this.#ctx.clock.after(0, () => {
      this.#dispatchQueued = false
      this.#dispatch()
    })
  }

  #dispatch (): void {
    if (this.#gathering !== null) return // #gather dispatches when it is done
    const scheduler = this.#scheduler
    const { cluster, clock } = this.#ctx
    const leader = cluster.leader()
    if (scheduler === null || leader === null || leader.id !== this.#ctx.self) return
    // Healthy members are the workers (a TaskMember is a WorkerSlots: id, capacity, types).
    const { updates, assignments } = scheduler.dispatch(cluster.healthyMembers(), clock.now())
    if (tracing) for (const [, batch] of assignments) trace('leader.dispatched', batch[0]?.spec.id)
    this.#distribute(updates)
    for (const [worker, batch] of assignments) {
      for (const part of chunkBySize(batch, this.#ctx.batchBytes)) this.#assign(worker, leader.term, part)
    }
    // A type held back by its rate is looked at again at its next token.
    this.#armDue()
  }

  #assign (worker: string, term: number, batch: Assignment[]): void {
    const msg: Extract<RpcRequest, { kind: 'assign' }> = { kind: 'assign', term, leader: this.#ctx.self, tasks: batch.map(a => ({ spec: a.spec, attempt: a.attempt })) }
    const reply = worker === this.#ctx.self ? Promise.resolve(this.#ctx.roles.worker.accept(msg, this.#ctx.self)) : this.#ctx.transport.request(worker, msg, TASK_PATH.rpcTimeoutMs)
    reply.then(r => {
      if (r.kind !== 'ok') this.#failAssignment(worker, batch, r.kind === 'error' ? `${r.code}: ${r.message}` : r.kind, false)
    }, (err: Error) => { this.#failAssignment(worker, batch, err.message, true) })
  }

  /** `unacknowledged`: no answer came (a timeout, a reset), so the worker may have taken the attempts all the same. */
  #failAssignment (worker: string, batch: Assignment[], why: string, unacknowledged: boolean): void {
    const scheduler = this.#scheduler
    if (scheduler === null) return
    this.#ctx.log.warn({ worker, tasks: batch.length, why }, 'assignment not accepted')
    const now = this.#ctx.clock.now()
    const updates = batch.flatMap(a => scheduler.onResult(a.spec.id, worker, a.attempt, { ok: false, error: `assignment not accepted: ${why}`, unacknowledged }, now))
    this.#distribute(updates)
    this.#scheduleDispatch()
  }
}
