import { describe, expect, it } from 'vitest'
import { mdnsQueryDelayMs } from '../../src/net/mdns-search.ts'

/** The delays a node waits before each of its next `n` queries, for the peers it is connected to at each. */
function delays (peersAtEachQuery: number[], intervalMs: number): number[] {
  let searchMs = 2_000
  return peersAtEachQuery.map(peers => {
    const next = mdnsQueryDelayMs(peers, searchMs, intervalMs)
    searchMs = next.searchMs
    return next.delayMs
  })
}

describe('mDNS query schedule (the cost stays flat as the cluster grows)', () => {
  it('a node connected to nobody asks again after 2 s, 4 s, ... up to the interval', () => {
    expect(delays([0, 0, 0, 0, 0], 5_000)).toEqual([2_000, 4_000, 5_000, 5_000, 5_000])
    expect(delays([0, 0, 0, 0, 0, 0], 60_000)).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 60_000])
  })

  it('connected members share the queries: the cluster as a whole asks about once per interval', () => {
    for (const members of [2, 5, 25, 50, 1_000]) {
      const [delayMs] = delays([members - 1], 5_000)
      // Each of `members` nodes asks every delayMs: members / delayMs queries a second in all.
      expect(members / delayMs!).toBeCloseTo(1 / 5_000, 12)
    }
  })

  it('a node that is alone again starts its search over at 2 s', () => {
    expect(delays([0, 0, 0, 3, 0, 0], 5_000)).toEqual([2_000, 4_000, 5_000, 20_000, 2_000, 4_000])
  })

  it('a short interval caps the first search step too', () => {
    expect(delays([0, 0], 500)).toEqual([500, 500])
  })
})
