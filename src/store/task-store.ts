/**
 * Durable task records on node:sqlite in WAL mode. Accepting a task is
 * fsynced (`insert` commits with synchronous=FULL: the record is on disk when
 * it returns); state updates commit with synchronous=NORMAL (safe against a
 * process crash, and fsynced with the next insert or checkpoint), since they
 * can be re-derived by running the task again. Holds the tasks this node
 * holds: the ones it accepted, and the ones it keeps as a replica or leader.
 * The store's connection has the file to itself while it is open
 * (src/store/exclusive-db.ts).
 */
import { mkdirSync } from 'node:fs'
import type { DatabaseSync } from 'node:sqlite'
import type { StatementSync } from 'node:sqlite'
import { isTerminal, mergeUpdate, newRecord, terminalBeats } from '../core/tasks.ts'
import { RecordRetention, useIncrementalVacuum } from './record-retention.ts'
import { MIGRATIONS } from './task-schema.ts'
import type { TaskProgress, TaskRecord, TaskSpec, TaskStatus, TaskUpdate } from '../core/tasks.ts'
import type { PageKey } from '../core/listing.ts'
import type { TickStamp } from '../core/schedules.ts'
import { inTransaction } from './transaction.ts'
import { openExclusive } from './exclusive-db.ts'
import { SeqOrder, unfinishedOf } from './seq-order.ts'
import { CACHED_BYTES, CACHED_ENDED_BYTES, CACHED_ENDED_RECORDS, CACHED_RECORDS, RECORD_OVERHEAD_BYTES, RecordCache } from './record-cache.ts'

/** The spec fields kept in the `options` column. */
const OPTION_FIELDS = ['require', 'callback'] as const

interface Row {
  id: string
  type: string
  payload: string
  priority: number
  timeout_ms: number
  max_attempts: number
  idempotency_key: string | null
  created_at: number
  origin: string
  replicas: string
  status: string
  attempts: number
  worker: string | null
  progress: string | null
  result: string | null
  error: string | null
  started_at: number | null
  finished_at: number | null
  seq: number
  retain_ms: number | null
  copies: number | null
  run_at: number | null
  retries: number | null
  schedule: string | null
  options: string | null
  depends_on: string | null
  parents: string | null
}

function parse (text: string | null): unknown {
  return text === null ? null : JSON.parse(text) as unknown
}

function fromRow (r: Row): TaskRecord {
  return {
    id: r.id,
    type: r.type,
    payload: parse(r.payload),
    priority: r.priority,
    timeoutMs: r.timeout_ms,
    maxAttempts: r.max_attempts,
    idempotencyKey: r.idempotency_key,
    createdAt: r.created_at,
    origin: r.origin,
    replicas: JSON.parse(r.replicas) as string[],
    status: r.status as TaskStatus,
    attempts: r.attempts,
    worker: r.worker,
    progress: parse(r.progress),
    result: parse(r.result),
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    ...(r.retain_ms === null ? {} : { retainMs: r.retain_ms }),
    ...(r.copies === null ? {} : { copies: r.copies }),
    ...(r.run_at === null ? {} : { runAt: r.run_at }),
    ...(r.retries === null || r.retries === 0 ? {} : { retries: r.retries }),
    ...(r.schedule === null || r.schedule === undefined ? {} : { schedule: JSON.parse(r.schedule) as TickStamp }),
    ...(r.options === null ? {} : JSON.parse(r.options) as Pick<TaskSpec, typeof OPTION_FIELDS[number]>),
    ...(r.depends_on === null ? {} : { dependsOn: JSON.parse(r.depends_on) as string[] }),
    ...(r.parents === null ? {} : { parents: JSON.parse(r.parents) as Record<string, unknown> })
  }
}

/** A record's size estimate from its row: what updates leave alone, and its result and progress (see RecordCache). */
function rowBytes (r: Row): { base: number, extra: number } {
  return { base: RECORD_OVERHEAD_BYTES + r.payload.length + (r.parents?.length ?? 0), extra: (r.result?.length ?? 0) + (r.progress?.length ?? 0) }
}

