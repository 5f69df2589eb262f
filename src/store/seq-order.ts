/**
 * Reads of the tasks table in the order of their last change (the `seq`
 * column) without an index on `seq` alone: each status's share comes from
 * `tasks_status_seq` (status, seq), a few rows per status, and the lists are
 * merged here. An index on `seq` alone cost every insert and every ending one
 * more b-tree page to write (two write calls per commit, on every holder);
 * these reads (the node's listing, the ended-since feed, the unfinished at
 * start, the last sequence number at start) are rare beside them.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { isTerminal, TASK_STATUSES } from '../core/tasks.ts'
import type { TaskStatus } from '../core/tasks.ts'

const ENDED_STATUSES = TASK_STATUSES.filter(isTerminal)
const UNFINISHED_STATUSES = TASK_STATUSES.filter(s => !isTerminal(s))

export class SeqOrder<Row extends { seq: number }> {
  readonly #last: StatementSync
  readonly #newest: StatementSync
  readonly #after: StatementSync
  readonly #all: StatementSync

  constructor (db: DatabaseSync) {
    this.#last = db.prepare('SELECT seq FROM tasks WHERE status = ? ORDER BY seq DESC LIMIT 1')
    this.#newest = db.prepare('SELECT * FROM tasks WHERE status = ? ORDER BY seq DESC LIMIT ?')
    this.#after = db.prepare('SELECT * FROM tasks WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?')
    this.#all = db.prepare('SELECT * FROM tasks WHERE status = ? ORDER BY seq')
  }

  /** The highest sequence number stored (0: none). */
  last (): number {
    let max = 0
    for (const s of TASK_STATUSES) max = Math.max(max, (this.#last.get(s) as { seq: number } | undefined)?.seq ?? 0)
    return max
  }

  /** The `limit` most recently changed records (of `status`, when given), newest first. */
  newest (limit: number, status?: TaskStatus): Row[] {
    if (status !== undefined) return this.#newest.all(status, limit) as unknown as Row[]
    return merge(TASK_STATUSES.map(s => this.#newest.all(s, limit) as unknown as Row[]), (a, b) => b.seq - a.seq).slice(0, limit)
  }

  /** Terminal records changed after `seq`, oldest change first, at most `limit`. */
  endedAfter (seq: number, limit: number): Row[] {
    return merge(ENDED_STATUSES.map(s => this.#after.all(s, seq, limit) as unknown as Row[]), (a, b) => a.seq - b.seq).slice(0, limit)
  }

  /** Every record not terminal, oldest change first. */
  unfinished (): Row[] {
    return merge(UNFINISHED_STATUSES.map(s => this.#all.all(s) as unknown as Row[]), (a, b) => a.seq - b.seq)
  }
}

/** Lists each sorted by `order`, as one sorted list. */
function merge<T> (lists: T[][], order: (a: T, b: T) => number): T[] {
  const nonEmpty = lists.filter(l => l.length > 0)
  if (nonEmpty.length <= 1) return nonEmpty[0] ?? []
  return nonEmpty.flat().sort(order)
}
