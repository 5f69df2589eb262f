import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { claimBeats, electLeader, isOlder } from '../../src/core/election.ts'

const candidate = fc.record({ id: fc.string({ minLength: 1, maxLength: 6 }), incarnation: fc.integer({ min: 0, max: 50 }) })
const distinctCandidates = fc.uniqueArray(candidate, { selector: c => c.id, minLength: 1, maxLength: 9 })

describe('electLeader', () => {
  it('names nobody when there are no candidates', () => {
    expect(electLeader([])).toBeNull()
  })

  it('picks the earliest incarnation, ties broken by the smaller id', () => {
    expect(electLeader([{ id: 'b', incarnation: 5 }, { id: 'a', incarnation: 7 }, { id: 'c', incarnation: 5 }])).toBe('b')
  })

  it('gives the same verdict to every node holding the same view, whatever the order', () => {
    fc.assert(fc.property(distinctCandidates, fc.integer(), (view, shift) => {
      const rotated = view.map((_, i) => view[(i + Math.abs(shift)) % view.length]!)
      const reversed = [...view].reverse()
      const leader = electLeader(view)
      expect(electLeader(rotated)).toBe(leader)
      expect(electLeader(reversed)).toBe(leader)
      // Exactly one member is older than all others.
      expect(view.filter(c => view.every(o => o === c || isOlder(c, o)))).toHaveLength(1)
    }))
  })

  it('never lets a member that joins later displace the live leader', () => {
    fc.assert(fc.property(distinctCandidates, fc.integer({ min: 1, max: 10 }), (view, n) => {
      const leader = electLeader(view)
      const newest = Math.max(...view.map(c => c.incarnation))
      const joiners = Array.from({ length: n }, (_, i) => ({ id: `joiner-${i}`, incarnation: newest + 1 + i }))
      expect(electLeader([...joiners, ...view])).toBe(leader)
    }))
  })
})

describe('claimBeats', () => {
  it('prefers the higher term, then the older leader', () => {
    const old = { id: 'a', incarnation: 1 }
    const young = { id: 'b', incarnation: 2 }
    expect(claimBeats({ term: 3, leader: young }, { term: 2, leader: old })).toBe(true)
    expect(claimBeats({ term: 2, leader: old }, { term: 2, leader: young })).toBe(true)
    expect(claimBeats({ term: 2, leader: young }, { term: 2, leader: old })).toBe(false)
  })

  it('is a strict order: never both ways, never against itself', () => {
    const claim = fc.record({ term: fc.integer({ min: 0, max: 5 }), leader: candidate })
    fc.assert(fc.property(claim, claim, (a, b) => {
      expect(claimBeats(a, b) && claimBeats(b, a)).toBe(false)
      expect(claimBeats(a, a)).toBe(false)
    }))
  })
})
