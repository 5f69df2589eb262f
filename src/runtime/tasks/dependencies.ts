/**
 * The leader's part of task dependencies: it holds the tasks that wait for
 * their parents in the pure DependencyGate (src/core/dependencies.ts),
 * tells it every ending this leader decides, and looks up the records of
 * parents no one here decides (ended before this leader took office, or not
 * handed over to it yet), backing off while they stay unfinished. Nothing
 * here is durable: a task's `dependsOn` is in its stored spec, and a new
 * leader re-derives what is runnable from the parents' records.
 *
 * A failure or a cancel this leader decides fails no child by itself (see
 * DependencyGate.decided): the parent's record is read from its holders at
 * once, waiting up to CONFIRM_WAIT_MS for them to record an ending, and the
 * children fail only if that record is a failure or a cancel (a success
 * the worker sent them directly releases them instead).
 */
import { DependencyGate } from '../../core/dependencies.ts'
import type { GateDecisions } from '../../core/dependencies.ts'
import { isTerminal } from '../../core/tasks.ts'
import type { TaskSpec, TaskUpdate } from '../../core/tasks.ts'
import { TaskExpiredError } from '../../errors.ts'
import type { TaskContext } from './context.ts'

/** First and longest pause between two look-ups of one unfinished parent. */
const LOOKUP_FIRST_MS = 250
const LOOKUP_MAX_MS = 5_000
/** How long the read that confirms an ending this leader decided waits for the parent's holders to record one. */
const CONFIRM_WAIT_MS = 1_000

export interface DependencyHooks {
  /** The scheduler tracks this task (its ending will pass through `ended`). */
  tracked: (id: string) => boolean
  /** Released: to be queued (the spec carries its parents' results), its holders told `update`. */
  release: (spec: TaskSpec, attempts: number, update: TaskUpdate) => void
  /** Ends to send to the tasks' holders (they come back through `ended`). */
  distribute: (updates: TaskUpdate[]) => void
}

export class Dependencies {
  readonly #ctx: TaskContext
  readonly #hooks: DependencyHooks
  readonly #gate = new DependencyGate()
  /** Parents looked up: when next, and the pause after that. */
  readonly #lookups = new Map<string, { atMs: number, pauseMs: number }>()
  readonly #inFlight = new Set<string>()

  constructor (ctx: TaskContext, hooks: DependencyHooks) {
    this.#ctx = ctx
    this.#hooks = hooks
  }

  /** Tasks waiting for their parents. */
  get size (): number { return this.#gate.size }

  has (id: string): boolean { return this.#gate.has(id) }

  /** Takes a task that must wait for its parents (true), or leaves it to the scheduler (false). */
  hold (spec: TaskSpec, attempts: number): boolean {
    if (!DependencyGate.gates(spec) || attempts >= spec.maxAttempts) return false
    this.#gate.add(spec, attempts)
    return true
  }

  /** A cancel of a waiting task: its end (already sent to its holders), or null when it does not wait here. */
  cancel (id: string): TaskUpdate | null {
    const end = this.#gate.cancel(id, this.#ctx.clock.now())
    if (end !== null) this.#hooks.distribute([end])
    return end
  }

  /**
   * Endings this leader sent to holders: the tasks waiting for a success are
   * released; a failure or a cancel is first confirmed by the parent's record.
   */
  ended (updates: readonly TaskUpdate[]): void {
    if (this.#gate.size === 0) return
    const now = this.#ctx.clock.now()
    for (const u of updates) {
      if (!isTerminal(u.status)) continue
      const d = this.#gate.decided(u, now)
      this.#apply(d)
      if (d.confirm) this.#confirm(u.id)
    }
  }

  /** Looks up the parents no one here decides (at most one look-up per parent at a time, backing off). */
  tick (): void {
    if (this.#gate.size === 0) {
      this.#lookups.clear()
      return
    }
    const now = this.#ctx.clock.now()
    const open = this.#gate.openParents()
    const openSet = new Set(open)
    for (const id of this.#lookups.keys()) if (!openSet.has(id)) this.#lookups.delete(id)
    for (const id of open) {
      if (this.#inFlight.has(id) || this.#hooks.tracked(id) || this.#gate.has(id)) continue
      const due = this.#lookups.get(id)
      if (due !== undefined && due.atMs > now) continue
      const pauseMs = due === undefined ? LOOKUP_FIRST_MS : Math.min(LOOKUP_MAX_MS, due.pauseMs * 2)
      this.#lookups.set(id, { atMs: now + pauseMs, pauseMs })
      this.#inFlight.add(id)
      void this.#lookUp(id).finally(() => { this.#inFlight.delete(id) })
    }
  }

  clear (): void {
    this.#gate.clear()
    this.#lookups.clear()
  }

  /** Reads the record of a parent this leader just ended (not looked up again sooner than LOOKUP_FIRST_MS after, if it is still unfinished there). */
  #confirm (id: string): void {
    this.#lookups.set(id, { atMs: this.#ctx.clock.now() + LOOKUP_FIRST_MS, pauseMs: LOOKUP_FIRST_MS })
    if (this.#inFlight.has(id)) return
    this.#inFlight.add(id)
    void this.#lookUp(id, CONFIRM_WAIT_MS).finally(() => { this.#inFlight.delete(id) })
  }

  /** `waitMs`: how long the holders may wait for the parent to end before they answer. */
  async #lookUp (id: string, waitMs = 0): Promise<void> {
    const { store, roles, log, clock } = this.#ctx
    try {
      const here = store.get(id)
      const rec = here !== undefined && isTerminal(here.status) ? here : await roles.reads.get(id, waitMs)
      // Decided here meanwhile: its ending comes through `ended`.
      if (!isTerminal(rec.status) || this.#hooks.tracked(id)) return
      this.#apply(this.#gate.parentEnded(rec, clock.now()))
    } catch (err) {
      if (err instanceof TaskExpiredError) {
        // Its record expired (retention) before the task could be released: the result is gone.
        this.#apply(this.#gate.parentEnded({ id, status: 'failed', result: null, error: 'its record expired, with its result', }, clock.now()))
        return
      }
      // Not found on any reachable member (yet): it may still be on its way to a second holder; looked up again later.
      log.debug({ parent: id, err: (err as Error).message }, 'parent task not found yet')
    }
  }

  #apply (d: GateDecisions): void {
    for (const r of d.released) this.#hooks.release(r.spec, r.attempts, r.update)
    if (d.failed.length > 0) this.#hooks.distribute(d.failed)
  }
}
