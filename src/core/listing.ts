/**
 * A cluster-wide listing, pure: every holder answers one page of the records
 * it holds (newest submit first: createdAt, then id, both descending), and
 * the pages merge into one page of the cluster's tasks. A task has a copy on
 * each of its holders: the most advanced copy is kept. The merged page goes
 * only as far as every holder that has more is known to have nothing in
 * between, so a cursor (the last record's key) is stable: the next page
 * begins exactly after it, whatever was submitted meanwhile.
 */

/** Where a page ends: the last record's submit time and id. */
export interface PageKey { createdAt: number, id: string }

/** Negative when `a` comes first in a listing (newer submit, then greater id). */
export function compareKeys (a: PageKey, b: PageKey): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

export const keyOf = (r: PageKey): PageKey => ({ createdAt: r.createdAt, id: r.id })

/** One holder's answer: its records in listing order, and whether it holds more after the last. */
export interface HolderPage<T extends PageKey> { tasks: readonly T[], more: boolean }

/**
 * Merges the holders' pages into at most `limit` records; `advanced(a, b)`
 * says whether copy `b` is ahead of copy `a` of one task. `next` is the key
 * to ask after for the next page, or null when the listing is complete.
 */
export function mergePages<T extends PageKey> (pages: ReadonlyArray<HolderPage<T>>, limit: number, advanced: (a: T, b: T) => boolean): { tasks: T[], next: PageKey | null } {
  const best = new Map<string, T>()
  for (const p of pages) {
    for (const r of p.tasks) {
      const known = best.get(r.id)
      if (known === undefined || advanced(known, r)) best.set(r.id, r)
    }
  }
  // A holder with more may hold records right after its last one: nothing past the first such last key is certain.
  let boundary: PageKey | null = null
  for (const p of pages) {
    const last = p.tasks.at(-1)
    if (!p.more || last === undefined) continue
    if (boundary === null || compareKeys(last, boundary) < 0) boundary = keyOf(last)
  }
  const sorted = [...best.values()].sort(compareKeys)
  const certain = boundary === null ? sorted : sorted.filter(r => compareKeys(r, boundary) <= 0)
  const tasks = certain.slice(0, limit)
  const cut = tasks.length < sorted.length || boundary !== null
  return { tasks, next: cut && tasks.length > 0 ? keyOf(tasks.at(-1)!) : null }
}
