/**
 * A node's own stalls (SIGSTOP, a VM pause, a starved event loop), noticed
 * by whichever input wakes it first: the gap since its last step. Pure: the
 * caller passes the time of each step.
 */
import { silenceLimitsMs } from './membership.ts'
import type { FailureDetectorConfig } from './membership.ts'

export interface Stall {
  gapMs: number
  /** The node had been stepped before (a gap before its first step is its start, not a stall it lived through). */
  running: boolean
}

export class StallWatch {
  readonly #config: FailureDetectorConfig
  /** When the node was last stepped (a tick, a heartbeat, a hint). */
  #lastStepMs: number
  #stepped = false

  constructor (config: FailureDetectorConfig, nowMs: number) {
    this.#config = config
    this.#lastStepMs = nowMs
  }

  /** Records a step at `nowMs`: the stall before it, or null when the gap is within what a busy step can take. */
  step (nowMs: number): Stall | null {
    const gapMs = nowMs - this.#lastStepMs
    const running = this.#stepped
    this.#stepped = true
    this.#lastStepMs = Math.max(this.#lastStepMs, nowMs)
    if (gapMs <= Math.max(this.#config.failureTimeoutMs / 2, 4 * this.#config.heartbeatIntervalMs)) return null
    return { gapMs, running }
  }
}

/**
 * A stall calls for a new incarnation only when the others have declared
 * this node dead by now: silent (since its last heartbeat, `lastPublishMs`)
 * for their limit for the interval it announced. A follower of a large
 * cluster announces a slower cadence, so a stall of a second or two on an
 * overloaded host changes nothing for the others and must not churn every
 * view with a new incarnation. Nor does a stall inside the first join window
 * (`starting`: never led or followed in this life): the node claimed
 * nothing, its heartbeats said `joining`, and one the others hold dead is
 * admitted back as the youngest member (or, if refused, told to refute by
 * their dead lists).
 */
export function stallReincarnates (config: FailureDetectorConfig, stall: Stall, nowMs: number, lastPublishMs: number | null, announcedIntervalMs: number, starting: boolean): boolean {
  if (starting) return false
  const silentMs = nowMs - (lastPublishMs ?? nowMs - stall.gapMs)
  return silentMs >= silenceLimitsMs(config, announcedIntervalMs).deadMs
}
