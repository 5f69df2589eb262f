/**
 * Reads of the tasks table in the order of their last change (the `seq`
 * column) without an index on `seq` alone: each status's share comes from
 * `tasks_order` (see ORDER_INDEX), and the lists are merged here. An index
 * on `seq` alone cost every insert and every ending one more b-tree page to
 * write (two write calls per commit, on every holder); these reads (the
 * node's listing, the ended-since feed, the unfinished at start, the last
 * sequence number at start) are rare beside them. A bounded read first
 * merges the statuses' sequence numbers alone (read from the index, no row),
 * then reads the rows up to the last one it keeps: no more rows than it returns.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { isTerminal, TASK_STATUSES } from '../core/tasks.ts'
import type { TaskStatus } from '../core/tasks.ts'

const ENDED_STATUSES = TASK_STATUSES.filter(isTerminal)
const UNFINISHED_STATUSES = TASK_STATUSES.filter(s => !isTerminal(s))

/**
 * Records by (unfinished, status, seq): the ended ones first (unfinished 0),
 * then the others (1). So the newest endings (the end of the ended part)
 * and the unfinished records (the start of the rest) share the index's last
 * leaf while few tasks wait: an ending moves its entry within that one
 * page. With (status, seq), a task's 'queued' entry and its 'succeeded' one
 * sat in two different leaves (the unfinished statuses sort between the
 * ended ones), so each ending wrote two pages of this index. `unfinished`
 * is a column the store writes with the status (unfinishedOf), not an
 * expression of it: an index on the expression made sqlite evaluate it on
 * every insert and update (about 3 µs per task in batches of 100).
 */
export const ORDER_INDEX = 'CREATE INDEX tasks_order ON tasks (unfinished, status, seq)'

/** The value of the `unfinished` column for a status. */
export function unfinishedOf (status: TaskStatus): 0 | 1 {
  return isTerminal(status) ? 0 : 1
}

/** `unfinished` from `status`, in SQL: fills the column once when it is added. */
export const UNFINISHED_OF_STATUS = `(status NOT IN (${ENDED_STATUSES.map(s => `'${s}'`).join(', ')}))`

/** `[unfinished, status]`: the first two keys of tasks_order for a status. */
function key (status: TaskStatus): [number, TaskStatus] {
  return [unfinishedOf(status), status]
}

export class SeqOrder<Row extends { seq: number }> {
  readonly #newestSeqs: StatementSync
  readonly #newest: StatementSync
  readonly #newestFrom: StatementSync
  readonly #afterSeqs: StatementSync
  readonly #between: StatementSync
  readonly #all: StatementSync

  constructor (db: DatabaseSync) {
    const where = 'unfinished = ? AND status = ?'
    this.#newestSeqs = db.prepare(`SELECT seq FROM tasks WHERE ${where} ORDER BY seq DESC LIMIT ?`)
    this.#newest = db.prepare(`SELECT * FROM tasks WHERE ${where} ORDER BY seq DESC LIMIT ?`)
    this.#newestFrom = db.prepare(`SELECT * FROM tasks WHERE ${where} AND seq >= ? ORDER BY seq DESC`)
    this.#afterSeqs = db.prepare(`SELECT seq FROM tasks WHERE ${where} AND seq > ? ORDER BY seq LIMIT ?`)
    this.#between = db.prepare(`SELECT * FROM tasks WHERE ${where} AND seq > ? AND seq <= ? ORDER BY seq`)
    this.#all = db.prepare(`SELECT * FROM tasks WHERE ${where} ORDER BY seq`)
  }

  /** The highest sequence number stored (0: none). */
  last (): number {
    let max = 0
    for (const s of TASK_STATUSES) max = Math.max(max, (this.#newestSeqs.get(...key(s), 1) as { seq: number } | undefined)?.seq ?? 0)
    return max
  }

  /** The `limit` most recently changed records (of `status`, when given), newest first. */
  newest (limit: number, status?: TaskStatus): Row[] {
    if (status !== undefined) return this.#newest.all(...key(status), limit) as unknown as Row[]
    const seqs = TASK_STATUSES.map(s => (this.#newestSeqs.all(...key(s), limit) as Array<{ seq: number }>).map(r => r.seq))
    const kept = seqs.flat().sort((a, b) => b - a).slice(0, limit)
    if (kept.length === 0) return []
    const oldest = kept.at(-1)!
    const rows = TASK_STATUSES.flatMap((s, i) => seqs[i]!.length > 0 && seqs[i]![0]! >= oldest ? this.#newestFrom.all(...key(s), oldest) as unknown as Row[] : [])
    return rows.sort((a, b) => b.seq - a.seq)
  }

  /** Terminal records changed after `seq`, oldest change first, at most `limit`. */
  endedAfter (seq: number, limit: number): Row[] {
    const seqs = ENDED_STATUSES.map(s => (this.#afterSeqs.all(...key(s), seq, limit) as Array<{ seq: number }>).map(r => r.seq))
    const kept = seqs.flat().sort((a, b) => a - b).slice(0, limit)
    if (kept.length === 0) return []
    const newest = kept.at(-1)!
    const rows = ENDED_STATUSES.flatMap((s, i) => seqs[i]!.length > 0 && seqs[i]![0]! <= newest ? this.#between.all(...key(s), seq, newest) as unknown as Row[] : [])
    return rows.sort((a, b) => a.seq - b.seq)
  }

  /** Every record not terminal, oldest change first. */
  unfinished (): Row[] {
    return UNFINISHED_STATUSES.flatMap(s => this.#all.all(...key(s)) as unknown as Row[]).sort((a, b) => a.seq - b.seq)
  }
}
