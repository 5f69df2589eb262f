import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { TermGrants } from '../../src/core/grants.ts'

describe('TermGrants (the vote carried by the inventory request)', () => {
  it('grants a term to one leader only, again to the same leader, and never an older term', () => {
    const g = new TermGrants()
    expect(g.grant(3, 'a')).toEqual({ granted: true, changed: true })
    expect(g.grant(3, 'a')).toEqual({ granted: true, changed: false })
    expect(g.grant(3, 'b')).toEqual({ granted: false, reason: 'taken', current: { term: 3, leader: 'a' } })
    expect(g.grant(2, 'a')).toEqual({ granted: false, reason: 'stale', current: { term: 3, leader: 'a' } })
    expect(g.grant(4, 'b')).toEqual({ granted: true, changed: true })
    expect(g.current).toEqual({ term: 4, leader: 'b' })
  })

  it('remembers a grant across a restart (it starts from what was persisted)', () => {
    const g = new TermGrants({ term: 5, leader: 'a' })
    expect(g.grant(5, 'b').granted).toBe(false)
    expect(g.grant(5, 'a').granted).toBe(true)
  })

  it('in any order of requests, no term is granted to two leaders', () => {
    const requests = fc.array(fc.record({ term: fc.integer({ min: 1, max: 6 }), leader: fc.constantFrom('a', 'b', 'c') }), { maxLength: 40 })
    fc.assert(fc.property(requests, reqs => {
      const g = new TermGrants()
      const granted = new Map<number, Set<string>>()
      for (const r of reqs) if (g.grant(r.term, r.leader).granted) granted.set(r.term, (granted.get(r.term) ?? new Set()).add(r.leader))
      for (const leaders of granted.values()) expect(leaders.size).toBe(1)
    }))
  })
})
