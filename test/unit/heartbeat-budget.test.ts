import { describe, expect, it } from 'vitest'
import { DEFAULTS } from '../../src/config.ts'
import { publishIntervalMs } from '../../src/core/heartbeat-pacing.ts'
import { silenceLimitsMs } from '../../src/core/membership.ts'
import { coreTimings } from '../../src/timings.ts'

// The default timings: heartbeatIntervalMs 250, failureTimeoutMs 1.5 s, followers' budget 8 a second.
const timings = coreTimings({ heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs, failureTimeoutMs: DEFAULTS.failureTimeoutMs, quorum: 0 })

/** A follower's cadence and silence limit in a cluster of `members` (it counts the others). */
function follower (members: number): { intervalMs: number, deadMs: number } {
  const intervalMs = publishIntervalMs(timings, members - 1, false)
  return { intervalMs, deadMs: silenceLimitsMs(timings, intervalMs).deadMs }
}

describe('the followers\' heartbeat budget with the default settings', () => {
  it('all followers together publish at most 8 heartbeats a second', () => {
    expect(timings.followerHeartbeatsPerSecond).toBe(8)
    for (const members of [4, 10, 25, 100, 1_000]) {
      const { intervalMs } = follower(members)
      expect((members - 1) * 1_000 / intervalMs).toBeLessThanOrEqual(8)
      expect((members - 1) * 1_000 / intervalMs).toBeGreaterThan(7.9)
    }
  })

  it('a follower of up to 3 members publishes every heartbeatIntervalMs and is dead after failureTimeoutMs; larger clusters pay a slower detection of a paused follower', () => {
    expect(follower(2)).toEqual({ intervalMs: 250, deadMs: 1_500 })
    expect(follower(3)).toEqual({ intervalMs: 250, deadMs: 1_500 })
    expect(follower(4)).toEqual({ intervalMs: 375, deadMs: 2_250 })
    expect(follower(10)).toEqual({ intervalMs: 1_125, deadMs: 6_750 })
    expect(follower(25)).toEqual({ intervalMs: 3_000, deadMs: 18_000 })
  })

  it('the leader and a joining node publish every heartbeatIntervalMs whatever the size, so the leader is dead after failureTimeoutMs', () => {
    const intervalMs = publishIntervalMs(timings, 24, true)
    expect(intervalMs).toBe(250)
    expect(silenceLimitsMs(timings, intervalMs).deadMs).toBe(1_500)
  })
})
