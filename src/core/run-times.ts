/**
 * How long each task type's attempts run, as this leader has seen them (a
 * moving mean of the workers' own start and end times), and the assignment
 * window that allows: a worker may hold `base` attempts per slot (one
 * running, the rest waiting there), or WIDE_WINDOW once the type's attempts
 * are known to be short. Short attempts then never leave a slot idle for a
 * round trip to the leader; long ones never queue up behind one another on
 * one worker while another idles. Pure: no clock of its own.
 */

/** A type whose attempts run shorter than this (mean) gets the wide window. */
export const SHORT_RUN_MS = 20
/** Attempts per slot a worker may hold of a short type. */
export const WIDE_WINDOW = 8
/** Weight of the newest run time in the mean. */
const WEIGHT = 0.2

export class RunTimes {
  readonly #meanMs = new Map<string, number>()

  /** One attempt of `type` ran `ms` (start to end, on its worker's clock). */
  observe (type: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return
    const mean = this.#meanMs.get(type)
    this.#meanMs.set(type, mean === undefined ? ms : mean + WEIGHT * (ms - mean))
  }

  /** Attempts per slot a worker may hold of this type: `base` until its runs are known to be short. */
  window (type: string, base: number): number {
    const mean = this.#meanMs.get(type)
    return mean !== undefined && mean < SHORT_RUN_MS ? Math.max(base, WIDE_WINDOW) : base
  }

  /** The widest window any type has now (for counting free places). */
  widest (base: number): number {
    for (const mean of this.#meanMs.values()) if (mean < SHORT_RUN_MS) return Math.max(base, WIDE_WINDOW)
    return base
  }
}
