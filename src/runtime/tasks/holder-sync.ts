/**
 * Holder sync: keeps every holder's copy of a task converging. Updates go out
 * through the outbox (batched per holder, retried while the holder is
 * reachable); endings that cannot be delivered to a member declared dead are
 * parked until it is back; a holder that records an ending passes it on to
 * the task's other holders, so that two different endings after a fault
 * settle on the same one everywhere. A leader's passing states (assigned,
 * running, retrying) wait briefly and give way to the task's ending.
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
  /** Passing states waiting to go out (see sendSettled), per holder and task. */
  readonly #settling = new Map<string, Map<string, TaskUpdate>>()
  #settleArmed = false
  /**
   * Endings this node sent as a holder of tasks it had no copy of yet (a
   * worker's own copy can be stored after the attempt ended, as a second
   * copy that arrives late is): applied when the copy is stored.
   */
  readonly #orphans = new Map<string, TaskUpdate>()

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

  /** Sends updates to these holders (applying them here when this node is one). */
  send (updates: TaskUpdate[], holders: readonly string[]): void {
    for (const h of new Set(holders)) {
      const settling = this.#settling.get(h)
      // A passing state still waiting is dropped when this one supersedes it.
      if (settling !== undefined) for (const u of updates) { const held = settling.get(u.id); if (held !== undefined && mergeUpdate(held, u) !== null) settling.delete(u.id) }
      if (h === this.#ctx.self) this.#applySoon(updates)
      else this.#outbox.push(h, updates)
    }
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
    const endedBefore = new Set(updates.filter(u => { const r = store.get(u.id); return r !== undefined && isTerminal(r.status) }).map(u => u.id))
    const { changed, refused } = store.applyUpdates(updates)
    // Reopened by a user's retry (a new generation that came here as an update, maybe long after the
    // leader that decided it): the leader of now gets it again, even one that saw the old generation end.
    const reopened = changed.filter(r => endedBefore.has(r.id) && !isTerminal(r.status)).map(r => r.id)
    if (reopened.length > 0) this.#ctx.roles.handOver.offerRerun(reopened)
    // A different ending that loses to ours: some holder has it, so ours goes to every other holder.
    this.passOnEndings(refused)
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
    // The sender too, when it holds the task: a worker's own copy hears only from the others (and may
    // have been stored after the worker's own ending was applied there, as a late second copy is).
    this.passOnEndings(ended)
    // Every holder records the deliveries of an ending; the first live one makes them (tasks/callbacks.ts).
    if (ended.length > 0) this.#ctx.roles.callbacks.ended(ended)
    // A user's retry reopened these: offered to whoever leads now (the leader that took the retry may have lost office since).
    if (retried.length > 0) this.#ctx.roles.handOver.offer(retried)
  }

  /**
   * Holders pass on how a task ended to every other holder: a sender that
   * died may have reached only some of them. A holder that already has it
   * changes nothing and passes nothing on.
   */
  passOnEndings (ended: readonly TaskRecord[], except?: string): void {
    const byHolder = new Map<string, TaskUpdate[]>()
    for (const rec of ended) {
      for (const h of new Set([rec.origin, ...rec.replicas])) {
        if (h === this.#ctx.self || h === except) continue
        const list = byHolder.get(h) ?? []
        list.push(updateOf(rec))
        byHolder.set(h, list)
      }
    }
    for (const [h, list] of byHolder) this.#outbox.push(h, list)
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
      try {
        this.apply(batch)
      } catch (err) {
        this.#ctx.log.error({ err: (err as Error).message, updates: batch.length }, 'could not store task updates')
      }
    })
  }
}
