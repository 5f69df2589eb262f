/**
 * Completion callbacks, pure: what a task's ending is delivered to, which of
 * its holders delivers it, and how a delivery's state moves after each try.
 *
 * Every holder of a task records, with the ending, one delivery per target
 * (the submit's `callback`, and each configured webhook whose `events` name
 * the ending's status). Its id is derived from the task, the generation (a
 * user's retry ends anew) and the target, so every holder names it alike and
 * a receiver deduplicates on it. The holder that delivers is the first live
 * one of the task's holders in the order [origin, ...replicas]: the origin
 * while it lives, else the next copy, which takes over with the attempts the
 * deliverer told it of. After each try the deliverer tells the other
 * holders the new state; `mergeDelivery` orders states so holders converge.
 */
import { isTerminal } from './tasks.ts'
import type { TaskRecord, TaskStatus } from './tasks.ts'

export type Ending = 'succeeded' | 'failed' | 'cancelled'
export const ENDINGS: readonly Ending[] = ['succeeded', 'failed', 'cancelled']

/** A configured webhook: every ending whose status is in `events` is POSTed to `url`. */
export interface Webhook {
  url: string
  events?: readonly Ending[]
  headers?: Readonly<Record<string, string>>
}

/** Where one ending goes. */
export interface DeliveryTarget {
  url: string
  headers: Record<string, string>
  source: 'callback' | 'webhook'
}

export type DeliveryPhase = 'pending' | 'delivered' | 'failed'

/** One delivery of one ending to one target, as each holder keeps it. */
export interface DeliveryState {
  /** Same on every holder: the receiver's deduplication key (see deliveryKey). */
  id: string
  task: string
  url: string
  source: 'callback' | 'webhook'
  /** `task.succeeded`, `task.failed` or `task.cancelled`. */
  event: string
  state: DeliveryPhase
  /** Tries so far. */
  attempts: number
  /** When the next try is due (pending only). */
  nextAtMs: number
  /** The last failed try: HTTP status (null: no answer) and why. */
  lastStatus: number | null
  lastError: string | null
  deliveredAt: number | null
}

export interface DeliveryPolicy {
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
}

/** The targets of a task's ending: its own callback, then each webhook that asks for this status. */
export function targetsOf (rec: Pick<TaskRecord, 'callback' | 'status'>, webhooks: readonly Webhook[]): DeliveryTarget[] {
  if (!isTerminal(rec.status)) return []
  const out: DeliveryTarget[] = []
  if (rec.callback !== undefined) out.push({ url: rec.callback.url, headers: { ...rec.callback.headers }, source: 'callback' })
  for (const w of webhooks) {
    if ((w.events ?? ENDINGS).includes(rec.status as Ending)) out.push({ url: w.url, headers: { ...w.headers }, source: 'webhook' })
  }
  return out
}

/** What a delivery id is derived from (the runtime hashes it): the task, the generation that ended, the target. */
export function deliveryKey (rec: Pick<TaskRecord, 'id' | 'retries'>, target: Pick<DeliveryTarget, 'url' | 'source'>): string {
  return `${rec.id}\n${rec.retries ?? 0}\n${target.source}\n${target.url}`
}

/** A new delivery of an ending, due at once. */
export function newDelivery (id: string, rec: Pick<TaskRecord, 'id' | 'status'>, target: DeliveryTarget, nowMs: number): DeliveryState {
  return { id, task: rec.id, url: target.url, source: target.source, event: `task.${rec.status as TaskStatus}`, state: 'pending', attempts: 0, nextAtMs: nowMs, lastStatus: null, lastError: null, deliveredAt: null }
}

/** The holder that delivers: the first of [origin, ...replicas] that is live; null when none is. */
export function delivererOf (holders: readonly string[], live: ReadonlySet<string>): string | null {
  return holders.find(h => live.has(h)) ?? null
}

/** The state after one try: delivered on a 2xx, else pending with a backoff, or failed once the attempts are spent. */
export function afterTry (s: DeliveryState, outcome: { ok: true } | { ok: false, status: number | null, error: string }, nowMs: number, policy: DeliveryPolicy): DeliveryState {
  const attempts = s.attempts + 1
  if (outcome.ok) return { ...s, state: 'delivered', attempts, deliveredAt: nowMs, nextAtMs: nowMs }
  const failed = { ...s, attempts, lastStatus: outcome.status, lastError: outcome.error }
  if (attempts >= policy.maxAttempts) return { ...failed, state: 'failed', nextAtMs: nowMs }
  return { ...failed, state: 'pending', nextAtMs: nowMs + Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** (attempts - 1)) }
}

const RANK: Record<DeliveryPhase, number> = { pending: 0, failed: 1, delivered: 2 }

/** Of two states of one delivery, the one to keep: delivered over failed over pending, then the most tries. */
export function mergeDelivery (mine: DeliveryState | undefined, theirs: DeliveryState): DeliveryState {
  if (mine === undefined) return theirs
  if (RANK[theirs.state] !== RANK[mine.state]) return RANK[theirs.state] > RANK[mine.state] ? theirs : mine
  return theirs.attempts > mine.attempts ? theirs : mine
}
