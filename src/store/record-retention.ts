/**
 * Forgetting finished task records (the store's half of retention; what to
 * forget is decided by src/core/retention.ts): expiry and count sweeps in
 * small steps, purges on demand, the ids forgotten (so a read can say a
 * record expired rather than never existed), and giving freed pages back to
 * the file system (incremental vacuum) so the file does not keep its
 * high-water size.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { EXPIRED_IDS_KEPT } from '../core/retention.ts'
import type { SweepPlan } from '../core/retention.ts'
import { inTransaction } from './transaction.ts'

const ENDED = "status IN ('succeeded', 'failed', 'cancelled')"

/** Oldest endings first (the count sweep and purges), those on the node's retention, those with their own. */
export const RETENTION_INDEXES = [
  `CREATE INDEX tasks_ended ON tasks (finished_at) WHERE ${ENDED}`,
  `CREATE INDEX tasks_ended_default ON tasks (finished_at) WHERE ${ENDED} AND retain_ms IS NULL`,
  `CREATE INDEX tasks_ended_own ON tasks (finished_at + retain_ms) WHERE ${ENDED} AND retain_ms IS NOT NULL`
]

/**
 * A later step (see task-schema.ts): oldest endings first as two indexes
 * that split the ended records as the expiry indexes do, instead of one over
 * all of them beside tasks_ended_default (a task on the node's retention, the
 * common case, wrote both: one b-tree page more per ending).
 */
export const ENDED_INDEX_SPLIT = `CREATE INDEX tasks_ended_kept ON tasks (finished_at) WHERE ${ENDED} AND retain_ms IS NOT NULL;
   DROP INDEX tasks_ended`

/** Appended to the store's migrations. */
export const RETENTION_MIGRATIONS = [
  'ALTER TABLE tasks ADD COLUMN retain_ms INTEGER',
  'ALTER TABLE tasks ADD COLUMN copies INTEGER',
  ...RETENTION_INDEXES,
  // Ids forgotten, the newest of them (n grows with each; see keepForgotten).
  'CREATE TABLE expired (n INTEGER PRIMARY KEY, id TEXT NOT NULL)',
  'CREATE INDEX expired_id ON expired (id)'
]

/** Free pages left in the file for new records to reuse before the rest go back to the file system. */
const FREE_PAGES_KEPT = 1_024
/** Pages given back in one step at most. */
const VACUUM_PAGES_PER_STEP = 2_048

/**
 * Turns on incremental vacuum (it must be chosen before the first table
 * exists, or take a full VACUUM once: for a store made before retention
 * existed, that one VACUUM runs at the start after the upgrade).
 */
export function useIncrementalVacuum (db: DatabaseSync): void {
  const mode = (db.prepare('PRAGMA auto_vacuum').get() as { auto_vacuum: number }).auto_vacuum
  if (mode === 2) return
  db.exec('PRAGMA auto_vacuum = INCREMENTAL')
  db.exec('VACUUM')
}

export type EndedStatus = 'succeeded' | 'failed' | 'cancelled'

export class RecordRetention {
  readonly #db: DatabaseSync
  readonly #forget: (ids: readonly string[]) => void
  /** The oldest endings on the node's retention and on their own, any time and before a time (see #oldest). */
  readonly #oldestQueries: ReadonlyArray<{ any: StatementSync, before: StatementSync }>
  readonly #expiredDefault: StatementSync
  readonly #expiredOwn: StatementSync
  readonly #delete: StatementSync
  readonly #remember: StatementSync
  readonly #wasForgotten: StatementSync
  readonly #firstExpiry: readonly StatementSync[]
  #finished = 0
  /** Lower bounds (-Infinity: look) of the earliest finished_at on the node's retention, and of the earliest own expiry (finished_at + retain_ms). See sweep. */
  #first = { endedAt: -Infinity, expiresAt: -Infinity }
  /** False once a look found no free pages to give back; set again by every deletion here. */
  #mayVacuum = true
  #lastForgotten: number
  #forgottenKept = EXPIRED_IDS_KEPT

