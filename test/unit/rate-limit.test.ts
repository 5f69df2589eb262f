import { describe, expect, it } from 'vitest'
import { bearerOf, tokenMatches } from '../../src/http/auth.ts'
import { LogThrottle, PeerRateLimiter } from '../../src/net/rate-limit.ts'
import { RpcFaults } from '../../src/net/scoring.ts'

describe('per-peer limits', () => {
  it('lets a burst of one second\'s frames through, then the rate, per peer', () => {
    let now = 0
    const limiter = new PeerRateLimiter(10, () => now)
    expect(Array.from({ length: 12 }, () => limiter.take('a')).filter(Boolean)).toHaveLength(10)
    expect(limiter.take('b')).toBe(true)
    now += 500
    expect(Array.from({ length: 10 }, () => limiter.take('a')).filter(Boolean)).toHaveLength(5)
  })

  it('keeps bounded memory whatever number of peers it has seen', () => {
    let now = 0
    const limiter = new PeerRateLimiter(5, () => now)
    for (let i = 0; i < 50_000; i++) { now++; limiter.take(`peer-${i}`) }
    // A flood of fresh keys cannot starve a new one.
    expect(limiter.take('fresh')).toBe(true)
  })

  it('throttles warnings to one per key and interval, counting the ones held back', () => {
    let now = 0
    const t = new LogThrottle(1000, () => now)
    expect(t.pass('x')).toBe(0)
    expect(t.pass('x')).toBeUndefined()
    expect(t.pass('x')).toBeUndefined()
    expect(t.pass('y')).toBe(0)
    now += 1000
    expect(t.pass('x')).toBe(2)
  })

  it('penalises RPC garbage, and the penalty decays', () => {
    let now = 0
    const faults = new RpcFaults(() => now)
    faults.add('p')
    faults.add('p')
    expect(faults.penalty('p')).toBe(60)
    expect(faults.penalty('q')).toBe(0)
    now += 30_000
    expect(faults.penalty('p')).toBeCloseTo(30)
    now += 600_000
    expect(faults.penalty('p')).toBe(0)
  })
})

describe('bearer tokens', () => {
  it('accepts only the exact token, from a well-formed header', () => {
    expect(tokenMatches('s3cret-token-value', 's3cret-token-value')).toBe(true)
    expect(tokenMatches('s3cret-token-valuE', 's3cret-token-value')).toBe(false)
    expect(tokenMatches('s3cret', 's3cret-token-value')).toBe(false)
    expect(bearerOf('Bearer abc.def')).toBe('abc.def')
    expect(bearerOf('bearer   abc')).toBe('abc')
    expect(bearerOf('Basic abc')).toBeUndefined()
    expect(bearerOf('Bearer a b')).toBeUndefined()
    expect(bearerOf(undefined)).toBeUndefined()
  })
})
