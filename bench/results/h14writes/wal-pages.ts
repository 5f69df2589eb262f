/**
 * Which b-tree pages one sequential task's commits write to the WAL, on one
 * holder's store alone: a store with N ended tasks (default 5,000), then
 * 200 tasks each stored (one commit, as a holder's insert) and then ended
 * (one commit, as a holder's applyUpdates with the ending); the WAL's frame
 * headers are read after each commit and each frame's page is named by the
 * b-tree that owns it (dbstat; a page no b-tree owns, such as a pointer map
 * page, is "other"). Prints WAL frames per task by commit and b-tree.
 *
 *   node bench/results/h14writes/wal-pages.ts [--root DIR] [--held N] [--payload BYTES]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { walReader } from '../../../test/support/wal-frames.ts'
import { DatabaseSync } from 'node:sqlite'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { root: { type: 'string' }, held: { type: 'string' }, payload: { type: 'string' } } })
const root = resolve(values.root ?? join(import.meta.dirname, '../../..'))
const HELD = Number(values.held ?? 5000)
const TASKS = 200
/** Bytes of filler in each payload (and so in each echo result): `--payload N`. */
const FILL = 'x'.repeat(Number(values.payload ?? 0))
const { TaskStore } = await import(join(root, 'src/store/task-store.ts')) as typeof import('../../../src/store/task-store.ts')
const { newTaskId } = await import(join(root, 'src/runtime/tasks/task-ids.ts')) as { newTaskId: () => string }
const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-wal-pages-'))
const filled = new TaskStore(dir)
const spec = (id: string, n: number) => ({ id, type: 'echo', payload: { n, fill: FILL }, priority: 0, timeoutMs: 30_000, maxAttempts: 3, idempotencyKey: null, createdAt: Date.now(), origin: 'origin', replicas: ['replica'] })
const ending = (id: string, n: number) => ({ id, status: 'succeeded' as const, attempts: 1, worker: 'worker', progress: null, result: { n, fill: FILL }, error: null, startedAt: Date.now(), finishedAt: Date.now() })
for (let i = 0; i < HELD; i += 500) {
  const ids = Array.from({ length: 500 }, () => newTaskId())
  filled.insert(ids.map(id => spec(id, i)))
  filled.applyUpdates(ids.map(id => ending(id, i)))
}
// Closed (a checkpoint, the log removed) and opened again, so the log holds only what follows (a store
// that has its file to itself, as since h14writes, cannot be checkpointed from another connection).
filled.close()
const store = new TaskStore(dir)
const wal = join(dir, 'tasks.db-wal')
/** Page numbers of the frames appended since the last call (from the header again after a checkpoint restarted the WAL: new salts). */
const newFrames = walReader(wal)
newFrames()
const written = { insert: [] as number[], ending: [] as number[] }
for (let i = 0; i < TASKS; i++) {
  const id = newTaskId()
  store.insert([spec(id, i)])
  written.insert.push(...newFrames())
  store.applyUpdates([ending(id, i)])
  written.ending.push(...newFrames())
}
store.close()
// Pages named once the store is closed (closing moves them from the log into the file, same numbers).
const side = new DatabaseSync(join(dir, 'tasks.db'), { readOnly: true })
const owner = new Map<number, string>()
for (const r of side.prepare('SELECT name, pageno FROM dbstat').all() as Array<{ name: string, pageno: number }>) owner.set(r.pageno, r.name)
console.log(`store of ${root}, ${HELD} ended tasks held, ${FILL.length} bytes of filler in payload and result, ${TASKS} tasks one at a time: WAL frames per task`)
for (const [commit, pages] of Object.entries(written)) {
  const by = new Map<string, number>()
  for (const p of pages) { const n = owner.get(p) ?? 'other'; by.set(n, (by.get(n) ?? 0) + 1) }
  console.log(`  ${commit}: ${(pages.length / TASKS).toFixed(2)} frames (${[...by].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${(c / TASKS).toFixed(2)}`).join(', ')})`)
}
side.close()
rmSync(dir, { recursive: true, force: true })
