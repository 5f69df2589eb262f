/**
 * Task updates on their way to one holder each. Updates pushed in the same
 * turn of the event loop (and while a previous batch is in flight) travel in
 * one RPC; one batch per holder is in flight at a time. Only the newest
 * update of each task is kept (merged as holders merge them, so a terminal
 * one always wins), which bounds a lane by the tasks it concerns. A batch
 * that fails is retried with capped backoff for as long as the holder is a
 * live member; a dead holder's lane is dropped (and its owner told, to
 * send what matters again when that member is back).
 */
import { newestUpdate } from '../core/tasks.ts'
import type { TaskUpdate } from '../core/tasks.ts'
import { firstChunkBySize } from './chunks.ts'
import type { Clock } from './clock.ts'
import type { ClusterTransport } from './transport.ts'
import { OUTBOX_MAX_BATCH, OUTBOX_RETRY_BASE_MS, OUTBOX_RETRY_MAX_MS } from '../protocol/constants.ts'

interface Lane { pending: Map<string, TaskUpdate>, inFlight: Promise<void> | null, scheduled: boolean, failures: number }

export class Outbox {
  readonly #lanes = new Map<string, Lane>()
  readonly #transport: ClusterTransport
  readonly #clock: Clock
  readonly #timeoutMs: number
  readonly #maxBatchBytes: number
  readonly #onError: (to: string, err: Error, failures: number) => void
  readonly #isLive: (peer: string) => boolean
  readonly #onDrop: (peer: string, dropped: TaskUpdate[]) => void

  constructor (transport: ClusterTransport, clock: Clock, timeoutMs: number, maxBatchBytes: number, onError: (to: string, err: Error, failures: number) => void, isLive: (peer: string) => boolean, onDrop: (peer: string, dropped: TaskUpdate[]) => void = () => {}) {
    this.#transport = transport
    this.#clock = clock
    this.#timeoutMs = timeoutMs
    this.#maxBatchBytes = maxBatchBytes
    this.#onError = onError
    this.#isLive = isLive
    this.#onDrop = onDrop
  }

  /**
   * `atOnce`: sent in this turn when nothing is on its way to that holder yet
   * (the caller has gathered the turn's updates for it already), instead of
   * after the turn.
   */
  push (to: string, updates: readonly TaskUpdate[], atOnce = false): void {
    let lane = this.#lanes.get(to)
    if (lane === undefined) {
      lane = { pending: new Map(), inFlight: null, scheduled: false, failures: 0 }
      this.#lanes.set(to, lane)
    }
    for (const u of updates) this.#merge(lane, u)
    if (atOnce && !lane.scheduled && lane.inFlight === null) this.#send(to, lane)
    else this.#schedule(to, lane)
  }

  /** Resolves when everything pushed so far has been sent, or its holder is gone. */
  async flush (): Promise<void> {
    for (;;) {
      const busy = [...this.#lanes.values()].filter(l => l.inFlight !== null || l.pending.size > 0 || l.scheduled)
      if (busy.length === 0) return
      await Promise.all(busy.map(async l => { await (l.inFlight ?? new Promise<void>(resolve => { this.#clock.after(0, resolve) })) }))
    }
  }

  #merge (lane: Lane, u: TaskUpdate): void {
    lane.pending.set(u.id, newestUpdate(lane.pending.get(u.id), u))
  }

  #schedule (to: string, lane: Lane): void {
    if (lane.scheduled || lane.inFlight !== null) return
    lane.scheduled = true
    this.#clock.after(0, () => {
      lane.scheduled = false
      this.#send(to, lane)
    })
  }

  #send (to: string, lane: Lane): void {
    if (lane.pending.size === 0) { this.#lanes.delete(to); return }
    const candidates = [...lane.pending.values()].slice(0, OUTBOX_MAX_BATCH)
    const batch = firstChunkBySize(candidates, this.#maxBatchBytes)
    for (const u of batch) lane.pending.delete(u.id)
    let retryInMs = 0
    lane.inFlight = this.#transport.request(to, { kind: 'updates', updates: batch }, this.#timeoutMs).then(reply => {
      if (reply.kind === 'error') throw new Error(`${reply.code}: ${reply.message}`)
      lane.failures = 0
    }).catch((err: Error) => {
      lane.failures++
      this.#onError(to, err, lane.failures)
      if (this.#isLive(to)) {
        for (const u of batch) this.#merge(lane, u)
        retryInMs = Math.min(OUTBOX_RETRY_MAX_MS, OUTBOX_RETRY_BASE_MS * 2 ** (lane.failures - 1))
      } else {
        const dropped = [...batch, ...lane.pending.values()]
        lane.pending.clear()
        this.#onDrop(to, dropped)
      }
    }).finally(() => {
      if (retryInMs > 0) {
        lane.inFlight = new Promise<void>(resolve => { this.#clock.after(retryInMs, resolve) }).then(() => {
          lane.inFlight = null
          this.#schedule(to, lane)
        })
        return
      }
      lane.inFlight = null
      if (lane.pending.size > 0) this.#schedule(to, lane)
      else this.#lanes.delete(to)
    })
  }
}
