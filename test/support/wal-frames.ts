/**
 * Reads which pages an sqlite WAL file got (test/unit/task-store-pages.test.ts
 * and bench/results/h14writes/wal-pages.ts count the pages a task writes).
 * A WAL is a 32-byte header, then frames of a 24-byte header (the page
 * number first, the salts at 8-16) and a 4 KiB page; a checkpoint restarts it
 * with new salts.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs'

/** Reads the page number of each frame a WAL got since the last call (from its start again after a checkpoint restarted it). */
export function walReader (wal: string): () => number[] {
  let pos = 32
  let salt = ''
  return () => {
    if (!existsSync(wal)) return []
    const fd = openSync(wal, 'r')
    const size = fstatSync(fd).size
    const header = Buffer.alloc(32)
    readSync(fd, header, 0, 32, 0)
    const now = header.subarray(16, 24).toString('hex')
    if (now !== salt) { salt = now; pos = 32 }
    const pages: number[] = []
    const frame = Buffer.alloc(24)
    for (; pos + 24 + 4096 <= size; pos += 24 + 4096) {
      readSync(fd, frame, 0, 24, pos)
      if (frame.subarray(8, 16).toString('hex') !== salt) break // left over from before the restart
      pages.push(frame.readUInt32BE(0))
    }
    closeSync(fd)
    return pages
  }
}
