/**
 * Per-key rate limits for what peers send: a token bucket per peer for RPC
 * frames, and a throttle so that a peer repeating a fault cannot flood the
 * log. Both keep bounded memory: idle keys are forgotten.
 */

/** Most keys tracked before idle ones are swept. */
const MAX_KEYS = 10_000

/**
 * A token bucket per key: `ratePerSecond` tokens a second, holding at most
 * one second's worth, so a burst of `ratePerSecond` passes at once.
 */
export class PeerRateLimiter {
  readonly rate: number
  readonly #now: () => number
  readonly #buckets = new Map<string, { tokens: number, atMs: number }>()

  constructor (ratePerSecond: number, now: () => number = Date.now) {
    this.rate = ratePerSecond
    this.#now = now
  }

  /** Takes one token from `key`'s bucket; false when it is empty (the event is over the rate). */
  take (key: string): boolean {
    const now = this.#now()
    let b = this.#buckets.get(key)
    if (b === undefined) {
      if (this.#buckets.size >= MAX_KEYS) this.#sweep(now)
      b = { tokens: this.rate, atMs: now }
      this.#buckets.set(key, b)
    }
    b.tokens = Math.min(this.rate, b.tokens + (now - b.atMs) * this.rate / 1000)
    b.atMs = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Forgets keys whose bucket has refilled (they are as good as new); the oldest go if none has. */
  #sweep (now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.atMs) * this.rate / 1000 >= this.rate) this.#buckets.delete(key)
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size < MAX_KEYS) break
      this.#buckets.delete(key)
    }
  }
}

/** Lets an event through once per `intervalMs` per key, counting the ones it held back. */
export class LogThrottle {
  readonly #intervalMs: number
  readonly #now: () => number
  readonly #last = new Map<string, { atMs: number, suppressed: number }>()

  constructor (intervalMs: number, now: () => number = Date.now) {
    this.#intervalMs = intervalMs
    this.#now = now
  }

  /** The number of events held back since the last one let through, or undefined to hold this one back. */
  pass (key: string): number | undefined {
    const now = this.#now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last.atMs < this.#intervalMs) {
      last.suppressed++
      return undefined
    }
    if (last === undefined && this.#last.size >= MAX_KEYS) {
      for (const [k, v] of this.#last) if (now - v.atMs >= this.#intervalMs) this.#last.delete(k)
      for (const k of this.#last.keys()) { if (this.#last.size < MAX_KEYS) break; this.#last.delete(k) }
    }
    this.#last.delete(key)
    this.#last.set(key, { atMs: now, suppressed: 0 })
    return last?.suppressed ?? 0
  }
}