function optionsOf (spec: TaskSpec): string | null {
  const o = Object.fromEntries(OPTION_FIELDS.filter(f => spec[f] !== undefined).map(f => [f, spec[f]]))
  return Object.keys(o).length === 0 ? null : JSON.stringify(o)
}

export class TaskStore {
  readonly #db: DatabaseSync
  /** Records kept in memory as well, unfinished and ended apart (src/store/record-cache.ts). */
  readonly #cache = new RecordCache(CACHED_RECORDS, CACHED_BYTES)
  readonly #endedCache = new RecordCache(CACHED_ENDED_RECORDS, CACHED_ENDED_BYTES)
  /**
   * Non-terminal changes not written yet (see applyUpdates), with the
   * sequence number each got (`resultJson`: its result as JSON, when it was
   * made already).
   */
  readonly #deferred = new Map<string, Change>()
  /** Expiry, purges and the forgotten ids (src/store/record-retention.ts). */
  readonly retention: RecordRetention
  readonly #get: StatementSync
  readonly #byKey: StatementSync
  readonly #insert: StatementSync
  readonly #update: StatementSync
  readonly #retried: StatementSync
  readonly #bySeq: SeqOrder<Row>
  #seq: number
  readonly #observers: Array<(changed: readonly TaskRecord[]) => void> = []