  /** `forget` drops the ids from the store's memory. */
  constructor (db: DatabaseSync, forget: (ids: readonly string[]) => void) {
    this.#db = db
    this.#forget = forget
    // INDEXED BY: without statistics the planner would take tasks_order and sort every finished record.
    // The oldest endings are those of tasks_ended_default and tasks_ended_kept, merged (see #oldest).
    this.#oldestQueries = [['tasks_ended_default', 'retain_ms IS NULL'], ['tasks_ended_kept', 'retain_ms IS NOT NULL']].map(([index, retain]) => ({
      any: db.prepare(`SELECT id, finished_at FROM tasks INDEXED BY ${index} WHERE ${ENDED} AND ${retain} AND (? IS NULL OR status = ?) ORDER BY finished_at LIMIT ?`),
      before: db.prepare(`SELECT id, finished_at FROM tasks INDEXED BY ${index} WHERE ${ENDED} AND ${retain} AND finished_at < ? AND (? IS NULL OR status = ?) ORDER BY finished_at LIMIT ?`)
    }))
    this.#expiredDefault = db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended_default WHERE ${ENDED} AND retain_ms IS NULL AND finished_at <= ? ORDER BY finished_at LIMIT ?`)
    this.#expiredOwn = db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended_own WHERE ${ENDED} AND retain_ms IS NOT NULL AND finished_at + retain_ms <= ? ORDER BY finished_at + retain_ms LIMIT ?`)
    // The earliest expiry by age of each kind, as the expiry indexes order them.
    this.#firstExpiry = [
      db.prepare(`SELECT finished_at AS at FROM tasks INDEXED BY tasks_ended_default WHERE ${ENDED} AND retain_ms IS NULL AND finished_at IS NOT NULL ORDER BY finished_at LIMIT 1`),
      db.prepare(`SELECT finished_at + retain_ms AS at FROM tasks INDEXED BY tasks_ended_own WHERE ${ENDED} AND retain_ms IS NOT NULL AND finished_at IS NOT NULL ORDER BY finished_at + retain_ms LIMIT 1`)
    ]
    this.#delete = db.prepare(`DELETE FROM tasks WHERE id = ? AND ${ENDED}`)
    this.#remember = db.prepare('INSERT INTO expired (id) VALUES (?)')
    this.#wasForgotten = db.prepare('SELECT 1 AS x FROM expired WHERE id = ? LIMIT 1')
    this.#lastForgotten = (db.prepare('SELECT COALESCE(MAX(n), 0) AS n FROM expired').get() as { n: number }).n
    this.recount()
  }

  /** How many forgotten ids to remember (the newest): as many as finished records are kept (at least 10,000, at most EXPIRED_IDS_KEPT), so they take less room than the records. */
  keepForgotten (retainFinishedCount: number): void { this.#forgottenKept = Math.min(EXPIRED_IDS_KEPT, Math.max(10_000, retainFinishedCount)) }

  /** Finished records held. */
  get finishedHeld (): number { return this.#finished }

  /** `n` records ended (negative: finished ones were deleted otherwise). */
  noteEnded (n: number): void {
    this.#finished += n
    // A new ending may expire sooner than any held before (its own retainMs): the next sweep looks.
    if (n > 0) this.#first = { endedAt: -Infinity, expiresAt: -Infinity }
  }

  /** Counts the finished records again (after a rollback). */
  recount (): void {
    this.#first = { endedAt: -Infinity, expiresAt: -Infinity }
    this.#finished = (this.#db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE ${ENDED}`).get() as { n: number }).n
  }

  /** True when this node held the task once and forgot its record (and still remembers the id). */
  wasForgotten (id: string): boolean {
    return this.#wasForgotten.get(id) !== undefined
  }

  /** One sweep step (one transaction): forgets what the plan says; returns how many records. */
  sweep (plan: SweepPlan): number {
    // Idle: nothing over the count, and no held record expires yet (no read).
    if (plan.overCount <= 0 && plan.endedBefore < this.#first.endedAt && plan.expiresBy < this.#first.expiresAt) return 0
    const ids = new Set<string>()
    /** Adds up to `max` more ids the statement lists (and never more than the step's limit in all). */
    const take = (stmt: StatementSync, max: number, ...args: number[]): void => {
      const room = Math.min(max, plan.limit - ids.size)
      if (room <= 0) return
      for (const r of stmt.all(...args, room) as Array<{ id: string }>) ids.add(r.id)
    }
    // Records beyond the count are the oldest endings; expired ones may go in the same step.
    for (const id of this.#oldest(null, undefined, Math.min(plan.overCount, plan.limit))) ids.add(id)
    take(this.#expiredDefault, plan.limit, plan.endedBefore)
    take(this.#expiredOwn, plan.limit, plan.expiresBy)
    // Everything expired fits in this step: until the earliest record left expires, a step reads nothing (an ending looks again).
    if (ids.size < plan.limit) {
      const [endedAt, expiresAt] = this.#firstExpiry.map(q => (q.get() as { at: number | null } | undefined)?.at ?? Infinity)
      this.#first = { endedAt: endedAt ?? Infinity, expiresAt: expiresAt ?? Infinity }
    }
    return this.#forgetRecords([...ids])
  }

  /** One step of a purge: forgets up to `limit` finished records (of `status`, when given) that ended before `before`. */
  purgeStep (filter: { status?: EndedStatus, before: number }, limit: number): number {
    return this.#forgetRecords(this.#oldest(filter.before, filter.status, limit))
  }

  /** The ids of up to `limit` finished records (of `status`, when given) that ended before `before` (null: any), oldest ending first. */
  #oldest (before: number | null, status: EndedStatus | undefined, limit: number): string[] {
    if (limit <= 0) return []
    const s = status ?? null
    const rows = this.#oldestQueries.flatMap(q => (before === null ? q.any.all(s, s, limit) : q.before.all(before, s, s, limit)) as Array<{ id: string, finished_at: number | null }>)
    // As the indexes order them (an ending without a time, which none is written with, first).
    return rows.sort((a, b) => (a.finished_at ?? 0) - (b.finished_at ?? 0)).slice(0, limit).map(r => r.id)
  }

  /**
   * Gives free pages back to the file system beyond a slack that new
   * records reuse, a bounded number per call (a long purge frees many).
   */
  vacuumStep (): void {
    if (!this.#mayVacuum) return
    const free = (this.#db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count
    if (free <= FREE_PAGES_KEPT) { this.#mayVacuum = false; return }
    this.#db.exec(`PRAGMA incremental_vacuum(${Math.min(VACUUM_PAGES_PER_STEP, free - FREE_PAGES_KEPT)})`)
  }

  /** Bytes of the database's pages in use and free (for the metrics and the benchmark). */
  pages (): { usedBytes: number, freeBytes: number } {
    const size = (this.#db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size
    const count = (this.#db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count
    const free = (this.#db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count
    return { usedBytes: (count - free) * size, freeBytes: free * size }
  }

  #forgetRecords (ids: readonly string[]): number {
    if (ids.length === 0) return 0
    let removed = 0
    inTransaction(this.#db, () => {
      for (const id of ids) {
        if (Number(this.#delete.run(id).changes) === 0) continue
        this.#remember.run(id)
        removed++
      }
      this.#lastForgotten += removed
      this.#db.prepare('DELETE FROM expired WHERE n <= ?').run(this.#lastForgotten - this.#forgottenKept)
    }, () => {
      this.recount()
      this.#lastForgotten = (this.#db.prepare('SELECT COALESCE(MAX(n), 0) AS n FROM expired').get() as { n: number }).n
    })
    this.#forget(ids)
    this.#finished -= removed
    if (removed > 0) this.#mayVacuum = true
    return removed
  }
}
