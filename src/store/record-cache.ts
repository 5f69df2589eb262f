/**
 * Task records kept in memory by the store (src/store/task-store.ts), the
 * most recently remembered last: at most `maxRecords` of them and at most
 * `maxBytes` in all, by an estimate of each record's size (its payload,
 * result and progress as JSON, plus what a small record costs), so a few
 * large payloads or results cannot make the cache hold gigabytes
 * (`maxPayloadBytes` allows 1 MB each by default). Whatever falls out is
 * read from sqlite again when needed. A record larger than the whole budget
 * is not kept.
 */
import type { TaskRecord } from '../core/tasks.ts'

/**
 * The store's bounds. Records are kept in memory as well as on disk (most
 * recently written or read last): the task path reads a record for every
 * update it applies, and a row read and its JSON parse cost more than the
 * update itself. Callers never mutate a record they are given. Unfinished
 * records (the ones the task path updates) have their own room; a finished
 * record moves to a much smaller one (late duplicate endings and the reads
 * just after an ending hit it), so the records a node holds after their
 * tasks ended live on disk only. And at most so many bytes of each: 10,000
 * small records are about 6 MB, where 10,000 payloads of 1 MB
 * (maxPayloadBytes) would be 10 GB.
 */
export const CACHED_RECORDS = 10_000
export const CACHED_ENDED_RECORDS = 1_000
export const CACHED_BYTES = 16 * 2 ** 20
export const CACHED_ENDED_BYTES = 4 * 2 ** 20

/** What a record with a small payload costs in memory beside its JSON (measured: about 570 bytes for a queued one). */
export const RECORD_OVERHEAD_BYTES = 600

export class RecordCache {
  readonly #maxRecords: number
  readonly #maxBytes: number
  readonly #entries = new Map<string, { rec: TaskRecord, base: number, bytes: number }>()
  #bytes = 0

  constructor (maxRecords: number, maxBytes: number) {
    this.#maxRecords = maxRecords
    this.#maxBytes = maxBytes
  }

  get (id: string): TaskRecord | undefined {
    return this.#entries.get(id)?.rec
  }

  /** The part of its size estimate that updates leave alone (payload, parents, overhead) the record with this id was kept with (undefined: not kept). */
  baseOf (id: string): number | undefined {
    return this.#entries.get(id)?.base
  }

  /**
   * Keeps `rec` as the newest, with its size estimate: `base` (what updates
   * leave alone) plus `extra` (its result and progress); drops the oldest
   * while over either bound.
   */
  set (rec: TaskRecord, base: number, extra = 0): void {
    this.delete(rec.id)
    const bytes = base + extra
    if (bytes > this.#maxBytes) return
    this.#entries.set(rec.id, { rec, base, bytes })
    this.#bytes += bytes
    while (this.#entries.size > this.#maxRecords || this.#bytes > this.#maxBytes) {
      const [oldest, entry] = this.#entries.entries().next().value!
      this.#entries.delete(oldest)
      this.#bytes -= entry.bytes
    }
  }

  delete (id: string): void {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    this.#entries.delete(id)
    this.#bytes -= entry.bytes
  }

  clear (): void {
    this.#entries.clear()
    this.#bytes = 0
  }

  get size (): number { return this.#entries.size }
  /** The estimated bytes of the records kept. */
  get bytes (): number { return this.#bytes }
}
