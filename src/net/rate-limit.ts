/**
 * Per-key rate limits for what peers send: a token bucket per peer for RPC
 * frames, and a throttle so that a peer repeating a fault cannot flood the
 * log. Both keep bounded memory: idle keys are forgotten.
 */

/** Most peers (or peer addresses) a per-peer map tracks before idle ones are swept. */
export const MAX_TRACKED_PEERS = 10_000

/**
 * Makes room in a per-key map once it holds `max` keys: first the keys whose
 * state `isIdle` (as good as forgotten), then the oldest inserted.
 */
export function makeRoom<K, V> (map: Map<K, V>, max: number, isIdle: (v: V) => boolean): void {
  if (map.size < max) return
  for (const [key, v] of map) if (isIdle(v)) map.delete(key)
  for (const key of map.keys()) {
    if (map.size < max) break
    map.delete(key)
  }
}

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
      // Keys whose bucket has refilled are as good as new.
      makeRoom(this.#buckets, MAX_TRACKED_PEERS, old => old.tokens + (now - old.atMs) * this.rate / 1000 >= this.rate)
      b = { tokens: this.rate, atMs: now }
      this.#buckets.set(key, b)
    }
    b.tokens = Math.min(this.rate, b.tokens + (now - b.atMs) * this.rate / 1000)
    b.atMs = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
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
    if (last === undefined) makeRoom(this.#last, MAX_TRACKED_PEERS, v => now - v.atMs >= this.#intervalMs)
    this.#last.delete(key)
    this.#last.set(key, { atMs: now, suppressed: 0 })
    return last?.suppressed ?? 0
  }
}
