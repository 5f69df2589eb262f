/**
 * Coalesces small messages to one peer into batches: items pushed in the same
 * turn of the event loop (and while a previous batch is in flight) travel in
 * one RPC. One batch per (peer, kind) is in flight at a time. A batch that
 * fails is retried with backoff while the peer is a live member, up to
 * MAX_TRIES; a dead peer's lane is dropped.
 */
import type { RpcRequest } from '../protocol/rpc.ts'
import { chunkBySize } from './chunks.ts'
import type { ClusterTransport } from './transport.ts'

type Batchable = Extract<RpcRequest, { kind: 'updates' | 'report' }>
type Kind = Batchable['kind']
type Item<K extends Kind> = K extends 'updates' ? Extract<Batchable, { kind: 'updates' }>['updates'][number] : Extract<Batchable, { kind: 'report' }>['reports'][number]

const MAX_BATCH = 2_000
const MAX_TRIES = 6
const RETRY_BASE_MS = 250

interface Lane { items: unknown[], inFlight: Promise<void> | null, scheduled: boolean, failures: number }

export class Outbox {
  readonly #lanes = new Map<string, Lane>()
  readonly #transport: ClusterTransport
  readonly #timeoutMs: number
  readonly #maxBatchBytes: number
  readonly #onError: (kind: Kind, to: string, err: Error) => void
  readonly #isLive: (peer: string) => boolean

  constructor (transport: ClusterTransport, timeoutMs: number, maxBatchBytes: number, onError: (kind: Kind, to: string, err: Error) => void, isLive: (peer: string) => boolean) {
    this.#transport = transport
    this.#timeoutMs = timeoutMs
    this.#maxBatchBytes = maxBatchBytes
    this.#onError = onError
    this.#isLive = isLive
  }

  push<K extends Kind> (to: string, kind: K, items: ReadonlyArray<Item<K>>): void {
    const key = `${kind} ${to}`
    let lane = this.#lanes.get(key)
    if (lane === undefined) {
      lane = { items: [], inFlight: null, scheduled: false, failures: 0 }
      this.#lanes.set(key, lane)
    }
    lane.items.push(...items)
    this.#schedule(to, kind, lane)
  }

  /** Resolves when everything pushed so far has been sent (or failed). */
  async flush (): Promise<void> {
    for (;;) {
      const busy = [...this.#lanes.values()].filter(l => l.inFlight !== null || l.items.length > 0 || l.scheduled)
      if (busy.length === 0) return
      await Promise.all(busy.map(async l => { await (l.inFlight ?? new Promise(resolve => setImmediate(resolve))) }))
    }
  }

  #schedule (to: string, kind: Kind, lane: Lane): void {
    if (lane.scheduled || lane.inFlight !== null) return
    lane.scheduled = true
    setImmediate(() => {
      lane.scheduled = false
      this.#send(to, kind, lane)
    })
  }

  #send (to: string, kind: Kind, lane: Lane): void {
    if (lane.items.length === 0) return
    const items = lane.items.splice(0, chunkBySize(lane.items.slice(0, MAX_BATCH), this.#maxBatchBytes)[0]?.length ?? 0)
    const msg = (kind === 'updates' ? { kind, updates: items } : { kind, reports: items }) as Batchable
    let retryInMs = 0
    lane.inFlight = this.#transport.request(to, msg, this.#timeoutMs).then(reply => {
      if (reply.kind === 'error') throw new Error(`${reply.code}: ${reply.message}`)
      lane.failures = 0
    }).catch((err: Error) => {
      lane.failures++
      if (lane.failures < MAX_TRIES && this.#isLive(to)) {
        lane.items.unshift(...items)
        retryInMs = RETRY_BASE_MS * 2 ** (lane.failures - 1)
      } else {
        this.#onError(kind, to, err)
        if (!this.#isLive(to)) lane.items.length = 0
        lane.failures = 0
      }
    }).finally(() => {
      if (retryInMs > 0) {
        lane.inFlight = new Promise(resolve => setTimeout(resolve, retryInMs)).then(() => {
          lane.inFlight = null
          this.#schedule(to, kind, lane)
        })
        return
      }
      lane.inFlight = null
      if (lane.items.length > 0) this.#schedule(to, kind, lane)
      else this.#lanes.delete(`${kind} ${to}`)
    })
  }
}
