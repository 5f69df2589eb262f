import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import type { TaskSpec, TaskUpdate } from '../../src/core/tasks.ts'
import { TaskStore } from '../../src/store/task-store.ts'
import { newTaskId } from '../../src/runtime/tasks/task-ids.ts'
import { walReader } from '../support/wal-frames.ts'

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

function spec (id: string): TaskSpec {
  return { id, type: 'echo', payload: { id }, priority: 0, timeoutMs: 1000, maxAttempts: 3, idempotencyKey: null, createdAt: 1, origin: 'o', replicas: ['r'] }
}
function ending (id: string, at: number): TaskUpdate {
  return { id, status: 'succeeded', attempts: 1, worker: 'w', progress: null, result: { id }, error: null, startedAt: at, finishedAt: at }
}

describe('TaskStore pages written per task', () => {
  it('a task stored and then ended, one commit each (a holder on the sequential path), writes one page of each b-tree it changes', () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-store-pages-'))
    dirs.push(dir)
    const before = new TaskStore(dir)
    // Enough ended records for several leaves in every b-tree.
    for (let i = 0; i < 3; i++) {
      const ids = Array.from({ length: 500 }, () => newTaskId())
      before.insert(ids.map(spec))
      before.applyUpdates(ids.map(id => ending(id, i)))
    }
    // Closed (which checkpoints the log and removes it) and opened again: the log holds only what follows.
    before.close()
    const store = new TaskStore(dir)
    const frames = walReader(join(dir, 'tasks.db-wal'))
    const tasks = 100
    const written = { insert: [] as number[], ending: [] as number[] }
    for (let i = 0; i < tasks; i++) {
      const id = newTaskId()
      store.insert([spec(id)])
      written.insert.push(...frames())
      store.applyUpdates([ending(id, 10 + i)])
      written.ending.push(...frames())
    }
    store.close()
    // Each page's b-tree, read once the store (which has its file to itself) is closed: closing moves pages
    // from the log into the file, it does not renumber them.
    const side = new DatabaseSync(join(dir, 'tasks.db'), { readOnly: true })
    const owner = new Map((side.prepare('SELECT name, pageno FROM dbstat').all() as Array<{ name: string, pageno: number }>).map(r => [r.pageno, r.name]))
    const perTask = (pages: number[], tree: string): number => pages.filter(p => owner.get(p) === tree).length / tasks
    side.close()
    // tasks_order keeps the ended records before the unfinished ones: a task's entry moves within one leaf
    // when it ends (with (status, seq) it went from the 'queued' leaf to the last 'succeeded' one: 2 pages).
    // A little over 1 for the interior pages of leaf splits.
    expect(perTask(written.ending, 'tasks_order')).toBeLessThan(1.2)
    expect(perTask(written.insert, 'tasks_order')).toBeLessThan(1.2)
  })
})
