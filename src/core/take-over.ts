/**
 * A new leader's take-over, pure: from the members' inventories it decides
 * which attempts to adopt and which held tasks to queue (see
 * Scheduler.takeOver).
 */
import { lostAttemptUpdate } from './tasks.ts'
import type { TaskSpec, TaskUpdate } from './tasks.ts'
import type { Scheduler } from './scheduler.ts'

/** What one member told a new leader: attempts it runs, unfinished tasks it holds. */
export interface Inventory {
  from: string
  running: ReadonlyArray<{ spec: TaskSpec, attempt: number, startedAt: number | null }>
  held: ReadonlyArray<{ spec: TaskSpec, attempts: number }>
}

export interface TakeOver {
  /** Tasks now tracked (adopted or queued): their holders receive this leader's updates. */
  taken: TaskSpec[]
  /** Ends of tasks whose last attempt was lost. */
  updates: TaskUpdate[]
  adopted: number
  queued: number
}

/**
 * Attempts that `live` members run are adopted, never restarted; held tasks
 * no one runs are queued with the most attempts any holder has seen used (of
 * the newest generation any holder has: a user's retry), or end as failed
 * when none remain. Inventories of members no longer live are ignored for
 * adoption (their attempts were lost). `gate` takes a held task that must
 * wait for its parents first (src/core/dependencies.ts): true when it did.
 */
export function takeOver (scheduler: Scheduler, inventories: readonly Inventory[], live: ReadonlySet<string>, nowMs: number, gate?: (spec: TaskSpec, attempts: number) => boolean): TakeOver {
  const out: TakeOver = { taken: [], updates: [], adopted: 0, queued: 0 }
  for (const inv of inventories) {
    if (!live.has(inv.from)) continue
    for (const run of inv.running) {
      if (scheduler.adopt(run.spec, inv.from, run.attempt, run.startedAt, nowMs)) {
        out.taken.push(run.spec)
        out.adopted++
      }
    }
  }
  const held = new Map<string, { spec: TaskSpec, attempts: number }>()
  for (const inv of inventories) {
    for (const h of inv.held) {
      const seen = held.get(h.spec.id)
      if (seen === undefined || newer(h, seen)) held.set(h.spec.id, h)
    }
  }
  for (const h of held.values()) {
    if (scheduler.has(h.spec.id)) continue
    if (h.attempts < h.spec.maxAttempts && gate?.(h.spec, h.attempts) === true) {
      out.taken.push(h.spec)
      out.queued++
      continue
    }
    const r = scheduler.enqueue(h.spec, h.attempts, nowMs)
    if (r === 'queued') {
      out.taken.push(h.spec)
      out.queued++
    } else if (r === 'exhausted') {
      out.taken.push(h.spec)
      out.updates.push(lostAttemptUpdate(h.spec, h.attempts, nowMs))
    }
    // 'full': its holders hand it over again later.
  }
  return out
}

/** A holder's copy of a newer generation, or of the same one with more attempts used. */
function newer (a: { spec: TaskSpec, attempts: number }, b: { spec: TaskSpec, attempts: number }): boolean {
  const ga = a.spec.retries ?? 0
  const gb = b.spec.retries ?? 0
  return ga !== gb ? ga > gb : a.attempts > b.attempts
}
