/**
 * One sqlite write transaction, as every store here runs them: BEGIN
 * IMMEDIATE (the write lock at once, so a busy database waits on
 * busy_timeout rather than failing at COMMIT), COMMIT when `fn` returns,
 * ROLLBACK and `onRollback` (a store's in-memory state to undo) when it
 * throws, the error passed on.
 */
import type { DatabaseSync } from 'node:sqlite'

export function inTransaction (db: DatabaseSync, fn: () => void, onRollback?: () => void): void {
  db.exec('BEGIN IMMEDIATE')
  try {
    fn()
    db.exec('COMMIT')
  } catch (err) {
    db.exec('ROLLBACK')
    onRollback?.()
    throw err
  }
}
