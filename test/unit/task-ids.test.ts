import { describe, expect, it } from 'vitest'
import { newTaskId } from '../../src/runtime/tasks/task-ids.ts'

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** The Unix ms a UUIDv7 carries in its first 48 bits. */
const msOf = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16)

describe('task ids (UUIDv7, src/runtime/tasks/task-ids.ts)', () => {
  it('are RFC 9562 version 7 UUIDs carrying the time they were made', () => {
    const now = Date.UTC(2026, 10, 30, 17, 0, 0, 123)
    const id = newTaskId(now + 10_000)
    expect(id).toMatch(V7)
    expect(msOf(id)).toBe(now + 10_000)
  })

  it('sort in the order they were made, also many within one millisecond and when the clock goes back', () => {
    const t = Date.UTC(2026, 10, 30, 18, 0, 0, 0)
    const ids: string[] = []
    // 10,000 in one millisecond: the 12-bit counter runs out twice and borrows later milliseconds.
    for (let i = 0; i < 10_000; i++) ids.push(newTaskId(t))
    // A clock that stepped back 5 s: still later than every id before.
    for (let i = 0; i < 100; i++) ids.push(newTaskId(t - 5_000))
    for (let i = 0; i < 100; i++) ids.push(newTaskId(t + 60_000 + i))
    for (const id of ids) expect(id).toMatch(V7)
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
    expect(msOf(ids.at(-1)!)).toBe(t + 60_099)
  })

  it('carry 62 random bits: ids of one millisecond differ beyond their time and counter', () => {
    // Two nodes making an id in the same millisecond with the same counter differ in their 62 random bits.
    const a = newTaskId(Date.UTC(2027, 0, 1))
    const tails = new Set(Array.from({ length: 1000 }, () => newTaskId(Date.UTC(2027, 0, 1)).slice(19)))
    expect(tails.size).toBe(1000)
    expect(a).toMatch(V7)
  })
})
