import { mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { plannedCopies } from '../../src/core/admission.ts'
import { EXPIRED_IDS_KEPT, nextSweepDelayMs, planSweep } from '../../src/core/retention.ts'
import type { TaskSpec, TaskUpdate } from '../../src/core/tasks.ts'
import { TaskStore } from '../../src/store/task-store.ts'

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

function tempDir (): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-retention-'))
  dirs.push(dir)
  return dir
}

function spec (id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return { id, type: 'echo', payload: { id }, priority: 0, timeoutMs: 1000, maxAttempts: 3, idempotencyKey: null, createdAt: 1, origin: 'o', replicas: ['r'], ...over }
}

function ended (id: string, finishedAt: number, status: 'succeeded' | 'failed' | 'cancelled' = 'succeeded'): TaskUpdate {
  return { id, status, attempts: 1, worker: 'w', progress: null, result: { id }, error: status === 'succeeded' ? null : 'x', startedAt: finishedAt - 1, finishedAt }
}

const policy = { retainFinishedMs: 1_000, retainFinishedCount: 3 }

describe('retention decisions (pure)', () => {
  it('removes what is beyond the count first, at most one step\'s worth, and expires by age from the node\'s retention', () => {
    expect(planSweep(10, 5_000, policy, 4)).toEqual({ overCount: 4, endedBefore: 4_000, expiresBy: 5_000, limit: 4 })
    expect(planSweep(2, 5_000, policy, 4).overCount).toBe(0)
  })

  it('sweeps again at once only while the last step was full', () => {
    expect(nextSweepDelayMs(500, 500, 1_000)).toBe(0)
    expect(nextSweepDelayMs(499, 500, 1_000)).toBe(1_000)
  })

  it('stores two copies when another live member can take one, one on a lone node, and refuses below minCopies', () => {
    expect(plannedCopies(3, 1)).toBe(2)
    expect(plannedCopies(0, 1)).toBe(1)
    expect(plannedCopies(1, 2)).toBe(2)
    expect(plannedCopies(0, 2)).toBeNull()
  })
})

