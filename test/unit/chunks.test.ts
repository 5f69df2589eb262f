import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { chunkBySize } from '../../src/runtime/chunks.ts'

describe('chunkBySize', () => {
  it('keeps order, loses nothing, and keeps each batch under the limit unless one item alone exceeds it', () => {
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 50 })), fc.integer({ min: 1, max: 200 }), (items, max) => {
      const chunks = chunkBySize(items, max)
      expect(chunks.flat()).toEqual(items)
      for (const c of chunks) {
        const bytes = c.reduce((n, x) => n + Buffer.byteLength(JSON.stringify(x)) + 1, 0)
        expect(c.length === 1 || bytes <= max).toBe(true)
      }
    }))
  })

  it('caps the number of items per batch', () => {
    expect(chunkBySize([1, 2, 3, 4, 5], 1_000, 2)).toEqual([[1, 2], [3, 4], [5]])
  })
})
