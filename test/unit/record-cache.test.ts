import { describe, expect, it } from 'vitest'
import type { TaskRecord } from '../../src/core/tasks.ts'
import { RecordCache } from '../../src/store/record-cache.ts'

const rec = (id: string): TaskRecord => ({ id, type: 'echo', payload: null, priority: 0, timeoutMs: 1000, maxAttempts: 1, idempotencyKey: null, createdAt: 1, origin: 'o', replicas: [], status: 'queued', attempts: 0, worker: null, progress: null, result: null, error: null, startedAt: null, finishedAt: null })

describe('RecordCache (the store\'s records in memory)', () => {
  it('drops the least recently kept record once over its count', () => {
    const c = new RecordCache(2, 1_000)
    c.set(rec('a'), 10)
    c.set(rec('b'), 10)
    c.set(rec('a'), 10) // kept again: now the newest
    c.set(rec('c'), 10)
    expect([c.get('a')?.id, c.get('b')?.id, c.get('c')?.id]).toEqual(['a', undefined, 'c'])
    expect(c.bytes).toBe(20)
  })

  it('drops the oldest records once over its bytes, and never keeps a record larger than all of them', () => {
    const c = new RecordCache(100, 100)
    c.set(rec('a'), 40)
    c.set(rec('b'), 40)
    c.set(rec('c'), 30, 10) // 40 in all: a goes
    expect([c.get('a'), c.get('b')?.id, c.get('c')?.id]).toEqual([undefined, 'b', 'c'])
    expect(c.bytes).toBe(80)
    c.set(rec('huge'), 101)
    expect(c.get('huge')).toBeUndefined()
    expect([c.size, c.bytes]).toEqual([2, 80])
  })

  it('remembers the part of a record\'s size that updates leave alone, and forgets it with the record', () => {
    const c = new RecordCache(10, 1_000)
    c.set(rec('a'), 50, 200)
    expect(c.baseOf('a')).toBe(50)
    expect(c.bytes).toBe(250)
    c.delete('a')
    expect([c.baseOf('a'), c.bytes, c.size]).toEqual([undefined, 0, 0])
    c.set(rec('b'), 5)
    c.clear()
    expect([c.get('b'), c.bytes]).toEqual([undefined, 0])
  })
})
