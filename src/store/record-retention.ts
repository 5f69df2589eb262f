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
  readonly #oldest: StatementSync
  readonly #expiredDefault: StatementSync
  readonly #expiredOwn: StatementSync
  readonly #delete: StatementSync
  readonly #remember: StatementSync
  readonly #wasForgotten: StatementSync
  #finished = 0
  #lastForgotten: number
  #forgottenKept = EXPIRED_IDS_KEPT

  /** `forget` drops the ids from the store's memory. */
  constructor (db: DatabaseSync, forget: (ids: readonly string[]) => void) {
    this.#db = db
    this.#forget = forget
    // INDEXED BY: without statistics the planner would take tasks_status_seq and sort every finished record.
    this.#oldest = db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended WHERE ${ENDED} ORDER BY finished_at LIMIT ?`)
    this.#expiredDefault = db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended_default WHERE ${ENDED} AND retain_ms IS NULL AND finished_at <= ? ORDER BY finished_at LIMIT ?`)
    this.#expiredOwn = db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended_own WHERE ${ENDED} AND retain_ms IS NOT NULL AND finished_at + retain_ms <= ? ORDER BY finished_at + retain_ms LIMIT ?`)
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
  noteEnded (n: number): void { this.#finished += n }

  /** Counts the finished records again (after a rollback). */
  recount (): void {
    this.#finished = (this.#db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE ${ENDED}`).get() as { n: number }).n
  }

  /** True when this node held the task once and forgot its record (and still remembers the id). */
  wasForgotten (id: string): boolean {
    return this.#wasForgotten.get(id) !== undefined
  }

  /** One sweep step (one transaction): forgets what the plan says; returns how many records. */
  sweep (plan: SweepPlan): number {
    const ids = new Set<string>()
    /** Adds up to `max` more ids the statement lists (and never more than the step's limit in all). */
    const take = (stmt: StatementSync, max: number, ...args: number[]): void => {
      const room = Math.min(max, plan.limit - ids.size)
      if (room <= 0) return
      for (const r of stmt.all(...args, room) as Array<{ id: string }>) ids.add(r.id)
    }
    // Records beyond the count are the oldest endings; expired ones may go in the same step.
    take(this.#oldest, plan.overCount)
    take(this.#expiredDefault, plan.limit, plan.endedBefore)
    take(this.#expiredOwn, plan.limit, plan.expiresBy)
    return this.#forgetRecords([...ids])
  }

  /** One step of a purge: forgets up to `limit` finished records (of `status`, when given) that ended before `before`. */
  purgeStep (filter: { status?: EndedStatus, before: number }, limit: number): number {
    const rows = filter.status === undefined
      ? this.#db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended WHERE ${ENDED} AND finished_at < ? ORDER BY finished_at LIMIT ?`).all(filter.before, limit)
      : this.#db.prepare(`SELECT id FROM tasks INDEXED BY tasks_ended WHERE ${ENDED} AND status = ? AND finished_at < ? ORDER BY finished_at LIMIT ?`).all(filter.status, filter.before, limit)
    return this.#forgetRecords((rows as Array<{ id: string }>).map(r => r.id))
  }

  /**
   * Gives free pages back to the file system beyond a slack that new
   * records reuse, a bounded number per call (a long purge frees many).
   */
  vacuumStep (): void {
    const free = (this.#db.prepare('PRAGMA freelist_count').get() as { freelist_count: number }).freelist_count
    if (free <= FREE_PAGES_KEPT) return
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
    return removed
  }
}
