/**
 * Holder sync: keeps every holder's copy of a task converging. Updates go out
 * through the outbox (batched per holder, retried while the holder is
 * reachable); endings that cannot be delivered to a member declared dead are
 * parked until it is back; a holder that records an ending passes it on to
 * the task's other holders, so that two different endings after a fault
 * settle on the same one everywhere. A leader's passing states (assigned,
 * running, retrying) wait briefly and give way to the task's ending. An
 * ending goes to a member at most once from here while it is fresh, and
 * never back to the member it came from (see #known).
 */
import { trace } from '../../trace.ts'
import { isTerminal, mergeUpdate, newestUpdate, updateOf } from '../../core/tasks.ts'
import type { TaskRecord, TaskUpdate } from '../../core/tasks.ts'
import { Outbox } from '../outbox.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export class HolderSync {
  readonly #ctx: TaskContext
  readonly #outbox: Outbox
  /** Endings not delivered to a member declared dead, per member (bounded). */
  readonly #parked = new Map<string, Map<string, TaskUpdate>>()
  /** Local updates of this turn of the event loop, stored in one transaction. */
  #localUpdates: TaskUpdate[] = []
  /** Endings for other holders that go once the local updates are stored (see send). */
  #afterLocal: Array<[string, TaskUpdate[]]> = []
  /** The local updates are being applied (their endings go to the other holders in this turn). */
  #localBatch = false
  /** Called once the local updates are stored and their endings pushed (see afterLocal). */
  #afterLocalFns: Array<() => void> = []
  /** Passing states waiting to go out (see sendSettled), per holder and task. */
  readonly #settling = new Map<string, Map<string, TaskUpdate>>()
  #settleArmed = false
  /**
   * Endings this node sent as a holder of tasks it had no copy of yet (a
   * worker's own copy can be stored after the attempt ended, as a second
   * copy that arrives late is): applied when the copy is stored.
   */
  readonly #orphans = new Map<string, TaskUpdate>()
  /**
   * Endings each member has, as far as this node knows for a short while
   * (TASK_PATH.knownEndingsMs, two windows): the member sent it here, or
   * this node's outbox took it for that member. An ending is not pushed to
   * a member again while one that it does not beat is known there: a task's
   * ending used to reach each holder two or three times (the worker's copy,
   * the leader's, every holder's pass-on), each an RPC frame's share and a
   * store write attempt. A member that sent it holds it (its own copy took
   * it first, keeps it as an orphan, or is brought up to date from the
   * other holders after a restart); one this outbox took it for gets it
   * from that outbox (retried while it lives, parked while it is dead: then
   * forgotten here, see #park).
   */
  #known = new Map<string, Array<[string, TaskUpdate]>>()
  #knownBefore = new Map<string, Array<[string, TaskUpdate]>>()
  #knownSince = 0

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
    this.#outbox = new Outbox(ctx.transport, ctx.clock, TASK_PATH.rpcTimeoutMs, ctx.batchBytes, (to, err, failures) => {
      ctx.log[failures === 1 ? 'debug' : 'warn']({ to, failures, err: err.message }, 'task updates not delivered; retrying while the holder lives')
    }, peer => ctx.cluster.reachableMembers().some(m => m.id === peer), (peer, dropped) => { this.#park(peer, dropped) })
    ctx.store.observe(records => { this.#adoptOrphans(records) })
  }

  async flush (): Promise<void> {
    this.#sendSettled()
    await this.#outbox.flush()
  }

  /**
   * Sends updates to these holders (applying them here when this node is
   * one). When this node holds a copy and an update is an ending, the copy
   * here takes it first (in the turn's one transaction) and the others get
   * it just after: a node that sent an ending holds it, so no holder sends
   * it back (see #known), even when this node dies just after sending.
   */
  send (updates: TaskUpdate[], holders: readonly string[]): void {
    const targets = new Set(holders)
    for (const h of targets) {
      const settling = this.#settling.get(h)
      // A passing state still waiting is dropped when this one supersedes it.
      if (settling !== undefined) for (const u of updates) { const held = settling.get(u.id); if (held !== undefined && mergeUpdate(held, u) !== null) settling.delete(u.id) }
    }
    // A copy held here that the list leaves out (a copy an origin made on one more node after the one
    // the assignment or the leader knows of) takes its endings too, or the other holders would take
    // this node for one that has them.
    const local = targets.has(this.#ctx.self) ? updates : updates.filter(u => isTerminal(u.status) && this.#ctx.store.get(u.id) !== undefined)
    if (local.length > 0) this.#applySoon(local)
    const after = local.some(u => isTerminal(u.status))
    for (const h of targets) {
      if (h === this.#ctx.self) continue
      if (after) this.#afterLocal.push([h, updates])
      else this.#push(h, updates)
    }
  }

  /** Calls `fn` once the local updates of this turn are stored and their endings on their way (at once when there are none). */
  afterLocal (fn: () => void): void {
    if (this.#localUpdates.length === 0) fn()
    else this.#afterLocalFns.push(fn)
  }

  /**
   * Sends a leader's passing states (assigned, running, retrying: not
   * endings) to these holders after TASK_PATH.settleMs, unless an update that
   * supersedes one (the task's ending) is sent first: then only that goes.
   * Holders learn these changes a little later, and those of a short task
   * not at all; nothing depends on them being prompt (a new leader learns
   * running attempts from their workers, never from holders).
   */
  sendSettled (updates: readonly TaskUpdate[], holders: readonly string[]): void {
    trace('holder.send-settled', updates[0]?.id)
    for (const h of new Set(holders)) {
      let settling = this.#settling.get(h)
      if (settling === undefined) this.#settling.set(h, settling = new Map())
      for (const u of updates) settling.set(u.id, newestUpdate(settling.get(u.id), u))
    }
    if (this.#settleArmed) return
    this.#settleArmed = true
    this.#ctx.clock.after(TASK_PATH.settleMs, () => { this.#sendSettled() })
  }

  #sendSettled (): void {
    this.#settleArmed = false
    const settling = [...this.#settling]
    this.#settling.clear()
    for (const [h, byId] of settling) if (byId.size > 0) this.send([...byId.values()], [h])
  }

  /**
   * Merges updates into the records held here, and tells those waiting on
   * them. `from`: the member that sent them (absent: this node's own). A
   * holder that sends an ending holds it (its own copy took it first, or
   * keeps it as an orphan until the copy is stored), so endings are passed
   * on to the other holders only.
   */
  apply (updates: readonly TaskUpdate[], from?: string): void {
    const ended: TaskRecord[] = []
    const { store } = this.#ctx
    if (from === undefined) this.#keepOrphans(updates)
    else for (const u of updates) if (isTerminal(u.status)) this.#remember(from, u)
    const endedBefore = new Set(updates.filter(u => { const r = store.get(u.id); return r !== undefined && isTerminal(r.status) }).map(u => u.id))
    const { changed, refused } = store.applyUpdates(updates)
    // Reopened by a user's retry (a new generation that came here as an update, maybe long after the
    // leader that decided it): the leader of now gets it again, even one that saw the old generation end.
    const reopened = changed.filter(r => endedBefore.has(r.id) && !isTerminal(r.status)).map(r => r.id)
    if (reopened.length > 0) this.#ctx.roles.handOver.offerRerun(reopened)
    // A different ending that loses to ours: some holder has it, so ours goes to every other holder.
    this.#passOn(refused, undefined, true)
    const retried: string[] = []
    for (const rec of changed) {
      if (isTerminal(rec.status)) {
        trace('holder.ended', rec.id)
        this.#ctx.roles.handOver.ended(rec.id)
        ended.push(rec)
      } else if ((rec.retries ?? 0) > 0 && (rec.status === 'queued' || rec.status === 'scheduled' || rec.status === 'waiting')) {
        retried.push(rec.id)
      }
      this.#ctx.roles.reads.changed(rec)
    }
    // Not back to the sender, nor to a holder known to have it (see #known).
    this.#passOn(ended, from, true)
    // Every holder records the deliveries of an ending; the first live one makes them (tasks/callbacks.ts).
    if (ended.length > 0) this.#ctx.roles.callbacks.ended(ended)
    // A user's retry reopened these: offered to whoever leads now (the leader that took the retry may have lost office since).
    if (retried.length > 0) this.#ctx.roles.handOver.offer(retried)
  }

  /**
   * Holders pass on how a task ended to every other holder: a sender that
   * died may have reached only some of them. A holder that already has it
   * changes nothing and passes nothing on. Called from outside (a copy stored
   * on another node late, a restart) it goes to each of them whatever this
   * node knows they have: a node that sent an ending before its own copy was
   * stored holds it only from then on.
   */
  passOnEndings (ended: readonly TaskRecord[], except?: string): void {
    this.#passOn(ended, except, false)
  }

  #passOn (ended: readonly TaskRecord[], except: string | undefined, skipKnown: boolean): void {
    if (ended.length === 0) return
    const byHolder = new Map<string, TaskUpdate[]>()
    for (const rec of ended) {
      for (const h of new Set([rec.origin, ...rec.replicas])) {
        if (h === this.#ctx.self || h === except) continue
        const list = byHolder.get(h) ?? []
        list.push(updateOf(rec))
        byHolder.set(h, list)
      }
    }
    for (const [h, list] of byHolder) {
      if (skipKnown) this.#push(h, list, this.#localBatch)
      else {
        for (const u of list) this.#remember(h, u)
        this.#outbox.push(h, list)
      }
    }
  }

  /** Pushes updates to a member's outbox lane, but no ending the member is known to have (see #known). */
  #push (to: string, updates: readonly TaskUpdate[], atOnce = false): void {
    let fresh: TaskUpdate[] | null = null
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i]!
      const known = isTerminal(u.status) && this.#has(to, u)
      if (known && fresh === null) fresh = updates.slice(0, i)
      else if (!known && fresh !== null) fresh.push(u)
      if (!known && isTerminal(u.status)) this.#remember(to, u)
    }
    const out = fresh ?? updates
    if (out.length > 0) this.#outbox.push(to, out, atOnce)
  }

  /** `member` has ending `u` (it sent it here, or this node's outbox took it for it). */
  #remember (member: string, u: TaskUpdate): void {
    const now = this.#ctx.clock.now()
    if (now - this.#knownSince >= TASK_PATH.knownEndingsMs) {
      this.#knownBefore = this.#known
      this.#known = new Map()
      this.#knownSince = now
    }
    const list = this.#known.get(u.id)
    if (list === undefined) this.#known.set(u.id, [[member, u]])
    else list.push([member, u])
  }

  /** An ending that `u` does not beat is known to be on `member` (or on its way there). */
  #has (member: string, u: TaskUpdate): boolean {
    for (const map of [this.#known, this.#knownBefore]) {
      for (const [m, k] of map.get(u.id) ?? []) if (m === member && mergeUpdate(k, u) === null) return true
    }
    return false
  }

  /** Nothing is known to be on `member` of these tasks any more (their endings were parked for it). */
  #forget (member: string, ids: readonly string[]): void {
    for (const map of [this.#known, this.#knownBefore]) {
      for (const id of ids) {
        const list = map.get(id)
        if (list === undefined) continue
        const kept = list.filter(([m]) => m !== member)
        if (kept.length > 0) map.set(id, kept)
        else map.delete(id)
      }
    }
  }

  /** A member is back: the endings parked for it go out. */
  unpark (peer: string): void {
    const lane = this.#parked.get(peer)
    if (lane === undefined) return
    this.#parked.delete(peer)
    this.#outbox.push(peer, [...lane.values()])
  }

  #park (peer: string, dropped: readonly TaskUpdate[]): void {
    const ended = dropped.filter(u => isTerminal(u.status))
    if (ended.length === 0) return
    this.#forget(peer, ended.map(u => u.id))
    const lane = this.#parked.get(peer) ?? new Map<string, TaskUpdate>()
    this.#parked.set(peer, lane)
    for (const u of ended) {
      const kept = newestUpdate(lane.get(u.id), u)
      lane.delete(u.id) // re-inserted last: the oldest parked endings go first when the lane is full
      lane.set(u.id, kept)
    }
    for (const id of lane.keys()) {
      if (lane.size <= TASK_PATH.maxParkedPerMember) break
      lane.delete(id)
    }
  }

  /** This node's own endings of tasks it has no copy of yet (bounded: the oldest go first). */
  #keepOrphans (updates: readonly TaskUpdate[]): void {
    const { store } = this.#ctx
    for (const u of updates) {
      if (!isTerminal(u.status) || store.get(u.id) !== undefined) continue
      this.#orphans.delete(u.id)
      this.#orphans.set(u.id, newestUpdate(this.#orphans.get(u.id), u))
      if (this.#orphans.size > TASK_PATH.maxOrphanEndings) this.#orphans.delete(this.#orphans.keys().next().value!)
    }
  }

  /** Copies just stored here of tasks whose ending this node already sent: the ending is applied to them. */
  #adoptOrphans (records: readonly TaskRecord[]): void {
    if (this.#orphans.size === 0) return
    const adopted: TaskUpdate[] = []
    for (const r of records) {
      const u = this.#orphans.get(r.id)
      if (u === undefined) continue
      this.#orphans.delete(r.id)
      adopted.push(u)
    }
    if (adopted.length > 0) this.#applySoon(adopted)
  }

  #applySoon (updates: TaskUpdate[]): void {
    trace('holder.apply-soon', updates[0]?.id)
    this.#localUpdates.push(...updates)
    if (this.#localUpdates.length > updates.length) return
    this.#ctx.clock.after(0, () => {
      const batch = this.#localUpdates
      this.#localUpdates = []
      const after = this.#afterLocal
      this.#afterLocal = []
      // Endings passed on from this batch go in this turn too (one batch per holder: see #passOn).
      this.#localBatch = true
      try {
        this.apply(batch)
      } catch (err) {
        this.#ctx.log.error({ err: (err as Error).message, updates: batch.length }, 'could not store task updates')
      } finally {
        this.#localBatch = false
      }
      // The endings this turn's sends held back go now, one batch per holder, in this turn.
      const byHolder = new Map<string, TaskUpdate[]>()
      for (const [h, list] of after) {
        const all = byHolder.get(h)
        if (all === undefined) byHolder.set(h, [...list])
        else all.push(...list)
      }
      for (const [h, list] of byHolder) this.#push(h, list, true)
      const fns = this.#afterLocalFns
      this.#afterLocalFns = []
      for (const fn of fns) fn()
    })
  }
}
