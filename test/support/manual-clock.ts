/**
 * A Clock whose time moves only when a test says so: `advance(ms)` runs every
 * timer that comes due on the way, in time order (ties in the order they were
 * set), each at its own due time.
 */
import type { Clock } from '../../src/runtime/clock.ts'

interface Timer { atMs: number, seq: number, fn: () => void, everyMs: number | null, cancelled: boolean }

export class ManualClock implements Clock {
  #nowMs: number
  #seq = 0
  #timers: Timer[] = []

  constructor (startMs = 1_700_000_000_000) {
    this.#nowMs = startMs
  }

  now (): number { return this.#nowMs }

  after (ms: number, fn: () => void): () => void {
    return this.#add(Math.max(0, ms), fn, null)
  }

  every (ms: number, fn: () => void): () => void {
    return this.#add(ms, fn, ms)
  }

  /** Timers not yet fired nor cancelled. */
  get pending (): number { return this.#timers.filter(t => !t.cancelled).length }

  /** Moves time forward by `ms`, firing due timers; lets promises settle after each one. */
  async advance (ms: number): Promise<void> {
    const endMs = this.#nowMs + ms
    for (;;) {
      const due = this.#timers.filter(t => !t.cancelled && t.atMs <= endMs).sort((a, b) => a.atMs - b.atMs || a.seq - b.seq)[0]
      if (due === undefined) break
      this.#nowMs = due.atMs
      if (due.everyMs === null) due.cancelled = true
      else { due.atMs += due.everyMs; due.seq = this.#seq++ }
      due.fn()
      await settle()
    }
    this.#timers = this.#timers.filter(t => !t.cancelled)
    this.#nowMs = endMs
    await settle()
  }

  #add (ms: number, fn: () => void, everyMs: number | null): () => void {
    const t: Timer = { atMs: this.#nowMs + ms, seq: this.#seq++, fn, everyMs, cancelled: false }
    this.#timers.push(t)
    return () => { t.cancelled = true }
  }
}

/** Lets every pending promise (and what it triggers) run. */
async function settle (): Promise<void> {
  await new Promise<void>(resolve => { setImmediate(resolve) })
}
