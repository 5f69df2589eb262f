/**
 * Retention, every holder's part: finished records expire by age and by
 * count (src/core/retention.ts decides), swept here in small steps on a
 * timer: one short transaction per step, the next step at once while a
 * backlog remains (after other work had its turn), else after a second.
 * Purges on demand (`DELETE /v1/tasks?before=`) forget the matching records
 * on every reachable member, also in steps.
 */
import { nextSweepDelayMs, planSweep } from '../../core/retention.ts'
import type { RetentionPolicy } from '../../core/retention.ts'
import type { EndedStatus } from '../../store/record-retention.ts'
import type { TaskContext } from './context.ts'

/** Records one sweep or purge step forgets at most (a few milliseconds of work). */
export const SWEEP_STEP_RECORDS = 500
/** Time between sweeps while nothing is left to forget. */
export const SWEEP_IDLE_MS = 1_000
/** Time a member gets to purge (in steps) before the purge counts it as unreachable. */
const PURGE_TIMEOUT_MS = 60_000

export interface PurgeFilter { status?: EndedStatus, before: number }

export class Retention {
  readonly #ctx: TaskContext
  readonly #policy: RetentionPolicy | undefined
  #cancel: (() => void) | undefined
  #stopped = false

  /** Without a policy nothing expires (the simulation); purges still work. */
  constructor (ctx: TaskContext, policy: RetentionPolicy | undefined) {
    this.#ctx = ctx
    this.#policy = policy
  }

  start (): void {
    if (this.#policy === undefined) return
    this.#ctx.store.retention.keepForgotten(this.#policy.retainFinishedCount)
    this.#schedule(0)
  }

  stop (): void {
    this.#stopped = true
    this.#cancel?.()
  }

  #schedule (ms: number): void {
    if (this.#stopped) return
    this.#cancel = this.#ctx.clock.after(ms, () => { this.#step() })
  }

  /** One sweep step, then the next one scheduled (at once while a backlog remains). */
  #step (): void {
    const { store, clock, log } = this.#ctx
    let removed = 0
    try {
      removed = store.retention.sweep(planSweep(store.retention.finishedHeld, clock.now(), this.#policy!, SWEEP_STEP_RECORDS))
      store.retention.vacuumStep()
    } catch (err) {
      log.error({ err: (err as Error).message }, 'retention sweep failed; trying again later')
    }
    this.#schedule(nextSweepDelayMs(removed, SWEEP_STEP_RECORDS, SWEEP_IDLE_MS))
  }

  /** Forgets the matching finished records held here, step by step; returns how many. */
  async purgeHere (filter: PurgeFilter): Promise<number> {
    const { store } = this.#ctx
    let total = 0
    for (;;) {
      const n = store.retention.purgeStep(filter, SWEEP_STEP_RECORDS)
      total += n
      if (n < SWEEP_STEP_RECORDS) break
      await new Promise<void>(resolve => { this.#ctx.clock.after(0, resolve) })
    }
    store.retention.vacuumStep()
    return total
  }

  /** Purges here and on every reachable member; returns the records forgotten on each node that answered. */
  async purgeEverywhere (filter: PurgeFilter): Promise<{ purged: number, nodes: number, unreachable: number }> {
    const { cluster, transport } = this.#ctx
    const others = cluster.reachableMembers().map(m => m.id).filter(id => id !== this.#ctx.self)
    const replies = await Promise.allSettled(others.map(async m => {
      const r = await transport.request(m, { kind: 'purge', before: filter.before, ...(filter.status === undefined ? {} : { status: filter.status }) }, PURGE_TIMEOUT_MS)
      if (r.kind !== 'purged') throw new Error(r.kind === 'error' ? r.message : r.kind)
      return r.count
    }))
    const here = await this.purgeHere(filter)
    let purged = here
    let nodes = 1
    for (const r of replies) if (r.status === 'fulfilled') { purged += r.value; nodes++ }
    return { purged, nodes, unreachable: others.length - (nodes - 1) }
  }
}
