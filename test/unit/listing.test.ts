import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { compareKeys, mergePages } from '../../src/core/listing.ts'
import type { HolderPage, PageKey } from '../../src/core/listing.ts'

interface Rec extends PageKey { v: number }
const advanced = (a: Rec, b: Rec): boolean => b.v > a.v

/** What a holder answers for a page after `before`: its records in order, `limit` at most, and whether it has more. */
function answer (held: Rec[], before: PageKey | null, limit: number): HolderPage<Rec> {
  const after = [...held].sort(compareKeys).filter(r => before === null || compareKeys(r, before) > 0)
  return { tasks: after.slice(0, limit), more: after.length > limit }
}

describe('cluster-wide listing (mergePages)', () => {
  it('orders newest submit first, keeps the most advanced copy, and stops at the first holder that has more', () => {
    const a: Rec[] = [{ createdAt: 30, id: 'x', v: 1 }, { createdAt: 20, id: 'y', v: 1 }, { createdAt: 10, id: 'z', v: 1 }]
    const b: Rec[] = [{ createdAt: 30, id: 'x', v: 2 }, { createdAt: 25, id: 'w', v: 1 }]
    const merged = mergePages([answer(a, null, 2), answer(b, null, 2)], 10, advanced)
    // a has more after y (20): w (25) and y are certain, nothing after y is.
    expect(merged.tasks.map(r => [r.id, r.v])).toEqual([['x', 2], ['w', 1], ['y', 1]])
    expect(merged.next).toEqual({ createdAt: 20, id: 'y' })
    expect(mergePages([answer(a, merged.next, 2), answer(b, merged.next, 2)], 10, advanced)).toEqual({ tasks: [a[2]], next: null })
  })

  it('pages through any set of holders\' copies: every task exactly once, in order, whatever the page size', () => {
    const recs = fc.uniqueArray(fc.record({ createdAt: fc.integer({ min: 0, max: 20 }), id: fc.constantFrom(...'abcdefghijklmnop'.split('')) }), { selector: r => r.id, maxLength: 16 })
    fc.assert(fc.property(recs, fc.array(fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), (tasks, holds, perHolder, limit) => {
      // Each task is held by the holders whose flag is set (by at least the first when none is).
      const held = holds.map((flags, h) => tasks.filter((_, i) => flags[i] === true || (h === 0 && holds.every(f => f[i] !== true))).map(t => ({ ...t, v: h })))
      const seen: string[] = []
      let before: PageKey | null = null
      for (let round = 0; round < 100; round++) {
        const page = mergePages(held.map(hs => answer(hs, before, perHolder)), limit, advanced)
        seen.push(...page.tasks.map(t => t.id))
        if (page.next === null) break
        before = page.next
      }
      expect(seen).toEqual([...tasks].sort(compareKeys).map(t => t.id))
    }))
  })
})
