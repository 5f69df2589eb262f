/**
 * Results in bulk, from any node: a client with thousands of tasks in flight
 * asks for many at once instead of long-polling each.
 * - waitAny: answers once one of the asked tasks has ended (or the wait
 *   expired) with every asked task that has ended by then; the client asks
 *   again for the rest.
 * - waitAll: waits until all have ended (or the wait expired).
 * Tasks held here are answered from this node's copy and waiters (reads.ts).
 * For the others, every reachable member is asked once, with all the ids in
 * one request (`wait`, split only to respect frame bounds): its reply says
 * which it holds and which of those have ended; ids no member holds are
 * `missing`. Then only the members that hold unfinished ones are asked to
 * wait, in slices of TASK_PATH.bulkWaitSliceMs.
 */
import { isTerminal } from '../../core/tasks.ts'
import type { TaskRecord } from '../../core/tasks.ts'
import { MAX_TASKS_PER_MESSAGE } from '../../protocol/constants.ts'
import { chunkBySize } from '../chunks.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export interface BulkWaitResult {
  /** Asked tasks that have ended, in the order asked. */
  ended: TaskRecord[]
  /** Asked ids held by a live node that have not ended (or whose ending did not reach this answer). */
  pending: string[]
  /** Asked ids no live node holds (never submitted, expired, or every holder gone). */
  missing: string[]
}

export class BulkReads {
  readonly #ctx: TaskContext

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
  }

  /** Waits up to waitMs for one of `ids` to end; answers with all of them that have ended by then. */
  async waitAny (ids: readonly string[], waitMs: number): Promise<BulkWaitResult> {
    const { store, clock } = this.#ctx
    const asked = [...new Set(ids)]
    const ended = new Map<string, TaskRecord>()
    const here: string[] = []
    const notHere: string[] = []
    for (const id of asked) {
      const rec = store.get(id)
      if (rec === undefined) notHere.push(id)
      else if (isTerminal(rec.status)) ended.set(id, rec)
      else here.push(id)
    }
    // Unfinished tasks held elsewhere, by member; every id any member said it holds.
    const holders = new Map<string, Set<string>>()
    const located = new Set<string>()
    if (notHere.length > 0) {
      const others = this.#ctx.cluster.reachableMembers().map(m => m.id).filter(m => m !== this.#ctx.self)
      await Promise.all(others.map(async m => {
        const r = await this.#ask(m, notHere, 0).catch(() => null)
        if (r === null) return
        for (const rec of r.ended) { ended.set(rec.id, rec); located.add(rec.id) }
        for (const id of r.held) located.add(id)
        if (r.held.length > 0) holders.set(m, new Set(r.held))
      }))
      for (const held of holders.values()) for (const id of ended.keys()) held.delete(id)
    }
    const deadline = clock.now() + waitMs
    while (ended.size === 0) {
      const left = deadline - clock.now()
      for (const [m, held] of holders) if (held.size === 0) holders.delete(m)
      if (left <= 0 || (here.length === 0 && holders.size === 0)) break
      await this.#round(here, holders, left, ended)
    }
    // Tasks held here may have ended while others were awaited.
    for (const id of here) {
      const rec = store.get(id)
      if (rec !== undefined && isTerminal(rec.status)) ended.set(id, rec)
    }
    const out: BulkWaitResult = { ended: [], pending: [], missing: [] }
    const hereSet = new Set(here)
    for (const id of asked) {
      const rec = ended.get(id)
      if (rec !== undefined) out.ended.push(rec)
      else if (hereSet.has(id) || located.has(id)) out.pending.push(id)
      else out.missing.push(id)
    }
    return out
  }

  /** Waits up to waitMs for all of `ids` to end (tasks just submitted here: held here, waited on here). */
  async waitAll (ids: readonly string[], waitMs: number): Promise<BulkWaitResult> {
    const { store, clock } = this.#ctx
    const asked = [...new Set(ids)]
    const deadline = clock.now() + waitMs
    const here = asked.filter(id => store.get(id) !== undefined)
    const hereSet = new Set(here)
    const found = new Map<string, TaskRecord>()
    let elsewhere = asked.filter(id => !hereSet.has(id))
    let missing = new Set<string>()
    await Promise.all([
      this.#ctx.roles.reads.watchHeld(here, waitMs, 'all').done,
      (async () => {
        while (elsewhere.length > 0) {
          const r = await this.waitAny(elsewhere, Math.max(0, deadline - clock.now()))
          for (const rec of r.ended) found.set(rec.id, rec)
          missing = new Set(r.missing)
          elsewhere = r.pending
          if (clock.now() >= deadline) break
        }
      })()
    ])
    const out: BulkWaitResult = { ended: [], pending: [], missing: [] }
    for (const id of asked) {
      const rec = hereSet.has(id) ? store.get(id) : found.get(id)
      if (rec !== undefined && isTerminal(rec.status)) out.ended.push(rec)
      else if (missing.has(id)) out.missing.push(id)
      else out.pending.push(id)
    }
    return out
  }

  /**
   * One round of waiting: on the tasks held here, and on each member holding
   * unfinished ones (for at most one slice). Ends when one of them has ended,
   * or when every member answered and the local wait ended, or after the
   * slice and the time a reply needs. A member that fails is not asked again
   * in this wait (its tasks stay pending); its failure does not end the round
   * early, so a client looping on a dead holder's tasks is paced by the slice.
   */
  async #round (here: readonly string[], holders: Map<string, Set<string>>, left: number, ended: Map<string, TaskRecord>): Promise<void> {
    const { store, clock, roles } = this.#ctx
    const slice = holders.size > 0 ? Math.min(left, TASK_PATH.bulkWaitSliceMs) : left
    await new Promise<void>(resolve => {
      let open = 0
      let finished = false
      const local = roles.reads.watchHeld(here, slice, 'any')
      const cancelTimer = clock.after(slice + TASK_PATH.holderReadTimeoutMs, () => { finish() })
      function finish (): void {
        if (finished) return
        finished = true
        local.cancel()
        cancelTimer()
        resolve()
      }
      const settled = (): void => { if (ended.size > 0 || --open === 0) finish() }
      if (here.length > 0) {
        open++
        void local.done.then(() => {
          for (const id of here) {
            const rec = store.get(id)
            if (rec !== undefined && isTerminal(rec.status)) ended.set(id, rec)
          }
          settled()
        })
      }
      for (const [m, held] of holders) {
        open++
        this.#ask(m, [...held], slice).then(r => {
          for (const rec of r.ended) { ended.set(rec.id, rec); held.delete(rec.id) }
          settled()
        }, () => { holders.delete(m) })
      }
    })
  }

  /** One member's answer for `ids` (several requests when they exceed a frame's bounds; merged). */
  async #ask (member: string, ids: readonly string[], waitMs: number): Promise<{ ended: TaskRecord[], held: string[] }> {
    const chunks = chunkBySize(ids, this.#ctx.batchBytes, MAX_TASKS_PER_MESSAGE)
    const replies = await Promise.all(chunks.map(async chunk => {
      const r = await this.#ctx.transport.request(member, { kind: 'wait', ids: chunk, waitMs }, waitMs + TASK_PATH.rpcTimeoutMs)
      if (r.kind !== 'tasks') throw new Error(`wait: unexpected reply ${r.kind === 'error' ? `${r.code}: ${r.message}` : r.kind}`)
      return r
    }))
    return { ended: replies.flatMap(r => r.ended as TaskRecord[]), held: replies.flatMap(r => r.held) }
  }
}