  /** Opens (creating) `<dataDir>/tasks.db`; `null` keeps the records in memory (the simulation's disk). */
  constructor (dataDir: string | null) {
    if (dataDir !== null) mkdirSync(dataDir, { recursive: true })
    this.#db = openExclusive(dataDir, 'tasks.db')
    this.#db.exec('PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA journal_size_limit = 67108864;')
    useIncrementalVacuum(this.#db)
    this.#migrate()
    this.#get = this.#db.prepare('SELECT * FROM tasks WHERE id = ?')
    this.#byKey = this.#db.prepare('SELECT * FROM tasks WHERE idempotency_key = ?')
    this.#insert = this.#db.prepare(`INSERT OR IGNORE INTO tasks
      (id, type, payload, priority, timeout_ms, max_attempts, idempotency_key, created_at, origin, replicas, status, attempts, worker, progress, result, error, started_at, finished_at, seq, retain_ms, copies, run_at, retries, schedule, options, depends_on, parents, unfinished)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
    this.#update = this.#db.prepare(`UPDATE tasks SET status = ?, unfinished = ?, attempts = ?, worker = ?, progress = ?, result = ?, error = ?,
      started_at = ?, finished_at = ?, seq = ?, parents = ? WHERE id = ?`)
    this.#retried = this.#db.prepare('UPDATE tasks SET retries = ?, max_attempts = ? WHERE id = ?')
    this.#bySeq = new SeqOrder(this.#db)
    this.#seq = this.#bySeq.last()
    this.retention = new RecordRetention(this.#db, ids => { this.#forget(ids) })
  }

  #migrate (): void {
    const version = (this.#db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
    // Each step and its version number in one transaction: a crash leaves the store before or after it.
    for (let v = version; v < MIGRATIONS.length; v++) inTransaction(this.#db, () => { this.#db.exec(`${MIGRATIONS[v]!}; PRAGMA user_version = ${v + 1}`) })
  }

  get (id: string): TaskRecord | undefined {
    const cached = this.#deferred.get(id)?.rec ?? this.#cache.get(id) ?? this.#endedCache.get(id)
    if (cached !== undefined) return cached
    const r = this.#get.get(id) as Row | undefined
    if (r === undefined) return undefined
    const rec = fromRow(r)
    const { base, extra } = rowBytes(r)
    this.#remember(rec, base, extra)
    return rec
  }

  /** Keeps `rec` in memory (see RecordCache); `base` defaults to the estimate it was kept with, or one made now. */
  #remember (rec: TaskRecord, base?: number, extra = 0): void {
    const b = base ?? this.#cache.baseOf(rec.id) ?? this.#endedCache.baseOf(rec.id) ??
      RECORD_OVERHEAD_BYTES + (json(rec.payload)?.length ?? 4) + (rec.parents === undefined ? 0 : JSON.stringify(rec.parents).length)
    this.#cache.delete(rec.id)
    this.#endedCache.delete(rec.id)
    ;(isTerminal(rec.status) ? this.#endedCache : this.#cache).set(rec, b, extra)
  }

  #forget (ids: readonly string[]): void {
    for (const id of ids) {
      this.#deferred.delete(id)
      this.#cache.delete(id)
      this.#endedCache.delete(id)
    }
  }

  byIdempotencyKey (key: string): TaskRecord | undefined {
    const r = this.#byKey.get(key) as Row | undefined
    return r === undefined ? undefined : this.#read(r)
  }

  /**
   * Stores new tasks in one transaction (on disk when it returns). A task
   * whose id is already stored is left as it is; a task whose idempotency key
   * is already taken by another id is not stored, and maps to that id.
   */
  insert (specs: readonly TaskSpec[]): Map<string, string> {
    const canonical = new Map<string, string>()
    const added: TaskRecord[] = []
    this.#transaction(true, () => {
      for (const spec of specs) {
        if (spec.idempotencyKey !== null) {
          const existing = this.byIdempotencyKey(spec.idempotencyKey)
          if (existing !== undefined && existing.id !== spec.id) { canonical.set(spec.id, existing.id); continue }
        }
        const r = newRecord(spec)
        const payload = JSON.stringify(r.payload ?? null)
        const parents = r.parents === undefined ? null : JSON.stringify(r.parents)
        const { changes } = this.#insert.run(r.id, r.type, payload, r.priority, r.timeoutMs, r.maxAttempts, r.idempotencyKey,
          r.createdAt, r.origin, JSON.stringify(r.replicas), r.status, 0, null, null, null, null, null, null, ++this.#seq, r.retainMs ?? null, r.copies ?? null, r.runAt ?? null, r.retries ?? null,
          r.schedule === undefined ? null : JSON.stringify(r.schedule), optionsOf(r),
          r.dependsOn === undefined || r.dependsOn.length === 0 ? null : JSON.stringify(r.dependsOn), parents, unfinishedOf(r.status))
        canonical.set(spec.id, spec.id)
        if (Number(changes) === 0) continue // already held: not new
        this.#remember(r, RECORD_OVERHEAD_BYTES + payload.length + (parents?.length ?? 0))
        if (this.#observers.length > 0) added.push(r)
      }
    })
    if (added.length > 0) for (const o of this.#observers) o(added)
    return canonical
  }

  /**
   * Applies updates that are newer than what is stored (see mergeUpdate).
   * Returns the records that changed, and the terminal records that refused
   * a different terminal update (it ranked after them).
   *
   * An ending (and a user's retry, which reopens an ended task) is written
   * at once. A change that is not an ending (assigned, running, progress,
   * a delayed task coming due) is held in memory, where every read here sees it,
   * and written by flushDeferred (the runtime's tick, every 100 ms, and
   * close): a short task's ending usually supersedes it before then, so it
   * is never written at all. A crash of this process loses at most those
   * last non-terminal changes (the copy then shows an earlier state of a
   * task that has not ended: the leader and the workers still know it).
   */
  applyUpdates (updates: readonly TaskUpdate[]): { changed: TaskRecord[], refused: TaskRecord[] } {
    const changed: TaskRecord[] = []
    const refused: TaskRecord[] = []
    const atOnce: Array<{ change: Change, retried: boolean }> = []
    let ended = 0
    for (const u of updates) {
      const rec = this.get(u.id)
      if (rec === undefined) continue
      const merged: TaskProgress | null = mergeUpdate(rec, u)
      if (merged === null) {
        if (isTerminal(rec.status) && isTerminal(u.status) && terminalBeats(rec, u)) refused.push(rec)
        continue
      }
      const next: TaskRecord = { ...rec, ...merged }
      // A newer generation (a user's retry) drops the parents' results of the older one.
      if (merged.parents === undefined) delete next.parents
      // Its result as JSON once (an ending's is written at once): its size counts in the cache's bound.
      const change: Change = { rec: next, seq: ++this.#seq, resultJson: json(next.result) }
      // A user's retry: a new generation, maybe with a new maxAttempts (kept with the spec, as hand-overs send it).
      const retried = (next.retries ?? 0) !== (rec.retries ?? 0) || next.maxAttempts !== rec.maxAttempts
      // Endings, and a retry that reopens an ended task, are written now; other changes wait for flushDeferred.
      if (isTerminal(next.status) || isTerminal(rec.status) || retried) {
        this.#deferred.delete(u.id)
        atOnce.push({ change, retried })
      } else this.#deferred.set(u.id, change)
      if (!isTerminal(rec.status) && isTerminal(next.status)) ended++
      if (isTerminal(rec.status) && !isTerminal(next.status)) ended--
      this.#remember(next, undefined, change.resultJson?.length ?? 0)
      changed.push(next)
    }
    if (atOnce.length > 0) {
      this.#transaction(false, () => {
        for (const { change, retried } of atOnce) {
          this.#write(change)
          if (retried) this.#retried.run(change.rec.retries ?? null, change.rec.maxAttempts, change.rec.id)
        }
      })
    }
    this.retention.noteEnded(ended)
    if (changed.length > 0) for (const o of this.#observers) o(changed)
    return { changed, refused }
  }

  /** Writes the non-terminal changes held in memory (see applyUpdates), in one transaction. */
  flushDeferred (): void {
    if (this.#deferred.size === 0) return
    const changes = [...this.#deferred.values()]
    this.#transaction(false, () => { for (const c of changes) this.#write(c) })
    for (const c of changes) if (this.#deferred.get(c.rec.id) === c) this.#deferred.delete(c.rec.id)
  }

  #write ({ rec, seq, resultJson }: Change): void {
    this.#update.run(rec.status, unfinishedOf(rec.status), rec.attempts, rec.worker, json(rec.progress), resultJson === undefined ? json(rec.result) : resultJson, rec.error, rec.startedAt, rec.finishedAt, seq, rec.parents === undefined ? null : JSON.stringify(rec.parents), rec.id)
  }

  /** A row as every read here sees it: with its newest change when that is still held in memory. */
  #read (r: Row): TaskRecord {
    return this.#deferred.get(r.id)?.rec ?? fromRow(r)
  }

  /** Tells `observer` (after commit) about every record inserted or changed: the events feed, the metrics, holder sync. */
  observe (observer: (changed: readonly TaskRecord[]) => void): void {
    this.#observers.push(observer)
  }

  /** Replaces the list of other holders of these tasks. */
  setReplicas (ids: readonly string[], replicas: readonly string[]): void {
    const set = this.#db.prepare('UPDATE tasks SET replicas = ? WHERE id = ?')
    this.#transaction(true, () => {
      for (const id of ids) {
        set.run(JSON.stringify(replicas), id)
        const held = this.#deferred.get(id)
        if (held !== undefined) held.rec = { ...held.rec, replicas: [...replicas] }
        const rec = held?.rec ?? this.#cache.get(id) ?? this.#endedCache.get(id)
        if (rec !== undefined) this.#remember({ ...rec, replicas: [...replicas] }, undefined, json(rec.result)?.length ?? 0)
      }
    })
  }

  /** Records kept in memory now, and their estimated bytes (unfinished and ended together). */
  get cached (): { records: number, bytes: number } {
    return { records: this.#cache.size + this.#endedCache.size, bytes: this.#cache.bytes + this.#endedCache.bytes }
  }

  /** The sequence number of the last change (grows with every insert and update). */
  get seq (): number { return this.#seq }

  /** Terminal records changed after sequence number `seq`, oldest change first (at most `limit`), and the last one's number. */
  endedSince (seq: number, limit: number): { records: TaskRecord[], lastSeq: number } {
    const rows = this.#bySeq.endedAfter(seq, limit)
    return { records: rows.map(fromRow), lastSeq: rows.at(-1)?.seq ?? seq }
  }

  /** Most recently changed first. */
  list (filter: { status?: TaskStatus, limit: number }): TaskRecord[] {
    return this.#bySeq.newest(filter.limit, filter.status).map(r => this.#read(r))
  }

  /**
   * One page of the records held here in a stable order, newest submit
   * first (created_at, then id, both descending): the ones after `before`
   * (a previous page's last key), of `status` and `type` when given.
   */
  page (filter: { status?: TaskStatus, type?: string, before?: PageKey, limit: number }): TaskRecord[] {
    const b = filter.before ?? { createdAt: Number.MAX_SAFE_INTEGER, id: '' }
    const rows = this.#db.prepare(`SELECT * FROM tasks WHERE (created_at < ? OR (created_at = ? AND id < ?))
      AND (? IS NULL OR status = ?) AND (? IS NULL OR type = ?) ORDER BY created_at DESC, id DESC LIMIT ?`)
      .all(b.createdAt, b.createdAt, b.id, filter.status ?? null, filter.status ?? null, filter.type ?? null, filter.type ?? null, filter.limit)
    return (rows as unknown as Row[]).map(r => this.#read(r))
  }

  /** Forgets tasks (only ones that were never acknowledged to a submitter). */
  delete (ids: readonly string[]): void {
    const del = this.#db.prepare('DELETE FROM tasks WHERE id = ? RETURNING status')
    let ended = 0
    this.#transaction(true, () => {
      for (const id of ids) {
        const gone = del.get(id) as { status: TaskStatus } | undefined
        // Rarely a finished one (a task that ran although its submit failed).
        if (gone !== undefined && isTerminal(gone.status)) ended++
        this.#forget([id])
      }
    })
    this.retention.noteEnded(-ended)
  }

  /** Tasks not yet terminal (for recovery and handover). */
  unfinished (): TaskRecord[] {
    return this.#bySeq.unfinished().map(r => this.#read(r))
  }

  counts (): Record<TaskStatus, number> {
    const out = { waiting: 0, scheduled: 0, queued: 0, assigned: 0, running: 0, retrying: 0, succeeded: 0, failed: 0, cancelled: 0 }
    for (const r of this.#db.prepare('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status').all() as Array<{ status: TaskStatus, n: number }>) {
      out[r.status] = r.n
    }
    return out
  }

  /** Records held here by status and type (for the metrics). */
  countsByType (): Array<{ status: TaskStatus, type: string, n: number }> {
    return this.#db.prepare('SELECT status, type, COUNT(*) AS n FROM tasks GROUP BY status, type').all() as Array<{ status: TaskStatus, type: string, n: number }>
  }

  close (): void {
    this.flushDeferred()
    this.#db.close()
  }

  #transaction (fsync: boolean, fn: () => void): void {
    if (fsync) this.#db.exec('PRAGMA synchronous = FULL')
    try {
      inTransaction(this.#db, fn, () => {
        this.#cache.clear() // it may hold writes that were rolled back
        this.#endedCache.clear()
        this.retention.recount()
      })
    } finally {
      if (fsync) this.#db.exec('PRAGMA synchronous = NORMAL')
    }
  }
}

/** A change of a record with its sequence number (and its result as JSON, when made already). */
interface Change { rec: TaskRecord, seq: number, resultJson?: string | null }

function json (v: unknown): string | null {
  return v === null || v === undefined ? null : JSON.stringify(v)
}

