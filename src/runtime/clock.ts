/** The only source of time for the runtime; tests may pass another. */
export interface Clock {
  /** Milliseconds since the Unix epoch (incarnations compare across machines). */
  now (): number
}

export const systemClock: Clock = { now: () => Date.now() }
