import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TaskSpec } from '../../src/core/tasks.ts'
import { DatabaseSync } from 'node:sqlite'
import { TaskStore } from '../../src/store/task-store.ts'
import { MIGRATIONS } from '../../src/store/task-schema.ts'

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

/** A temporary data directory, removed after the test (its stores are closed by then). */
function tempDir (): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-store-'))
  dirs.push(dir)
  return dir
}

/** A store on a copy of `dir`'s database and log as they are on disk now, as a crash of the process would leave them. */
function onDiskNow (dir: string): TaskStore {
  const copy = tempDir()
  for (const file of ['tasks.db', 'tasks.db-wal']) if (existsSync(join(dir, file))) copyFileSync(join(dir, file), join(copy, file))
  return new TaskStore(copy)
}

function spec (id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return { id, type: 'echo', payload: { id }, priority: 0, timeoutMs: 1000, maxAttempts: 3, idempotencyKey: null, createdAt: 1, origin: 'o', replicas: ['r'], ...over }
}

describe('TaskStore (node:sqlite)', () => {
  it('keeps records across a reopen of the data directory', () => {
    const dir = tempDir()
    const a = new TaskStore(dir)
    a.insert([spec('t1'), spec('t2')])
    a.applyUpdates([{ id: 't1', status: 'succeeded', attempts: 1, worker: 'w', progress: 1, result: { ok: true }, error: null, startedAt: 2, finishedAt: 3 }])
    a.close()
    const b = new TaskStore(dir)
    expect(b.get('t1')).toMatchObject({ status: 'succeeded', result: { ok: true }, replicas: ['r'], payload: { id: 't1' } })
    expect(b.unfinished().map(r => r.id)).toEqual(['t2'])
    expect(b.counts()).toMatchObject({ queued: 1, succeeded: 1 })
    b.close()
  })

  it('writes an ending at once and a non-terminal change on flushDeferred, while every read here sees it at once', () => {
    const dir = tempDir()
    const s = new TaskStore(dir)
    s.insert([spec('t1'), spec('t2'), spec('t3')])
    const base = { attempts: 1, worker: 'w', progress: null, result: null, error: null, startedAt: 2, finishedAt: null }
    s.applyUpdates([{ id: 't1', status: 'running', ...base }, { id: 't2', status: 'assigned', ...base }])
    s.applyUpdates([{ id: 't2', status: 'succeeded', ...base, result: 7, finishedAt: 3 }])
    // What is on disk now (the files as a crash would leave them, opened elsewhere: the store has its own to
    // itself): the ending is there, the running state not yet.
    const disk = onDiskNow(dir)
    expect(disk.get('t1')).toMatchObject({ status: 'queued', attempts: 0 })
    expect(disk.get('t2')).toMatchObject({ status: 'succeeded', result: 7 })
    disk.close()
    // This store's own reads, by id, by key, listed and as unfinished, see the newest state.
    expect(s.get('t1')).toMatchObject({ status: 'running', attempts: 1 })
    expect(s.unfinished().find(r => r.id === 't1')).toMatchObject({ status: 'running', attempts: 1 })
    expect(s.list({ limit: 10 }).find(r => r.id === 't1')).toMatchObject({ status: 'running' })
    s.flushDeferred()
    const flushed = onDiskNow(dir)
    expect(flushed.get('t1')).toMatchObject({ status: 'running', attempts: 1, worker: 'w' })
    flushed.close()
    // A deferred change still pending at close is written by close.
    s.applyUpdates([{ id: 't3', status: 'running', ...base }])
    s.close()
    const reopened = new TaskStore(dir)
    expect(reopened.get('t3')).toMatchObject({ status: 'running', attempts: 1 })
    reopened.close()
  })

  it('maps a second task with a taken idempotency key to the first id, and ignores a repeated id', () => {
    const s = new TaskStore(tempDir())
    expect([...s.insert([spec('a', { idempotencyKey: 'k' })])]).toEqual([['a', 'a']])
    expect([...s.insert([spec('b', { idempotencyKey: 'k' }), spec('a', { idempotencyKey: 'k' })])]).toEqual([['b', 'a'], ['a', 'a']])
    expect(s.get('b')).toBeUndefined()
    s.close()
  })

  it('applies only newer updates; a terminal record yields only to one that ranks first, and names the endings it refused', () => {
    const s = new TaskStore(tempDir())
    s.insert([spec('t')])
    const run = { id: 't', status: 'running' as const, attempts: 1, worker: 'w', progress: null, result: null, error: null, startedAt: 5, finishedAt: null }
    expect(s.applyUpdates([run]).changed).toHaveLength(1)
    expect(s.applyUpdates([{ ...run, status: 'assigned' }])).toEqual({ changed: [], refused: [] })
    expect(s.applyUpdates([{ ...run, status: 'failed', error: 'x', finishedAt: 6 }]).changed).toHaveLength(1)
    expect(s.applyUpdates([{ ...run, status: 'running', attempts: 2 }])).toEqual({ changed: [], refused: [] })
    const success = { ...run, status: 'succeeded' as const, result: 42, finishedAt: 7 }
    expect(s.applyUpdates([success]).changed).toHaveLength(1)
    const later = s.applyUpdates([{ ...success, attempts: 2, worker: 'v' }])
    expect(later.changed).toEqual([])
    expect(later.refused.map(r => [r.status, r.attempts, r.worker])).toEqual([['succeeded', 1, 'w']])
    expect(s.get('t')?.result).toBe(42)
    s.close()
  })

  it('answers from memory exactly what is on disk, through inserts, updates, replicas, deletes and more records than it keeps in memory', () => {
    const dir = tempDir()
    const s = new TaskStore(dir)
    const ids = Array.from({ length: 12_000 }, (_, i) => `t${i}`)
    s.insert(ids.map(id => spec(id)))
    s.applyUpdates(ids.filter((_, i) => i % 3 === 0).map(id => ({ id, status: 'succeeded' as const, attempts: 1, worker: 'w', progress: 1, result: { id }, error: null, startedAt: 2, finishedAt: 3 })))
    s.setReplicas(['t1', 't11999'], ['r', 'q'])
    s.delete(['t2', 't11998'])
    s.insert([spec('t1', { payload: 'changed?' })]) // a repeated id changes nothing
    const checked = ['t0', 't1', 't2', 't3', 't5000', 't11997', 't11998', 't11999', 'nope']
    const answers = checked.map(id => s.get(id))
    expect(s.get('t1')).toMatchObject({ replicas: ['r', 'q'], payload: { id: 't1' } })
    // The store has its file to itself while open: what is on disk is read once it is closed.
    s.close()
    const disk = new TaskStore(dir)
    expect(checked.map(id => disk.get(id))).toEqual(answers)
    disk.close()
  })

  it('has its data directory to itself: a second store there is refused while the first is open, and opens once it is closed', () => {
    const dir = tempDir()
    const first = new TaskStore(dir)
    first.insert([spec('t1')])
    expect(() => new TaskStore(dir)).toThrow(/tasks\.db is in use by another process or store/)
    // The refusal changed nothing: the first goes on, and its records are there for the next one.
    first.insert([spec('t2')])
    first.close()
    const next = new TaskStore(dir)
    expect(['t1', 't2'].map(id => next.get(id)?.status)).toEqual(['queued', 'queued'])
    next.close()
  })

  it('upgrades a store whose idempotency keys were a column constraint: records, keys and their uniqueness kept, no index entry for a task without a key', () => {
    const dir = tempDir()
    // The store as the version before the rebuild left it: every migration before it.
    const rebuild = MIGRATIONS.findIndex(m => m.includes('tasks_rebuilt'))
    const old = new DatabaseSync(join(dir, 'tasks.db'))
    old.exec('PRAGMA journal_mode = WAL')
    for (const m of MIGRATIONS.slice(0, rebuild)) old.exec(m)
    old.exec(`PRAGMA user_version = ${rebuild}`)
    const insert = old.prepare(`INSERT INTO tasks (id, type, payload, priority, timeout_ms, max_attempts, idempotency_key, created_at, origin, replicas, status, attempts, seq, retain_ms, copies, run_at, parents)
      VALUES (?, 'echo', '{}', 0, 1000, 3, ?, 1, 'o', '["r"]', ?, ?, ?, ?, 2, ?, ?)`)
    insert.run('keyed', 'k1', 'queued', 0, 1, null, 5_000, null)
    insert.run('plain', null, 'succeeded', 1, 2, 60_000, null, '{"p":1}')
    old.close()

    const s = new TaskStore(dir)
    expect(s.get('keyed')).toMatchObject({ idempotencyKey: 'k1', status: 'queued', copies: 2, runAt: 5_000 })
    expect(s.get('plain')).toMatchObject({ idempotencyKey: null, status: 'succeeded', retainMs: 60_000, parents: { p: 1 } })
    expect(s.byIdempotencyKey('k1')?.id).toBe('keyed')
    // The reads in change order find the upgraded records by status (the `unfinished` column filled from it).
    expect(s.unfinished().map(r => r.id)).toEqual(['keyed'])
    expect(s.endedSince(0, 10).records.map(r => r.id)).toEqual(['plain'])
    expect(s.list({ status: 'queued', limit: 10 }).map(r => r.id)).toEqual(['keyed'])
    // The key still names one task: a second task under it maps to the first and is not stored.
    expect(s.insert([spec('again', { idempotencyKey: 'k1' }), spec('new')])).toEqual(new Map([['again', 'keyed'], ['new', 'new']]))
    expect(s.get('again')).toBeUndefined()
    s.close()

    const disk = new DatabaseSync(join(dir, 'tasks.db'), { readOnly: true })
    const indexes = (disk.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' ORDER BY name").all() as Array<{ name: string }>).map(r => r.name)
    // The primary key's index and the partial key index; no index over every task's (mostly NULL) key, none on seq alone.
    // Ended records by time in two parts (on the node's retention, kept on their own), not a third index over all of them.
    expect(indexes).toEqual(['sqlite_autoindex_tasks_1', 'tasks_ended_default', 'tasks_ended_kept', 'tasks_ended_own', 'tasks_idempotency_key', 'tasks_order'])
    const plan = disk.prepare('EXPLAIN QUERY PLAN SELECT * FROM tasks WHERE idempotency_key = ?').all('k1') as Array<{ detail: string }>
    expect(plan.map(p => p.detail).join(' ')).toContain('tasks_idempotency_key')
    expect((disk.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(MIGRATIONS.length)
    disk.close()
  })

  it('lists in change order across statuses without an index on seq alone, and each status\'s share through tasks_order', () => {
    const dir = tempDir()
    const s = new TaskStore(dir)
    const ids = Array.from({ length: 12 }, (_, i) => `t${i}`)
    s.insert(ids.map(id => spec(id)))
    const base = { attempts: 1, worker: 'w', progress: null, error: null, startedAt: 2, finishedAt: 3 }
    // Endings of three kinds, interleaved, and one running change (held in memory until flushed).
    s.applyUpdates([{ id: 't3', status: 'succeeded', ...base, result: 1 }])
    s.applyUpdates([{ id: 't1', status: 'failed', ...base, result: null, error: 'x' }])
    s.applyUpdates([{ id: 't7', status: 'cancelled', ...base, result: null }])
    s.applyUpdates([{ id: 't0', status: 'succeeded', ...base, result: 2 }])
    s.applyUpdates([{ id: 't5', status: 'running', ...base, result: null, finishedAt: null }])
    s.flushDeferred()
    const changed = ['t5', 't0', 't7', 't1', 't3']
    const untouched = ['t11', 't10', 't9', 't8', 't6', 't4', 't2']
    expect(s.list({ limit: 100 }).map(r => r.id)).toEqual([...changed, ...untouched])
    expect(s.list({ limit: 3 }).map(r => r.id)).toEqual(['t5', 't0', 't7'])
    expect(s.list({ status: 'queued', limit: 2 }).map(r => r.id)).toEqual(['t11', 't10'])
    const first = s.endedSince(0, 2)
    expect(first.records.map(r => r.id)).toEqual(['t3', 't1'])
    const rest = s.endedSince(first.lastSeq, 10)
    expect(rest.records.map(r => r.id)).toEqual(['t7', 't0'])
    expect(s.endedSince(rest.lastSeq, 10)).toEqual({ records: [], lastSeq: rest.lastSeq })
    expect(s.unfinished().map(r => r.id)).toEqual(['t2', 't4', 't6', 't8', 't9', 't10', 't11', 't5'])
    const seq = s.seq
    s.close()
    // The last sequence number survives a reopen (read per status), and new changes go on from it.
    const again = new TaskStore(dir)
    expect(again.seq).toBe(seq)
    again.insert([spec('t12')])
    expect(again.list({ limit: 1 }).map(r => r.id)).toEqual(['t12'])
    again.close()
    const disk = new DatabaseSync(join(dir, 'tasks.db'), { readOnly: true })
    // The queries as SeqOrder makes them: the index's first key (unfinished or ended) and the status.
    const plan = (query: string): string => (disk.prepare(`EXPLAIN QUERY PLAN ${query.replace('WHERE', 'WHERE unfinished = ? AND')}`).all(1, 'queued') as Array<{ detail: string }>).map(p => p.detail).join(' ')
    for (const query of ['SELECT * FROM tasks WHERE status = ? ORDER BY seq DESC LIMIT 5', 'SELECT * FROM tasks WHERE status = ? AND seq >= 3 ORDER BY seq DESC',
      'SELECT * FROM tasks WHERE status = ? AND seq > 3 AND seq <= 9 ORDER BY seq', 'SELECT * FROM tasks WHERE status = ? ORDER BY seq']) {
      expect(plan(query)).toContain('tasks_order')
      expect(plan(query)).not.toContain('TEMP B-TREE')
    }
    // The sequence numbers alone come from the index, without reading a row.
    for (const query of ['SELECT seq FROM tasks WHERE status = ? ORDER BY seq DESC LIMIT 5', 'SELECT seq FROM tasks WHERE status = ? AND seq > 3 ORDER BY seq LIMIT 5']) {
      expect(plan(query)).toContain('COVERING INDEX tasks_order')
      expect(plan(query)).not.toContain('TEMP B-TREE')
    }
    disk.close()
  })

  it('keeps at most 16 MB of large records in memory, and answers the rest from disk', () => {
    const dir = tempDir()
    const s = new TaskStore(dir)
    const big = 'x'.repeat(1024 * 1024)
    const ids = Array.from({ length: 40 }, (_, i) => `big${i}`)
    s.insert(ids.map(id => spec(id, { payload: { id, big } })))
    s.applyUpdates(ids.slice(0, 20).map(id => ({ id, status: 'succeeded' as const, attempts: 1, worker: 'w', progress: null, result: { big }, error: null, startedAt: 2, finishedAt: 3 })))
    // 40 MB of payloads and 20 MB of results: far fewer records than the count bound, but the byte bounds hold them to 16 + 4 MB.
    expect(s.cached.bytes).toBeLessThanOrEqual(20 * 2 ** 20)
    expect(s.cached.records).toBeLessThan(20)
    const answers = ids.map(id => s.get(id))
    expect(s.get('big0')).toMatchObject({ status: 'succeeded', result: { big }, payload: { id: 'big0', big } })
    expect(s.cached.bytes).toBeLessThanOrEqual(20 * 2 ** 20)
    // What is on disk, read once the store (which has its file to itself) is closed.
    s.close()
    const disk = new TaskStore(dir)
    expect(ids.map(id => disk.get(id))).toEqual(answers)
    disk.close()
  })
})
