/**
 * Per-type limits the leader enforces cluster-wide, pure: at most
 * `maxConcurrent` attempts of a type assigned or running at once, and at
 * most `perSecond` attempts begun per second (a token bucket holding one
 * second's worth, at least one). Time is an argument.
 */
export interface TypeLimit {
  maxConcurrent?: number
  perSecond?: number
}

/** A type's limit with when it was set: the newest setting wins on every node (Unix ms, then the setter's id). */
export interface VersionedLimit extends TypeLimit {
  version: number
  by: string
}

/** True when `a` was set after `b`. */
export function newerLimit (a: Pick<VersionedLimit, 'version' | 'by'>, b: Pick<VersionedLimit, 'version' | 'by'>): boolean {
  return a.version !== b.version ? a.version > b.version : a.by > b.by
}

interface Bucket { tokens: number, atMs: number }

export interface TypeCounts { queued: number, running: number, limited: number }

/**
 * Per type: tasks waiting (queued or retrying), attempts assigned or
 * running, and how many of the waiting ones the type's limit holds back now
 * (all of them while it is at its limit). Every limited type is listed.
 */
export function countByType (tasks: Iterable<{ spec: { type: string }, status: string }>, limiter: TypeLimiter, nowMs: number): Map<string, TypeCounts> {
  const out = new Map<string, TypeCounts>()
  for (const type of limiter.types()) out.set(type, { queued: 0, running: 0, limited: 0 })
  for (const e of tasks) {
    const c = out.get(e.spec.type) ?? { queued: 0, running: 0, limited: 0 }
    out.set(e.spec.type, c)
    if (e.status === 'queued' || e.status === 'retrying') c.queued++
    else if (e.status === 'assigned' || e.status === 'running') c.running++
  }
  for (const [type, c] of out) c.limited = limiter.admits(type, nowMs) ? 0 : c.queued
  return out
}

export class TypeLimiter {
  readonly #limits = new Map<string, TypeLimit>()
  readonly #running = new Map<string, number>()
  readonly #buckets = new Map<string, Bucket>()

  /** Replaces a type's limit (an empty one: no limit). */
  set (type: string, limit: TypeLimit): void {
    if (limit.maxConcurrent === undefined && limit.perSecond === undefined) this.#limits.delete(type)
    else this.#limits.set(type, { ...(limit.maxConcurrent === undefined ? {} : { maxConcurrent: limit.maxConcurrent }), ...(limit.perSecond === undefined ? {} : { perSecond: limit.perSecond }) })
    const b = this.#buckets.get(type)
    if (b !== undefined && limit.perSecond !== undefined) b.tokens = Math.min(b.tokens, burst(limit.perSecond))
  }

  limit (type: string): TypeLimit | undefined { return this.#limits.get(type) }
  types (): string[] { return [...this.#limits.keys()] }

  /** Attempts of the type assigned or running now. */
  running (type: string): number { return this.#running.get(type) ?? 0 }

  /** An attempt of the type may begin now. */
  admits (type: string, nowMs: number): boolean {
    const limit = this.#limits.get(type)
    if (limit === undefined) return true
    if (limit.maxConcurrent !== undefined && this.running(type) >= limit.maxConcurrent) return false
    return limit.perSecond === undefined || this.#tokens(type, limit.perSecond, nowMs) >= 1
  }

  /** An attempt of the type begins (it was admitted). */
  take (type: string, nowMs: number): void {
    this.#running.set(type, this.running(type) + 1)
    const limit = this.#limits.get(type)
    if (limit?.perSecond !== undefined) {
      const tokens = this.#tokens(type, limit.perSecond, nowMs)
      this.#buckets.set(type, { tokens: tokens - 1, atMs: nowMs })
    }
  }

  /** An attempt begun under a previous leader is adopted: it counts as running, and costs no token. */
  adopt (type: string): void { this.#running.set(type, this.running(type) + 1) }

  /** An attempt of the type ended (or was given up). */
  release (type: string): void {
    const n = this.running(type)
    if (n <= 1) this.#running.delete(type)
    else this.#running.set(type, n - 1)
  }

  /** When a rate-limited type next has a token (null: it has one now, or no rate). */
  nextTokenMs (type: string, nowMs: number): number | null {
    const perSecond = this.#limits.get(type)?.perSecond
    if (perSecond === undefined) return null
    const tokens = this.#tokens(type, perSecond, nowMs)
    return tokens >= 1 ? null : nowMs + Math.ceil((1 - tokens) * 1000 / perSecond)
  }

  #tokens (type: string, perSecond: number, nowMs: number): number {
    const b = this.#buckets.get(type)
    if (b === undefined) return burst(perSecond)
    return Math.min(burst(perSecond), b.tokens + Math.max(0, nowMs - b.atMs) * perSecond / 1000)
  }
}

/** A bucket holds one second's worth of starts, at least one. */
function burst (perSecond: number): number {
  return Math.max(1, perSecond)
}
