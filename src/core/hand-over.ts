/**
 * The hand-over of tasks from their holders to the leader, as pure state and
 * decisions. A holder keeps the ids of unfinished tasks the current leader
 * has not acknowledged; the runtime asks `next()` what to do and reports
 * back what happened. The leader's side decides which handed-over tasks it
 * stores, queues, or answers as already ended.
 */
import { isTerminal } from './tasks.ts'
import type { TaskSpec, TaskStatus } from './tasks.ts'

/** Ids examined per hand-over step, and per reconcile step after a restart. */
export const HAND_OVER_SCAN = 1_000
export const RECONCILE_STEP = 200

export type HandOverStep =
  | { kind: 'idle' }
  /** Records held from before a restart: ask their other holders first (one step of ids). */
  | { kind: 'reconcile', ids: string[] }
  /** Offer these held tasks to the leader (the caller drops the ones that ended meanwhile). */
  | { kind: 'offer', ids: string[] }

export class HandOverQueue {
  /** Held, unfinished tasks the current leader has not acknowledged (insertion order: oldest first). */
  readonly #unforwarded = new Set<string>()
  /** Stored here while their second copy is being made: not accepted yet, so never offered. */
  readonly #storing = new Set<string>()
  /** Held since before this node (re)started: their other holders may know how they ended. */
  readonly #stale = new Set<string>()
  /** The leader said these ended, yet no live holder had the ending: offered to run again. */
  readonly #rerun = new Set<string>()

  get waiting (): number { return this.#unforwarded.size }

  /** Tasks to offer to the (current or next) leader. */
  offer (ids: Iterable<string>): void { for (const id of ids) this.#unforwarded.add(id) }
  /** These were recorded as ended here, or cancelled before any leader took them: nothing to offer. */
  drop (id: string): void { this.#unforwarded.delete(id) }

  beginStoring (ids: Iterable<string>): void { for (const id of ids) this.#storing.add(id) }
  endStoring (ids: Iterable<string>): void { for (const id of ids) this.#storing.delete(id) }
  isStoring (id: string): boolean { return this.#storing.has(id) }

  /** A record held from before a restart. */
  markStale (id: string): void { this.#stale.add(id); this.#unforwarded.add(id) }
  isStale (id: string): boolean { return this.#stale.has(id) }
  /** Its other holders answered (or there are none left): it may be offered. */
  reconciled (id: string): void { this.#stale.delete(id) }

  /** The leader acknowledged these: returns those that were re-runs. */
  acknowledge (ids: readonly string[]): string[] {
    const reruns: string[] = []
    for (const id of ids) {
      this.#unforwarded.delete(id)
      if (this.#rerun.delete(id)) reruns.push(id)
    }
    return reruns
  }

  /** A user's retry reopened these ended tasks here: offered as re-runs (a leader that saw them end runs them again). */
  offerRerun (ids: Iterable<string>): void {
    for (const id of ids) {
      this.#rerun.add(id)
      this.#unforwarded.add(id)
    }
  }

  /** Of `ids`, the ones to be offered as re-runs. */
  reruns (ids: readonly string[]): string[] { return ids.filter(id => this.#rerun.has(id)) }

  /**
   * After asking the other holders of tasks the leader says ended: the ones
   * every live holder answered for and that are still unfinished here were
   * seen ended by no one (the ending was lost with the nodes it went to), so
   * they run again rather than stay unfinished.
   */
  rerunUnfinished (answered: readonly string[], statusHere: (id: string) => TaskStatus | undefined): string[] {
    const again: string[] = []
    for (const id of answered) {
      const s = statusHere(id)
      if (s === undefined || isTerminal(s)) continue
      this.#rerun.add(id)
      this.#unforwarded.add(id)
      again.push(id)
    }
    return again
  }

  /**
   * What to do next. Nothing without a leader. Records from before a restart
   * are reconciled first, and not while this node is joining (until then its
   * view may not list their other holders).
   */
  next (hasLeader: boolean, joining: boolean): HandOverStep {
    if (this.#unforwarded.size === 0 || !hasLeader) return { kind: 'idle' }
    if (this.#stale.size > 0) {
      if (joining) return { kind: 'idle' }
      return { kind: 'reconcile', ids: take(this.#stale, RECONCILE_STEP) }
    }
    const ids: string[] = []
    for (const id of this.#unforwarded) {
      if (ids.length >= HAND_OVER_SCAN) break
      if (!this.#storing.has(id)) ids.push(id)
    }
    return ids.length === 0 ? { kind: 'idle' } : { kind: 'offer', ids }
  }
}

function take (set: ReadonlySet<string>, n: number): string[] {
  const out: string[] = []
  for (const id of set) {
    if (out.length >= n) break
    out.push(id)
  }
  return out
}

/** True when `self` holds a copy of the task (its origin or a listed replica). */
export function holdsCopy (self: string, spec: Pick<TaskSpec, 'origin' | 'replicas'>): boolean {
  return spec.origin === self || spec.replicas.includes(self)
}

export interface HandOverIntake<T> {
  /** Tasks to queue, with the attempts they have used. */
  queue: Array<T & { attempts: number }>
  /** Ids that ended under this leader: the holder's copy missed the ending and catches up instead. */
  ended: string[]
  /**
   * Ids whose copy held by this leader has ended (in the offered copy's
   * generation or a later one): the offering holder missed that ending (it
   * was down when it went out, and the ending parked for it was lost with a
   * restart of the node that parked it), so this leader passes it on.
   */
  endedHere: string[]
}

/**
 * The leader's side of a hand-over: which offered tasks it queues. A task
 * stored under another id (its idempotency key was taken) is the other
 * task's business; a task whose copy here has ended (in the offered copy's
 * generation or a later one), or that ended under this leader, is not run again. Attempts are the most any copy has seen.
 */
export function classifyHandOver<T extends { id: string, retries?: number }> (
  tasks: readonly T[],
  attempts: readonly number[] | undefined,
  canonicalId: (id: string) => string,
  here: (id: string) => { status: TaskStatus, attempts: number, retries?: number } | undefined,
  endedUnderThisLeader: (id: string) => boolean
): HandOverIntake<T> {
  const out: HandOverIntake<T> = { queue: [], ended: [], endedHere: [] }
  tasks.forEach((t, i) => {
    if (canonicalId(t.id) !== t.id) return
    const rec = here(t.id)
    // An ending here counts unless the holder's copy is of a newer generation (a user's retry this copy missed).
    if (rec !== undefined && isTerminal(rec.status) && (rec.retries ?? 0) >= (t.retries ?? 0)) { out.endedHere.push(t.id); return }
    if (endedUnderThisLeader(t.id)) { out.ended.push(t.id); return }
    out.queue.push({ ...t, attempts: Math.max(attempts?.[i] ?? 0, rec?.attempts ?? 0) })
  })
  return out
}

/**
 * Ids of tasks that ended under the current leader, oldest first and
 * bounded, so that a late hand-over of one is answered "ended" rather than
 * run again.
 */
export class EndedMemory {
  readonly #ids = new Set<string>()
  readonly #max: number

  constructor (max: number) { this.#max = max }

  has (id: string): boolean { return this.#ids.has(id) }
  forget (id: string): boolean { return this.#ids.delete(id) }
  clear (): void { this.#ids.clear() }

  remember (id: string): void {
    this.#ids.add(id)
    if (this.#ids.size > this.#max) {
      const oldest = this.#ids.values().next().value
      if (oldest !== undefined) this.#ids.delete(oldest)
    }
  }
}
