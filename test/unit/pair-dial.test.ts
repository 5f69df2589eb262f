import { describe, expect, it } from 'vitest'
import { ALONE_YIELD_MS, PAIR_YIELD_MS, pairDialDelayMs } from '../../src/net/pair-dial.ts'

describe('one connection per pair of members (src/net/pair-dial.ts)', () => {
  it('of two members that hear of each other, exactly one dials at once; the other waits', () => {
    const ids = ['12D3KooWA', '12D3KooWB', '12D3KooWz', '12D3KooW9']
    for (const a of ids) {
      for (const b of ids) {
        if (a === b) continue
        const delays = [pairDialDelayMs(a, b, 3), pairDialDelayMs(b, a, 3)]
        expect(delays.filter(d => d === 0)).toHaveLength(1)
        expect(pairDialDelayMs(a, b, 3)).toBe(a < b ? 0 : PAIR_YIELD_MS)
      }
    }
  })

  it('a node connected to nobody waits less before it dials a peer with a smaller id', () => {
    expect(pairDialDelayMs('b', 'a', 0)).toBe(ALONE_YIELD_MS)
    expect(pairDialDelayMs('b', 'a', 1)).toBe(PAIR_YIELD_MS)
    expect(pairDialDelayMs('a', 'b', 0)).toBe(0)
    expect(ALONE_YIELD_MS).toBeLessThan(PAIR_YIELD_MS)
  })
})
