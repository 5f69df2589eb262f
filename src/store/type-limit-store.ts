/**
 * The per-type limits set at runtime (`PUT /v1/types/:type`), on disk in
 * `<dataDir>/limits.db` (node:sqlite, fsynced): every node keeps every
 * setting with its version, so whichever node leads next enforces the
 * newest. A removed limit is kept too (with no fields), so that it still
 * wins over the config file's.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { newerLimit } from '../core/type-limits.ts'
import type { VersionedLimit } from '../core/type-limits.ts'
import { inTransaction } from './transaction.ts'

export class TypeLimitStore {
  readonly #db: DatabaseSync

  /** Opens (creating) `<dataDir>/limits.db`; `null` keeps the settings in memory. */
  constructor (dataDir: string | null) {
    if (dataDir !== null) mkdirSync(dataDir, { recursive: true })
    this.#db = new DatabaseSync(dataDir === null ? ':memory:' : join(dataDir, 'limits.db'))
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;')
    this.#db.exec('CREATE TABLE IF NOT EXISTS type_limits (type TEXT PRIMARY KEY, max_concurrent INTEGER, per_second REAL, version INTEGER NOT NULL, by TEXT NOT NULL)')
  }

  all (): Map<string, VersionedLimit> {
    const rows = this.#db.prepare('SELECT * FROM type_limits').all() as Array<{ type: string, max_concurrent: number | null, per_second: number | null, version: number, by: string }>
    return new Map(rows.map(r => [r.type, {
      version: r.version,
      by: r.by,
      ...(r.max_concurrent === null ? {} : { maxConcurrent: r.max_concurrent }),
      ...(r.per_second === null ? {} : { perSecond: r.per_second })
    }]))
  }

  /** Stores the settings newer than the ones held (on disk when it returns); returns the types that changed. */
  put (settings: ReadonlyArray<{ type: string } & VersionedLimit>): string[] {
    const held = this.all()
    const changed = settings.filter(s => { const h = held.get(s.type); return h === undefined || newerLimit(s, h) })
    if (changed.length === 0) return []
    const upsert = this.#db.prepare('INSERT OR REPLACE INTO type_limits (type, max_concurrent, per_second, version, by) VALUES (?, ?, ?, ?, ?)')
    inTransaction(this.#db, () => {
      for (const s of changed) upsert.run(s.type, s.maxConcurrent ?? null, s.perSecond ?? null, s.version, s.by)
    })
    return changed.map(s => s.type)
  }

  close (): void { this.#db.close() }
}