describe('RecordRetention (node:sqlite)', () => {
  it('forgets finished records by age, never unfinished ones, and remembers the ids it forgot', () => {
    const s = new TaskStore(tempDir())
    s.insert([spec('old'), spec('new'), spec('open'), spec('own', { retainMs: 10_000 })])
    s.applyUpdates([ended('old', 1_000), ended('new', 4_500), ended('own', 1_000)])
    expect(s.retention.finishedHeld).toBe(3)
    const removed = s.retention.sweep(planSweep(s.retention.finishedHeld, 5_000, { retainFinishedMs: 1_000, retainFinishedCount: 100 }, 100))
    expect(removed).toBe(1)
    expect(s.get('old')).toBeUndefined()
    expect(s.retention.wasForgotten('old')).toBe(true)
    expect(s.retention.wasForgotten('never')).toBe(false)
    expect(s.get('new')?.status).toBe('succeeded')
    expect(s.get('open')?.status).toBe('queued')
    expect(s.get('own')?.retainMs).toBe(10_000)
    // Its own retention ends at 11,000.
    expect(s.retention.sweep(planSweep(2, 11_000, { retainFinishedMs: 1_000_000, retainFinishedCount: 100 }, 100))).toBe(1)
    expect(s.get('own')).toBeUndefined()
    expect(s.retention.finishedHeld).toBe(1)
    s.close()
  })

  it('keeps at most retainFinishedCount finished records, forgetting the oldest endings first, one bounded step at a time', () => {
    const s = new TaskStore(tempDir())
    const ids = Array.from({ length: 10 }, (_, i) => `t${i}`)
    s.insert(ids.map(id => spec(id)))
    // Ended in reverse order: t9 ended first.
    s.applyUpdates(ids.map((id, i) => ended(id, 10_000 - i)))
    const keep = { retainFinishedMs: 1_000_000, retainFinishedCount: 3 }
    expect(s.retention.sweep(planSweep(s.retention.finishedHeld, 10_000, keep, 4))).toBe(4)
    expect(s.retention.sweep(planSweep(s.retention.finishedHeld, 10_000, keep, 4))).toBe(3)
    expect(s.retention.sweep(planSweep(s.retention.finishedHeld, 10_000, keep, 4))).toBe(0)
    expect(s.list({ limit: 100 }).map(r => r.id).sort()).toEqual(['t0', 't1', 't2'])
    expect(s.retention.finishedHeld).toBe(3)
    s.close()
  })

  it('forgets the oldest endings first across records on the node\'s retention and on their own, by count and by purge', () => {
    const s = new TaskStore(tempDir())
    const ids = Array.from({ length: 10 }, (_, i) => `t${i}`)
    // Every third one keeps its record on its own retention (a long one: only the count or a purge forgets it).
    s.insert(ids.map((id, i) => spec(id, i % 3 === 0 ? { retainMs: 1_000_000 } : {})))
    // Ended in reverse order: t9 ended first.
    s.applyUpdates(ids.map((id, i) => ended(id, 10_000 - i, i % 4 === 0 ? 'failed' : 'succeeded')))
    const keep = { retainFinishedMs: 1_000_000, retainFinishedCount: 6 }
    // Four over the count, in one step of up to 3 and then one of 1: t9, t8, t7 and then t6, of both kinds.
    expect(s.retention.sweep(planSweep(s.retention.finishedHeld, 10_000, keep, 3))).toBe(3)
    expect(ids.filter(id => s.get(id) !== undefined)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6'])
    expect(s.retention.sweep(planSweep(s.retention.finishedHeld, 10_000, keep, 3))).toBe(1)
    expect(ids.filter(id => s.get(id) !== undefined)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5'])
    // A purge step of 2 of those that ended before 9,998 (t5, t4, t3; t3 on its own retention): the oldest two, t5 and t4.
    expect(s.retention.purgeStep({ before: 9_998 }, 2)).toBe(2)
    expect(ids.filter(id => s.get(id) !== undefined)).toEqual(['t0', 't1', 't2', 't3'])
    // By status: of the failed (t0, t4, t8), only t0 is left, and it ended at 10,000.
    expect(s.retention.purgeStep({ status: 'failed', before: 10_001 }, 10)).toBe(1)
    expect(ids.filter(id => s.get(id) !== undefined)).toEqual(['t1', 't2', 't3'])
    expect(s.retention.purgeStep({ before: 10_001 }, 10)).toBe(3)
    expect(s.retention.finishedHeld).toBe(0)
    s.close()
  })

  it('an idle sweep remembers when the earliest held record expires, and an ending (even one that expires sooner) makes it look again', () => {
    const s = new TaskStore(tempDir())
    const keep = { retainFinishedMs: 1_000, retainFinishedCount: 100 }
    const sweepAt = (now: number): number => s.retention.sweep(planSweep(s.retention.finishedHeld, now, keep, 100))
    s.insert([spec('a'), spec('b'), spec('short', { retainMs: 10 })])
    s.applyUpdates([ended('a', 1_000)])
    expect(sweepAt(1_500)).toBe(0) // 'a' expires at 2,000
    expect(sweepAt(1_999)).toBe(0)
    // Ended after that look, with its own short retention: due at 1,510, before 'a'.
    s.applyUpdates([ended('short', 1_500)])
    expect(sweepAt(1_509)).toBe(0)
    expect(sweepAt(1_510)).toBe(1)
    expect(s.get('short')).toBeUndefined()
    expect(sweepAt(1_999)).toBe(0)
    expect(sweepAt(2_000)).toBe(1)
    expect(s.get('a')).toBeUndefined()
    // Nothing finished held: nothing to look at, until the next ending.
    expect(sweepAt(1e12)).toBe(0)
    s.applyUpdates([ended('b', 3_000)])
    expect(sweepAt(4_000)).toBe(1)
    expect(s.retention.finishedHeld).toBe(0)
    s.close()
  })

  it('counts finished records across a reopen, and keeps the forgotten ids', () => {
    const dir = tempDir()
    const a = new TaskStore(dir)
    a.insert([spec('a'), spec('b')])
    a.applyUpdates([ended('a', 1), ended('b', 2)])
    a.retention.purgeStep({ before: 2 }, 100)
    a.close()
    const b = new TaskStore(dir)
    expect(b.retention.finishedHeld).toBe(1)
    expect(b.retention.wasForgotten('a')).toBe(true)
    b.close()
  })

  it('purges by status and end time only', () => {
    const s = new TaskStore(tempDir())
    s.insert([spec('ok1'), spec('ok2'), spec('bad'), spec('open')])
    s.applyUpdates([ended('ok1', 100), ended('ok2', 300), ended('bad', 100, 'failed')])
    expect(s.retention.purgeStep({ status: 'succeeded', before: 200 }, 100)).toBe(1)
    expect(s.get('ok1')).toBeUndefined()
    expect(s.get('ok2')).toBeDefined()
    expect(s.get('bad')).toBeDefined()
    expect(s.retention.purgeStep({ before: 1_000 }, 100)).toBe(2)
    expect(s.list({ limit: 10 }).map(r => r.id)).toEqual(['open'])
    s.close()
  })

  it('remembers at most EXPIRED_IDS_KEPT forgotten ids, the newest', () => {
    const s = new TaskStore(null)
    const n = EXPIRED_IDS_KEPT + 10
    const ids = Array.from({ length: n }, (_, i) => `x${i}`)
    for (let i = 0; i < n; i += 10_000) {
      const part = ids.slice(i, i + 10_000)
      s.insert(part.map(id => spec(id)))
      s.applyUpdates(part.map(id => ended(id, 1)))
      expect(s.retention.purgeStep({ before: 2 }, 10_000)).toBe(part.length)
    }
    expect(s.retention.wasForgotten('x0')).toBe(false)
    expect(s.retention.wasForgotten('x10')).toBe(true)
    expect(s.retention.wasForgotten(`x${n - 1}`)).toBe(true)
    s.close()
  })

  it('gives the pages of forgotten records back: the file shrinks after a purge', () => {
    const dir = tempDir()
    const s = new TaskStore(dir)
    const big = 'x'.repeat(2_000)
    const ids = Array.from({ length: 5_000 }, (_, i) => `t${i}`)
    s.insert(ids.map(id => spec(id, { payload: big })))
    s.applyUpdates(ids.map(id => ended(id, 1)))
    const file = join(dir, 'tasks.db')
    const full = s.retention.pages().usedBytes
    expect(full).toBeGreaterThan(10_000_000)
    let left = Infinity
    while (left > 0) left = s.retention.purgeStep({ before: 2 }, 1_000)
    for (let i = 0; i < 20; i++) s.retention.vacuumStep()
    const pages = s.retention.pages()
    expect(pages.usedBytes + pages.freeBytes).toBeLessThan(full / 2)
    s.close()
    // Closing checkpoints the WAL into the file, which keeps the vacuumed size.
    expect(statSync(file).size).toBeLessThan(full / 2)
  })
})
