/**
 * Opens a store's sqlite file for this connection alone, in WAL mode:
 * locking_mode EXCLUSIVE, set before the first access, so sqlite takes its
 * file locks once and keeps the WAL's index in memory, instead of taking
 * and releasing fcntl locks on the database and its -shm file around every
 * transaction and every read (12 fcntl calls per task on each holder of the
 * task store). Another process, or another connection in this one, cannot
 * open the file while it is open: it is told so at once.
 */
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'

/** sqlite's "database is locked" (another connection holds the file's lock). */
const SQLITE_BUSY = 5

/** The file is open in another process (a node already runs on that data directory) or another store of this one. */
export class StoreInUseError extends Error {
  override name = 'StoreInUseError'
}

/** `<dataDir>/<file>` (`null`: a database in memory) opened as above. */
export function openExclusive (dataDir: string | null, file: string): DatabaseSync {
  const path = dataDir === null ? ':memory:' : join(dataDir, file)
  const db = new DatabaseSync(path)
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL;')
  } catch (err) {
    db.close()
    if ((err as { errcode?: number }).errcode === SQLITE_BUSY) throw new StoreInUseError(`${path} is in use by another process or store (does a node already run on the data directory ${dataDir ?? ''}?)`, { cause: err })
    throw err
  }
  return db
}
