/**
 * The only source of time for the runtime: the current time and timers.
 * Production uses the system's; the deterministic simulation passes its own,
 * so that every runtime timer fires on simulated time, in a seeded order.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch (incarnations compare across machines). */
  now (): number
  /** Calls `fn` once after `ms` milliseconds (0: after the current turn of the event loop). Returns a cancel function. */
  after (ms: number, fn: () => void): () => void
  /** Calls `fn` every `ms` milliseconds until cancelled. Returns a cancel function. */
  every (ms: number, fn: () => void): () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    if (ms <= 0) {
      const h = setImmediate(fn)
      return () => { clearImmediate(h) }
    }
    const h = setTimeout(fn, ms)
    return () => { clearTimeout(h) }
  },
  every: (ms, fn) => {
    const h = setInterval(fn, ms)
    return () => { clearInterval(h) }
  }
}
