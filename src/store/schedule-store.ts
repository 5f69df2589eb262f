/**
 * Recurring schedules, on disk in `<dataDir>/schedules.db` (node:sqlite,
 * fsynced): every member keeps every schedule's newest definition (a deleted
 * one as a tombstone, so it wins over older copies) and the leader's progress
 * (the latest tick it fired), so whichever node leads next fires the next
 * tick, and knows which ticks it must check before firing them again.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { newerDef, newerProgress } from '../core/schedules.ts'
import { MAX_SCHEDULES } from '../protocol/constants.ts'
import type { ScheduleDef, ScheduleProgress } from '../core/schedules.ts'
import { inTransaction } from './transaction.ts'

export class ScheduleStore {
  readonly #db: DatabaseSync
  /** Everything held, read once at open (a few rows per schedule): the leader reads it every tick. */
  readonly #defs = new Map<string, ScheduleDef>()
  readonly #progress = new Map<string, ScheduleProgress>()

  /** Opens (creating) `<dataDir>/schedules.db`; `null` keeps them in memory. */
  constructor (dataDir: string | null) {
    if (dataDir !== null) mkdirSync(dataDir, { recursive: true })
    this.#db = new DatabaseSync(dataDir === null ? ':memory:' : join(dataDir, 'schedules.db'))
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;')
    this.#db.exec('CREATE TABLE IF NOT EXISTS schedules (name TEXT PRIMARY KEY, def TEXT NOT NULL)')
    this.#db.exec('CREATE TABLE IF NOT EXISTS schedule_progress (name TEXT PRIMARY KEY, last_tick INTEGER NOT NULL, skipped INTEGER NOT NULL)')
    for (const r of this.#db.prepare('SELECT def FROM schedules').all() as Array<{ def: string }>) {
      const d = JSON.parse(r.def) as ScheduleDef
      this.#defs.set(d.name, d)
    }
    for (const r of this.#db.prepare('SELECT * FROM schedule_progress').all() as Array<{ name: string, last_tick: number, skipped: number }>) {
      this.#progress.set(r.name, { name: r.name, lastTick: r.last_tick, skipped: r.skipped })
    }
  }

  /** Every definition held, deleted ones included. */
  defs (): ReadonlyMap<string, ScheduleDef> { return this.#defs }
  def (name: string): ScheduleDef | undefined { return this.#defs.get(name) }
  progress (): ReadonlyMap<string, ScheduleProgress> { return this.#progress }

  /** Stores the definitions and progress newer than those held (on disk when it returns); returns the names that changed. */
  put (defs: readonly ScheduleDef[], progress: readonly ScheduleProgress[]): { defs: string[], progress: string[] } {
    const newDefs = defs.filter(d => { const h = this.#defs.get(d.name); return h === undefined || newerDef(d, h) })
    const newProgress = progress.filter(p => { const h = this.#progress.get(p.name); return h === undefined || newerProgress(p, h) })
    if (newDefs.length === 0 && newProgress.length === 0) return { defs: [], progress: [] }
    const upsertDef = this.#db.prepare('INSERT OR REPLACE INTO schedules (name, def) VALUES (?, ?)')
    const upsertProgress = this.#db.prepare('INSERT OR REPLACE INTO schedule_progress (name, last_tick, skipped) VALUES (?, ?, ?)')
    inTransaction(this.#db, () => {
      for (const d of newDefs) upsertDef.run(d.name, JSON.stringify(d))
      for (const p of newProgress) upsertProgress.run(p.name, p.lastTick, p.skipped)
    })
    for (const d of newDefs) this.#defs.set(d.name, d)
    for (const p of newProgress) this.#progress.set(p.name, p)
    this.#forgetOldDeleted()
    return { defs: newDefs.map(d => d.name), progress: newProgress.map(p => p.name) }
  }

  /**
   * Deleted schedules are kept (so that an older copy on a member that was
   * away does not bring one back), at most MAX_SCHEDULES of them: the oldest
   * deletions beyond are forgotten, with their progress.
   */
  #forgetOldDeleted (): void {
    const deleted = [...this.#defs.values()].filter(d => d.deleted === true)
    if (deleted.length <= MAX_SCHEDULES) return
    const gone = deleted.sort((a, b) => a.version - b.version).slice(0, deleted.length - MAX_SCHEDULES).map(d => d.name)
    const delDef = this.#db.prepare('DELETE FROM schedules WHERE name = ?')
    const delProgress = this.#db.prepare('DELETE FROM schedule_progress WHERE name = ?')
    for (const name of gone) {
      delDef.run(name)
      delProgress.run(name)
      this.#defs.delete(name)
      this.#progress.delete(name)
    }
  }

  close (): void { this.#db.close() }
}
