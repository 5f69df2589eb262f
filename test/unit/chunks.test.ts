import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { chunkBySize, firstChunkBySize } from '../../src/runtime/chunks.ts'

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

describe('firstChunkBySize', () => {
  it('is the first batch of chunkBySize (empty for no items)', () => {
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 50 })), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 10 }), (items, max, maxItems) => {
      expect(firstChunkBySize(items, max, maxItems)).toEqual(chunkBySize(items, max, maxItems)[0] ?? [])
    }))
  })

  it('does not measure the items after the first batch, nor a lone item', () => {
    let measured = 0
    const item = (n: number): { toJSON: () => number } => ({ toJSON: () => { measured++; return n } })
    const items = Array.from({ length: 1_000 }, (_, i) => item(i))
    expect(firstChunkBySize(items, 1_000, 10)).toEqual(items.slice(0, 10))
    expect(measured).toBe(10)
    measured = 0
    expect(chunkBySize([item(1)], 1)).toHaveLength(1)
    expect(firstChunkBySize([item(1)], 1)).toHaveLength(1)
    expect(measured).toBe(0)
  })
})
