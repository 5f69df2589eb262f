/**
 * Recurring schedules, the runtime's part. Definitions are kept on every
 * member (src/store/schedule-store.ts; a change is accepted once stored on
 * two when there are two), and the leader fires them: each tick is one task
 * submitted through the intake (two durable copies) under the idempotency key
 * `schedule:<name>:<tick>`, then the tick is recorded as the schedule's
 * progress, kept on every member too.
 *
 * A tick is never fired twice nor skipped across a failover: a new leader
 * first gathers every reachable member's schedules and progress, then asks
 * every reachable member which of the keys of the ticks due since that
 * progress (the ones its predecessor may have fired just before it died)
 * name a task it holds. Those are fired already (and their tasks run, as
 * any accepted task does); the others fire now, late, and their tasks say
 * so (`schedule.late`, `schedule.lateMs`). The decisions (which ticks are
 * due, caught up or skipped) are pure functions in src/core/schedules.ts.
 */
import { dueTicks, newerDef, nextTick, stampOf, tickKey, triggerProblem } from '../../core/schedules.ts'
import type { ScheduleDef, ScheduledTask, ScheduleProgress, ScheduleTrigger } from '../../core/schedules.ts'
import { InvalidRequestError, PayloadTooLargeError, ScheduleNotFoundError, UnavailableError, UnknownTaskTypeError } from '../../errors.ts'
import { MAX_SCHEDULE_PAYLOAD_BYTES, MAX_SCHEDULES } from '../../protocol/constants.ts'
import type { RpcReply, RpcRequest } from '../../protocol/rpc.ts'
import type { ScheduleStore } from '../../store/schedule-store.ts'
import { TASK_PATH } from './context.ts'
import type { SubmitInput, TaskContext } from './context.ts'

/** A schedule as PUT sets it. */
export interface ScheduleInput extends ScheduleTrigger {
  task: ScheduledTask
  paused?: boolean
}

/** A schedule as the API shows it. */
export interface ScheduleView extends ScheduleTrigger {
  name: string
  task: ScheduledTask
  paused: boolean
  createdAt: number
  updatedAt: number
  /** The latest tick fired (as this node last heard from the leader); null: none yet. */
  lastTick: number | null
  /** The next tick to fire (null: paused, or a cron date that never comes again). */
  nextTick: number | null
  skippedTicks: number
}

/** What a change answers: the schedule, and how many members stored it. */
export interface ScheduleChange { schedule: ScheduleView, stored: number, members: number }

type SchedulesMessage = Extract<RpcRequest, { kind: 'schedules' }>

/** A new leader that could not hear every reachable member asks again after this. */
const RETAKE_OFFICE_MS = 500
/** Keys asked in one `keys` request (the message allows 10,000). */
const KEYS_PER_LOOKUP = 5_000

export class Schedules {
  readonly #ctx: TaskContext
  readonly #store: ScheduleStore | undefined
  readonly #submit: (inputs: readonly SubmitInput[]) => Promise<unknown>
  /** The term this node has gathered schedules and checked ticks in (0: none: it does not lead, or has not yet). */
  #readyTerm = 0
  /** When this node was ready to fire in #readyTerm: a tick before it was missed (fired late). */
  #readyAt = 0
  #preparing: Promise<void> | null = null
  /** After a failed attempt to take office, the next is not before this (ms). */
  #retryAt = 0
  /** Keys of ticks the last leader fired (found on a member when this one took office). */
  #firedBefore = new Set<string>()
  /** Schedules with a firing under way. */
  readonly #firing = new Set<string>()
  /** Each schedule's next tick, for the version and progress it was worked out from. */
  readonly #nextDue = new Map<string, { key: string, at: number }>()
  /** Progress not yet sent to the other members. */
  readonly #unsent = new Map<string, ScheduleProgress>()
  #sending = false
  /** The last error logged per schedule (logged once, not every tick). */
  readonly #lastError = new Map<string, string>()

  constructor (ctx: TaskContext, store: ScheduleStore | undefined, submit: (inputs: readonly SubmitInput[]) => Promise<unknown>) {
    this.#ctx = ctx
    this.#store = store
    this.#submit = submit
  }

  #needStore (): ScheduleStore {
    if (this.#store === undefined) throw new UnavailableError('this node keeps no schedules')
    return this.#store
  }

  // ---- the API: any node -----------------------------------------------------

  list (): ScheduleView[] {
    const store = this.#needStore()
    return [...store.defs().values()].filter(d => d.deleted !== true).sort((a, b) => (a.name < b.name ? -1 : 1)).map(d => this.#view(d))
  }

  get (name: string): ScheduleView {
    return this.#view(this.#live(name))
  }

  #live (name: string): ScheduleDef {
    const d = this.#needStore().def(name)
    if (d === undefined || d.deleted === true) throw new ScheduleNotFoundError(name)
    return d
  }

