/**
 * Completion-callback deliveries on disk, in `<dataDir>/deliveries.db`
 * (node:sqlite, WAL): each holder of a task keeps the state of every
 * delivery of its endings (see src/core/callbacks.ts), with the headers to
 * send, so a restart or the second copy taking over resumes them. A state
 * heard from another holder is merged (mergeDelivery), never simply written.
 *
 * `due` is asked on every runtime tick: it answers from memory while no
 * pending delivery can be due (`#dueFrom`, a lower bound of the earliest
 * pending next_at, lowered by every write), so an idle node reads no sqlite
 * on its ticks. Only this process writes the file, so the bound holds.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { StatementSync } from 'node:sqlite'
import { mergeDelivery } from '../core/callbacks.ts'
import type { DeliveryPhase, DeliveryState } from '../core/callbacks.ts'
import { inTransaction } from './transaction.ts'

interface Row {
  id: string
  task: string
  url: string
  source: string
  event: string
  state: string
  attempts: number
  next_at: number
  last_status: number | null
  last_error: string | null
  delivered_at: number | null
  headers: string
}

function fromRow (r: Row): DeliveryState {
  return { id: r.id, task: r.task, url: r.url, source: r.source as DeliveryState['source'], event: r.event, state: r.state as DeliveryPhase, attempts: r.attempts, nextAtMs: r.next_at, lastStatus: r.last_status, lastError: r.last_error, deliveredAt: r.delivered_at }
}

export class DeliveryStore {
  readonly #db: DatabaseSync
  readonly #get: StatementSync
  readonly #upsert: StatementSync
  readonly #due: StatementSync
  readonly #earliest: StatementSync
  /** No pending delivery is due before this (a lower bound: -Infinity until the first look). */
  #dueFrom = -Infinity

  /** Opens (creating) `<dataDir>/deliveries.db`; `null` keeps them in memory. */
  constructor (dataDir: string | null) {
    if (dataDir !== null) mkdirSync(dataDir, { recursive: true })
    this.#db = new DatabaseSync(dataDir === null ? ':memory:' : join(dataDir, 'deliveries.db'))
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;')
    this.#db.exec(`CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, task TEXT NOT NULL, url TEXT NOT NULL, source TEXT NOT NULL, event TEXT NOT NULL,
      state TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, last_status INTEGER, last_error TEXT, delivered_at INTEGER,
      headers TEXT NOT NULL, updated_at INTEGER NOT NULL)`)
    this.#db.exec('CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at)')
    this.#db.exec('CREATE INDEX IF NOT EXISTS deliveries_task ON deliveries (task)')
    this.#get = this.#db.prepare('SELECT * FROM deliveries WHERE id = ?')
    this.#due = this.#db.prepare("SELECT * FROM deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?")
    this.#earliest = this.#db.prepare("SELECT MIN(next_at) AS at FROM deliveries WHERE state = 'pending'")
    this.#upsert = this.#db.prepare(`INSERT OR REPLACE INTO deliveries (id, task, url, source, event, state, attempts, next_at, last_status, last_error, delivered_at, headers, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  }

  get (id: string): DeliveryState | undefined {
    const r = this.#get.get(id) as Row | undefined
    return r === undefined ? undefined : fromRow(r)
  }

  /** The headers recorded with a delivery (the submit's callback headers, or the webhook's). */
  headers (id: string): Record<string, string> {
    const r = this.#get.get(id) as Row | undefined
    return r === undefined ? {} : JSON.parse(r.headers) as Record<string, string>
  }

  /** Records new deliveries (one already held, e.g. heard from another holder first, is kept as it is). Returns the ones added. */
  add (states: ReadonlyArray<{ state: DeliveryState, headers: Record<string, string> }>, nowMs: number): DeliveryState[] {
    const added: DeliveryState[] = []
    this.#transaction(() => {
      for (const { state, headers } of states) {
        if (this.get(state.id) !== undefined) {
          // Heard from another holder before this node recorded the ending itself: only the headers were missing.
          this.#db.prepare("UPDATE deliveries SET headers = ? WHERE id = ? AND headers = '{}'").run(JSON.stringify(headers), state.id)
          continue
        }
        this.#write(state, headers, nowMs)
        added.push(state)
      }
    })
    return added
  }

  /** Merges states (this node's own tries, or another holder's); returns the ones that changed here. */
  merge (states: readonly DeliveryState[], nowMs: number): DeliveryState[] {
    const changed: DeliveryState[] = []
    this.#transaction(() => {
      for (const s of states) {
        const r = this.#get.get(s.id) as Row | undefined
        const mine = r === undefined ? undefined : fromRow(r)
        const next = mergeDelivery(mine, s)
        if (mine !== undefined && next === mine) continue
        this.#write(next, r === undefined ? {} : JSON.parse(r.headers) as Record<string, string>, nowMs)
        changed.push(next)
      }
    })
    return changed
  }

  /** Looks at these pending deliveries again at `atMs` (their state is unchanged: another holder makes them). */
  postpone (ids: readonly string[], atMs: number): void {
    const set = this.#db.prepare("UPDATE deliveries SET next_at = ? WHERE id = ? AND state = 'pending'")
    if (ids.length > 0) this.#dueFrom = Math.min(this.#dueFrom, atMs)
    this.#transaction(() => { for (const id of ids) set.run(atMs, id) })
  }

  /** Pending deliveries due by `nowMs`, earliest first (none, without a read, before the earliest pending one is due). */
  due (nowMs: number, limit: number): DeliveryState[] {
    if (nowMs < this.#dueFrom) return []
    const rows = this.#due.all(nowMs, limit) as unknown as Row[]
    if (rows.length === 0) {
      const at = (this.#earliest.get() as { at: number | null } | undefined)?.at ?? null
      this.#dueFrom = at ?? Infinity
    }
    return rows.map(fromRow)
  }

  /** Every delivery of a task's endings, oldest first. */
  ofTask (task: string): DeliveryState[] {
    return (this.#db.prepare('SELECT * FROM deliveries WHERE task = ? ORDER BY rowid').all(task) as unknown as Row[]).map(fromRow)
  }

  /** Forgets deliveries that ended (delivered or failed) before `beforeMs`; returns how many. */
  prune (beforeMs: number): number {
    return Number(this.#db.prepare("DELETE FROM deliveries WHERE state != 'pending' AND updated_at < ?").run(beforeMs).changes)
  }

  close (): void { this.#db.close() }

  #write (s: DeliveryState, headers: Record<string, string>, nowMs: number): void {
    if (s.state === 'pending') this.#dueFrom = Math.min(this.#dueFrom, s.nextAtMs)
    this.#upsert.run(s.id, s.task, s.url, s.source, s.event, s.state, s.attempts, s.nextAtMs, s.lastStatus, s.lastError, s.deliveredAt, JSON.stringify(headers), nowMs)
  }

  #transaction (fn: () => void): void {
    inTransaction(this.#db, fn)
  }
}
