/**
 * The worker's part: runs the attempts a leader assigns (after the fencing
 * verdict of src/core/fencing.ts, and once the grant of that term is on
 * disk), reports them to whoever leads, and sends progress and results
 * straight to the task's holders. Also answers a new leader's inventory.
 */
import { trace } from '../../trace.ts'
import { fenceAssignment, fenceInventory } from '../../core/fencing.ts'
import { generationOf, specOf } from '../../core/tasks.ts'
import type { TaskSpec } from '../../core/tasks.ts'
import { refusal } from '../../protocol/rpc-errors.ts'
import type { RpcReply, RpcRequest } from '../../protocol/rpc.ts'
import { firstChunkBySize } from '../chunks.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

type Report = Extract<RpcRequest, { kind: 'report' }>['reports'][number]
type Assign = Extract<RpcRequest, { kind: 'assign' }>

/** An attempt assigned here: held in the pool's queue until `started` (or given back unbegun by a drain). */
interface RunningAttempt {
  spec: TaskSpec
  attempt: number
  abort: AbortController
  started: boolean
  startedAt: number | null
  givenBack: boolean
  /** Stopped because another attempt of the task succeeded (not a cancel). */
  superseded: boolean
}

export class Worker {
  readonly #ctx: TaskContext
  readonly #running = new Map<string, RunningAttempt>()
  /** Aborts that arrived before their assignment (kept for a while). */
  readonly #aborted = new Map<string, number>()
  /** Attempt reports not yet acknowledged by a leader. */
  #reports: Report[] = []
  /**
   * Attempts that ended here whose result no leader has acknowledged yet:
   * a new leader's inventory lists them as running, so it adopts them and
   * takes their result from the report that follows, instead of running
   * them again because the result had not yet reached the holders when it
   * gathered (a leader SIGKILLed under load; failover.test.ts).
   */
  readonly #unreported = new Map<string, { spec: TaskSpec, attempt: number, startedAt: number | null }>()
  #reporting = false
  /** A flush of the reports is due after this turn (see report). */
  #flushArmed = false
  /** The term and leader of the last assignment accepted here: fencing makes it the leader this node granted that term to. */
  #assigner: { term: number, leader: string } | null = null
  /** That leader did not take a batch of reports (it stepped down, or is out of reach): they go to whoever leads. */
  #assignerFailed = false
  /** The node is stopping: its aborted attempts are not reported (they run again elsewhere). */
  #stopping = false
  /** The node is draining: it begins no attempt, and gives back every one it has not begun. */
  #draining = false

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
  }

  /** Attempts that have begun to run here. */
  get running (): number {
    let n = 0
    for (const r of this.#running.values()) if (r.started) n++
    return n
  }

  /** Attempts held here (begun or not), and reports not yet delivered: a drain is done when both are 0. */
  get busy (): number {
    const { cluster, self } = this.#ctx
    // Reports wait for a leader; a node with no other member left has none to wait for (its endings are on disk).
    const alone = cluster.reachableMembers().every(m => m.id === self)
    return this.#running.size + (alone ? 0 : this.#reports.length + (this.#reporting ? 1 : 0))
  }

  /**
   * The node drains: attempts that have begun here run to their end; every
   * one still waiting in the pool's queue is dropped and given back to the
   * leader (a `returned` report), which places it elsewhere at once without
   * counting an attempt. Assignments that arrive later are given back too.
   */
  beginDrain (): void {
    this.#draining = true
    for (const run of [...this.#running.values()]) if (!run.started) this.#giveBack(run)
  }

  #giveBack (run: RunningAttempt): void {
    run.givenBack = true
    if (this.#running.get(run.spec.id) === run) this.#running.delete(run.spec.id)
    run.abort.abort()
    this.report({ id: run.spec.id, attempt: run.attempt, event: 'returned', atMs: this.#ctx.clock.now() })
  }

  /**
   * The node stops: every attempt running here is stopped and reported to
   * no one, so it runs again elsewhere as after a crash. (Reported, its
   * abort would read as a user's cancel and end the task as cancelled.)
   */
  stopAll (): void {
    this.#stopping = true
    for (const r of this.#running.values()) r.abort.abort()
  }

  accept (msg: Assign, from: string): RpcReply {
    const { cluster, init, clock } = this.#ctx
    // Persist, then act: a granted term is on disk before any of its attempts runs.
    const verdict = fenceAssignment(msg, from, cluster.term(), () => cluster.grant(msg.term, msg.leader))
    if (!verdict.accept) return refusal(verdict.code, verdict.message)
    if (this.#assigner?.term !== msg.term || this.#assigner.leader !== msg.leader) {
      this.#assigner = { term: msg.term, leader: msg.leader }
      this.#assignerFailed = false
    }
    for (const { spec, attempt } of msg.tasks) {
      trace('worker.accept', spec.id)
      if (!init.pool.supports(spec.type)) {
        this.report({ id: spec.id, attempt, event: 'result', atMs: clock.now(), outcome: { ok: false, error: `task type "${spec.type}" is not allowed on this node` } })
        continue
      }
      if (this.#aborted.has(spec.id)) {
        // Cancelled before its assignment arrived.
        this.report({ id: spec.id, attempt, event: 'result', atMs: clock.now(), outcome: { ok: false, error: 'cancelled by request', cancelled: true } })
        continue
      }
      const current = this.#running.get(spec.id)
      if (current !== undefined) {
        // Already running here (for an attempt a leader gave up on, or one a new leader did not hear
        // of): it continues under the number of the newest assignment, which the current leader tracks.
        current.attempt = attempt
        if (current.started) this.report({ id: spec.id, attempt, event: 'started', atMs: current.startedAt ?? clock.now() })
        continue
      }
      if (this.#draining) {
        this.report({ id: spec.id, attempt, event: 'returned', atMs: clock.now() })
        continue
      }
      void this.#run(spec, attempt, msg)
    }
    return { kind: 'ok' }
  }

  /**
   * Aborts the attempts of these tasks running here. A cancel that comes
   * before its assignment is remembered; an attempt superseded by another's
   * success is only stopped if it runs (see the RPC's `reason`).
   */
  abort (ids: readonly string[], reason: 'cancel' | 'superseded'): void {
    const now = this.#ctx.clock.now()
    for (const id of ids) {
      const run = this.#running.get(id)
      if (run !== undefined) {
        if (reason === 'superseded') run.superseded = true
        run.abort.abort()
        continue
      }
      if (reason === 'cancel') this.#aborted.set(id, now)
    }
    for (const [old, at] of this.#aborted) if (now - at > TASK_PATH.abortMemoryMs) this.#aborted.delete(old)
  }

  /** Answers a leader's inventory request once this node has durably granted it the term. */
  inventory (term: number, leader: string): RpcReply {
    const verdict = fenceInventory(term, this.#ctx.cluster.grant(term, leader))
    if (!verdict.accept) return refusal(verdict.code, verdict.message)
    const { store, roles } = this.#ctx
    const running = [...this.#running.values()].map(r => ({ spec: specOf(r.spec), attempt: r.attempt, startedAt: r.startedAt }))
    for (const [id, u] of this.#unreported) if (!this.#running.has(id)) running.push({ spec: specOf(u.spec), attempt: u.attempt, startedAt: u.startedAt })
    // Records still waiting for their post-restart reconcile may have ended elsewhere: not offered.
    const held = store.unfinished().filter(rec => !roles.handOver.isStale(rec.id) && !roles.handOver.isStoring(rec.id)).map(rec => ({ spec: specOf(rec), attempts: rec.attempts }))
    // The reply must fit one frame; held tasks left out reach the new leader by the holders' hand-over.
    return { kind: 'inventory', running, held: firstChunkBySize(held, this.#ctx.batchBytes) }
  }

  async #run (spec: TaskSpec, attempt: number, assignment: Assign): Promise<void> {
    const { init, clock, roles } = this.#ctx
    const abort = new AbortController()
    const run: RunningAttempt = { spec, attempt, abort, started: false, startedAt: null, givenBack: false, superseded: false }
    this.#running.set(spec.id, run)
    const holders = [spec.origin, ...spec.replicas]
    let startedAt: number | null = null
    let lastProgressMs = 0
    let lastProgress: unknown = null
    const ran = await init.pool.run({
      taskId: spec.id,
      attempt,
      type: spec.type,
      payload: spec.payload,
      ...(spec.parents === undefined ? {} : { parents: spec.parents }),
      timeoutMs: spec.timeoutMs,
      signal: abort.signal,
      assignment: { term: assignment.term, leader: assignment.leader },
      onStarted: () => {
        if (run.givenBack) return // dropped by a drain before it began; the pool aborts it
        run.started = true
        trace('worker.started', spec.id)
        startedAt = clock.now()
        run.startedAt = startedAt
        this.report({ id: spec.id, attempt: run.attempt, event: 'started', atMs: startedAt })
      },
      onProgress: value => {
        lastProgress = value
        const now = clock.now()
        if (now - lastProgressMs < TASK_PATH.progressEveryMs) return
        lastProgressMs = now
        roles.holders.send([{ id: spec.id, status: 'running', attempts: run.attempt, worker: this.#ctx.self, progress: value, result: null, error: null, startedAt, finishedAt: null, ...generationOf(spec) }], holders)
      }
    })
    // Stopped for another attempt's success: a plain failure, so a leader that missed that success runs it again.
    const outcome = run.superseded && !ran.ok ? { ok: false as const, error: 'stopped: another attempt of this task succeeded' } : ran
    if (run.givenBack) return // given back to the leader unbegun: not an ending
    if (this.#running.get(spec.id) === run) this.#running.delete(spec.id)
    // Stopped with the node: not an ending (a success that beat the stop is still reported).
    if (this.#stopping && !outcome.ok) return
    const finishedAt = clock.now()
    trace('worker.ended', spec.id)
    this.#unreported.set(spec.id, { spec, attempt: run.attempt, startedAt })
    if (outcome.ok) {
      // The result goes straight to the holders too, so it is recorded even if the leader dies now. First:
      // a copy held here records it (and answers its waiters) before the report is encoded and sent.
      roles.holders.send([{ id: spec.id, status: 'succeeded', attempts: run.attempt, worker: this.#ctx.self, progress: lastProgress, result: outcome.result, error: null, startedAt, finishedAt, ...generationOf(spec) }], holders)
    }
    this.report({ id: spec.id, attempt: run.attempt, event: 'result', atMs: finishedAt, outcome, progress: lastProgress, startedAt })
  }

  /**
   * An attempt that ended before its start was sent: the start is not sent
   * (the result carries the start time, and a leader takes a result for an
   * attempt it has as assigned), so the leader and the holders hear of it
   * once, not as running and then as ended.
   */
  #dropStartsOfEnded (): void {
    const ended = new Set<string>()
    for (const r of this.#reports) if (r.event === 'result') ended.add(`${r.attempt}:${r.id}`)
    if (ended.size > 0) this.#reports = this.#reports.filter(r => r.event !== 'started' || !ended.has(`${r.attempt}:${r.id}`))
  }

  /** Queues a report for whoever leads; it goes after this turn of the event loop (one flush for all of the turn's reports). */
  report (r: Report): void {
    this.#reports.push(r)
    if (this.#flushArmed) return
    this.#flushArmed = true
    this.#ctx.clock.after(0, () => {
      this.#flushArmed = false
      // After the endings this turn sent to the holders (a copy held here stores them first): the leader
      // then hears from this node's copy before its report, and sends this node no copy of its own.
      this.#ctx.roles.holders.afterLocal(() => { void this.flushReports() })
    })
  }

  /**
   * Sends attempt reports to whoever leads when they are sent (a new leader
   * has adopted the old one's attempts). Without a leader, or when the
   * leader refuses or cannot be reached, they wait and go with the next
   * tick or leader change: a report is never dropped.
   *
   * Without a quorum two leaders may share a term until they hear each
   * other. This node runs only the attempts of the one it granted that term
   * to, and the other has adopted none of its attempts (that takes this
   * node's inventory, hence the same grant): while the leader it follows
   * is the other one (or one of an older term, not yet replaced in its
   * view), its reports go to the one that assigned them, or that one would
   * never hear of them (its watchdog would end them, a window of timeouts
   * later). If it does not take them, whoever leads does.
   */
  async flushReports (): Promise<void> {
    const { cluster, transport, roles, log } = this.#ctx
    if (this.#reporting || this.#reports.length === 0) return
    const leader = cluster.leader()
    if (leader === null) return
    const a = this.#assigner
    const to = a !== null && a.term >= leader.term && a.leader !== leader.id && !this.#assignerFailed ? a.leader : leader.id
    this.#dropStartsOfEnded()
    const batch = firstChunkBySize(this.#reports, this.#ctx.batchBytes, TASK_PATH.maxReportBatch)
    this.#reports.splice(0, batch.length)
    this.#reporting = true
    let delivered = false
    try {
      const reply = to === this.#ctx.self
        ? await roles.dispatcher.onReports(batch, this.#ctx.self)
        : await transport.request(to, { kind: 'report', reports: batch }, TASK_PATH.rpcTimeoutMs)
      delivered = reply.kind === 'ok'
      if (!delivered) log.debug({ to, reply: reply.kind === 'error' ? reply.code : reply.kind }, 'reports refused; will resend')
    } catch (err) {
      log.debug({ to, err: (err as Error).message }, 'reports not delivered; will resend')
    } finally {
      this.#reporting = false
    }
    if (!delivered) {
      if (to !== leader.id && this.#assigner === a) this.#assignerFailed = true
      this.#reports.unshift(...batch)
      return
    }
    for (const r of batch) if (r.event === 'result' && this.#unreported.get(r.id)?.attempt === r.attempt) this.#unreported.delete(r.id)
    if (this.#reports.length > 0) this.#ctx.clock.after(0, () => { void this.flushReports() })
  }
}