  #view (d: ScheduleDef): ScheduleView {
    const p = this.#store?.progress().get(d.name)
    const lastTick = p !== undefined && p.lastTick > d.from ? p.lastTick : null
    return {
      name: d.name,
      ...(d.cron === undefined ? {} : { cron: d.cron }),
      ...(d.timezone === undefined ? {} : { timezone: d.timezone }),
      ...(d.everyMs === undefined ? {} : { everyMs: d.everyMs }),
      task: d.task,
      paused: d.paused,
      createdAt: d.anchor,
      updatedAt: d.version,
      lastTick,
      nextTick: d.paused ? null : nextTick(d, Math.max(d.from, lastTick ?? -Infinity)),
      skippedTicks: p?.skipped ?? 0
    }
  }

  /** Creates or replaces a schedule; ticks count from now (the same trigger again keeps its ticks). */
  async put (name: string, input: ScheduleInput): Promise<ScheduleChange> {
    const store = this.#needStore()
    const problem = triggerProblem(input)
    if (problem !== null) throw new InvalidRequestError(problem)
    const { init, roles } = this.#ctx
    const types = roles.intake.clusterTypes()
    if (!types.has(input.task.type)) throw new UnknownTaskTypeError(input.task.type, [...types].sort())
    const bytes = Buffer.byteLength(JSON.stringify(input.task.payload ?? null))
    const most = Math.min(init.maxPayloadBytes, MAX_SCHEDULE_PAYLOAD_BYTES)
    if (bytes > most) throw new PayloadTooLargeError('task.payload', bytes, most)
    const held = store.def(name)
    const live = held !== undefined && held.deleted !== true ? held : undefined
    if (live === undefined && [...store.defs().values()].filter(d => d.deleted !== true).length >= MAX_SCHEDULES) {
      throw new InvalidRequestError(`the cluster keeps at most ${MAX_SCHEDULES} schedules; delete one first`)
    }
    const now = this.#ctx.clock.now()
    const sameTrigger = live !== undefined && live.cron === input.cron && live.timezone === input.timezone && live.everyMs === input.everyMs
    const paused = input.paused ?? false
    const def: ScheduleDef = {
      name,
      ...(input.cron === undefined ? {} : { cron: input.cron }),
      ...(input.timezone === undefined ? {} : { timezone: input.timezone }),
      ...(input.everyMs === undefined ? {} : { everyMs: input.everyMs }),
      task: input.task,
      paused,
      anchor: sameTrigger ? live.anchor : now,
      // A resume by PUT does not catch up the paused ticks either.
      from: sameTrigger && !(live.paused && !paused) ? live.from : now,
      version: this.#nextVersion(held),
      by: this.#ctx.self
    }
    // A new leader gathers every schedule from each member in one message.
    let total = Buffer.byteLength(JSON.stringify(def))
    for (const d of store.defs().values()) if (d.name !== name) total += Buffer.byteLength(JSON.stringify(d))
    if (total > this.#ctx.batchBytes) throw new InvalidRequestError(`the cluster's schedules would take ${total} bytes, more than one message between nodes carries (${this.#ctx.batchBytes}, a quarter of maxRpcFrameBytes); make payloads smaller or delete schedules`)
    return await this.#spread(def)
  }

  async pause (name: string): Promise<ScheduleChange> {
    const held = this.#live(name)
    return await this.#spread({ ...held, paused: true, version: this.#nextVersion(held), by: this.#ctx.self })
  }

  /** Resumes a paused schedule: ticks count from now (those of the pause are not caught up). */
  async resume (name: string): Promise<ScheduleChange> {
    const held = this.#live(name)
    const from = held.paused ? Math.max(held.from, this.#ctx.clock.now()) : held.from
    return await this.#spread({ ...held, paused: false, from, version: this.#nextVersion(held), by: this.#ctx.self })
  }

  async delete (name: string): Promise<{ name: string, deleted: true, stored: number, members: number }> {
    const held = this.#live(name)
    // The tombstone keeps no payload: it only has to win over older copies.
    const { stored, members } = await this.#spread({ ...held, task: { type: held.task.type }, paused: false, deleted: true, version: this.#nextVersion(held), by: this.#ctx.self })
    return { name, deleted: true, stored, members }
  }

  /** Later than the version held, on this node's clock (a clock behind another's still moves it on). */
  #nextVersion (held: ScheduleDef | undefined): number {
    return Math.max(this.#ctx.clock.now(), (held?.version ?? 0) + 1)
  }

  /**
   * Stores a change here and on every reachable member. Accepted once two
   * hold it (when there are two) and the leader does (it fires from its own
   * copy; a later leader gathers every member's when it takes office).
   */
  async #spread (def: ScheduleDef): Promise<ScheduleChange> {
    const { cluster, transport, self, log } = this.#ctx
    this.take({ kind: 'schedules', defs: [def], progress: [] })
    const others = cluster.reachableMembers().filter(m => m.id !== self)
    const replies = await Promise.allSettled(others.map(async m => await transport.request(m.id, { kind: 'schedules', defs: [def], progress: [] }, TASK_PATH.rpcTimeoutMs)))
    const storedBy = new Set([self, ...others.filter((_, i) => { const r = replies[i]!; return r.status === 'fulfilled' && r.value.kind === 'ok' }).map(m => m.id)])
    log.info({ schedule: def.name, paused: def.paused, deleted: def.deleted === true, stored: storedBy.size }, 'schedule changed')
    if (others.length > 0 && storedBy.size < 2) throw new UnavailableError('no other live member stored the schedule (kept on this node only, and sent on when one joins); retry')
    const leader = cluster.leader()
    if (leader !== null && !storedBy.has(leader.id)) throw new UnavailableError('the leader did not store the schedule (the other members did); retry')
    return { schedule: this.#view(def), stored: storedBy.size, members: others.length + 1 }
  }

  // ---- every member ------------------------------------------------------------

  /** Definitions and progress from another member (or this one): the newer are stored; `want`: answers with all held. */
  take (msg: SchedulesMessage): RpcReply {
    const store = this.#needStore()
    const changed = store.put(msg.defs as ScheduleDef[], msg.progress)
    if (changed.defs.length > 0) this.#ctx.log.debug({ schedules: changed.defs }, 'schedules changed')
    if (msg.want !== true) return { kind: 'ok' }
    return { kind: 'schedules', defs: [...store.defs().values()], progress: [...store.progress().values()] }
  }

  /** As leader: a member joined (or restarted): it gets every schedule and progress, and keeps the newer. */
  sendTo (member: string): void {
    const store = this.#store
    if (store === undefined || store.defs().size === 0 || member === this.#ctx.self) return
    void this.#ctx.transport.request(member, { kind: 'schedules', defs: [...store.defs().values()], progress: [...store.progress().values()] }, TASK_PATH.rpcTimeoutMs).catch((err: Error) => {
      this.#ctx.log.warn({ to: member, err: err.message }, 'schedules not delivered to a joining member')
    })
  }

  // ---- the leader --------------------------------------------------------------

  /** On the runtime's tick: as leader (once its dispatcher gathered), fires every tick now due. */
  tick (): void {
    const store = this.#store
    if (store === undefined) return
    const { cluster, roles, clock } = this.#ctx
    const leader = cluster.leader()
    if (leader?.id !== this.#ctx.self) {
      this.#readyTerm = 0
      return
    }
    this.#flushProgress()
    if (roles.dispatcher.gathering) return
    if (this.#readyTerm !== leader.term) {
      if (this.#preparing === null && clock.now() >= this.#retryAt) {
        const term = leader.term
        const failed = (why: string): void => {
          this.#retryAt = clock.now() + RETAKE_OFFICE_MS
          this.#ctx.log.warn({ term, err: why }, 'could not gather schedules and fired ticks as the new leader; trying again')
        }
        this.#preparing = this.#takeOffice(store, term).then(ready => {
          if (ready === true) { if (this.#leads(term)) this.#readyTerm = term } else failed(ready)
        }, (err: Error) => { failed(err.message) }).finally(() => { this.#preparing = null })
      }
      return
    }
    const now = clock.now()
    for (const def of store.defs().values()) {
      if (this.#firing.has(def.name)) continue
      const lastTick = store.progress().get(def.name)?.lastTick ?? null
      // The next tick is worked out once per version and progress, not on every runtime tick.
      const cacheKey = `${def.version}/${def.by}/${lastTick ?? ''}`
      let next = this.#nextDue.get(def.name)
      if (next?.key !== cacheKey) {
        next = { key: cacheKey, at: def.paused || def.deleted === true ? Infinity : (nextTick(def, Math.max(def.from, lastTick ?? -Infinity)) ?? Infinity) }
        this.#nextDue.set(def.name, next)
      }
      if (next.at > now) continue
      const due = dueTicks(def, lastTick, now)
      if (due.ticks.length === 0) continue
      this.#firing.add(def.name)
      void this.#fire(store, def, due.ticks, due.skipped, leader.term).finally(() => { this.#firing.delete(def.name) })
    }
  }

  #leads (term: number): boolean {
    const l = this.#ctx.cluster.leader()
    return l?.id === this.#ctx.self && l.term === term
  }

  /**
   * A new leader learns every reachable member's schedules and progress,
   * then which ticks due since that progress its predecessor fired (their
   * keys name a task some member holds). True once every reachable member
   * answered both; false: tried again on a later tick.
   */
  async #takeOffice (store: ScheduleStore, term: number): Promise<true | string> {
    const { cluster, transport, self, log, clock } = this.#ctx
    const others = cluster.reachableMembers().filter(m => m.id !== self)
    const mine = (): SchedulesMessage => ({ kind: 'schedules', defs: [...store.defs().values()], progress: [...store.progress().values()] })
    const pulled = await Promise.all(others.map(async m => await transport.request(m.id, { ...mine(), want: true }, TASK_PATH.inventoryTimeoutMs)))
    for (const r of pulled) {
      if (r.kind !== 'schedules') return `a member answered ${r.kind === 'error' ? r.message : r.kind}`
      store.put(r.defs as ScheduleDef[], r.progress)
    }
    // Every member gets what the others had.
    await Promise.allSettled(others.map(async m => await transport.request(m.id, mine(), TASK_PATH.rpcTimeoutMs)))
    const now = clock.now()
    const keys: string[] = []
    for (const def of store.defs().values()) {
      for (const t of dueTicks(def, store.progress().get(def.name)?.lastTick ?? null, now).ticks) keys.push(tickKey(def.name, t))
    }
    const found = new Set(keys.filter(k => this.#ctx.store.byIdempotencyKey(k) !== undefined))
    for (let i = 0; i < keys.length; i += KEYS_PER_LOOKUP) {
      const chunk = keys.slice(i, i + KEYS_PER_LOOKUP)
      const answers = await Promise.all(others.map(async m => await transport.request(m.id, { kind: 'keys', keys: chunk }, TASK_PATH.inventoryTimeoutMs)))
      for (const a of answers) {
        if (a.kind !== 'keys') return `a member answered ${a.kind === 'error' ? a.message : a.kind}`
        for (const k of a.held) found.add(k)
      }
    }
    if (!this.#leads(term)) return 'no longer leading'
    this.#firedBefore = found
    this.#readyAt = clock.now()
    log.info({ term, schedules: store.defs().size, dueTicks: keys.length, firedBefore: found.size }, 'schedules gathered: firing')
    return true
  }

  /** Fires the due ticks of one schedule in order, each recorded as progress once its task is accepted. */
  async #fire (store: ScheduleStore, def: ScheduleDef, ticks: readonly number[], skipped: number, term: number): Promise<void> {
    const { clock, log } = this.#ctx
    let skippedNow = skipped
    for (const tick of ticks) {
      // Changed (paused, deleted, replaced) or no longer leading: the next tick decides again.
      const current = store.def(def.name)
      if (current === undefined || newerDef(current, def) || !this.#leads(term)) return
      const key = tickKey(def.name, tick)
      if (!this.#firedBefore.has(key)) {
        try {
          await this.#submit([{ ...def.task, payload: def.task.payload ?? null, idempotencyKey: key, schedule: stampOf(def.name, tick, clock.now(), this.#readyAt) }])
          this.#lastError.delete(def.name)
        } catch (err) {
          const message = (err as Error).message
          if (this.#lastError.get(def.name) !== message) log.warn({ schedule: def.name, tick, err: message }, 'could not fire a schedule\'s tick; trying again')
          this.#lastError.set(def.name, message)
          return
        }
      }
      const prev = store.progress().get(def.name)
      const progress: ScheduleProgress = { name: def.name, lastTick: tick, skipped: (prev?.skipped ?? 0) + skippedNow }
      skippedNow = 0
      store.put([], [progress])
      this.#unsent.set(def.name, progress)
    }
  }

  /** Sends the progress recorded since the last tick to every reachable member. */
  #flushProgress (): void {
    if (this.#unsent.size === 0 || this.#sending) return
    const { cluster, transport, self, log } = this.#ctx
    const progress = [...this.#unsent.values()]
    this.#unsent.clear()
    this.#sending = true
    const others = cluster.reachableMembers().filter(m => m.id !== self)
    void Promise.allSettled(others.map(async m => await transport.request(m.id, { kind: 'schedules', defs: [], progress }, TASK_PATH.rpcTimeoutMs))).then(results => {
      const failed = results.filter(r => r.status === 'rejected').length
      if (failed > 0) log.debug({ failed }, 'schedule progress not delivered to every member')
    }).finally(() => { this.#sending = false })
  }
}
