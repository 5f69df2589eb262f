/**
 * Completion callbacks, the holders' part (decisions in src/core/callbacks.ts):
 * every holder of a task records the deliveries of its ending on disk
 * (DeliveryStore); the first live holder of [origin, ...replicas] POSTs the
 * final record to each target, signed, retrying with backoff, and tells the
 * other holders each new state, so that the next copy takes over from there
 * when the deliverer dies. At least once: a receiver deduplicates on the
 * delivery id, the same on every holder and across retries.
 */
import { createHash, createHmac } from 'node:crypto'
import { afterTry, deliveryKey, delivererOf, newDelivery, targetsOf } from '../../core/callbacks.ts'
import type { DeliveryPolicy, DeliveryState, Webhook } from '../../core/callbacks.ts'
import { isTerminal } from '../../core/tasks.ts'
import type { TaskRecord } from '../../core/tasks.ts'
import type { RpcReply, RpcRequest } from '../../protocol/rpc.ts'
import type { DeliveryStore } from '../../store/delivery-store.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export interface CallbackSettings {
  store: DeliveryStore
  /** Configured webhooks (each ending whose status is in its events goes there too). */
  webhooks: readonly Webhook[]
  /** HMAC-SHA256 key of the signature header; null: deliveries are not signed. */
  secret: string | null
  policy: DeliveryPolicy
  /** Time one POST may take before it counts as failed. */
  timeoutMs: number
  /** How long a delivery that ended (delivered or failed) is remembered. */
  retainMs: number
}

/** Due deliveries looked at per tick; a delivery another holder makes is looked at again after this. */
const DUE_PER_TICK = 100
const RECHECK_MS = 1_000
const PRUNE_EVERY_MS = 60_000

/** The body of a delivery: the task's final record, as GET /v1/tasks/:id shows it (no payload). */
function recordOf (r: TaskRecord): Record<string, unknown> {
  return {
    id: r.id, type: r.type, status: r.status, attempts: r.attempts, maxAttempts: r.maxAttempts, worker: r.worker, result: r.result, error: r.error, progress: r.progress,
    createdAt: r.createdAt, startedAt: r.startedAt, finishedAt: r.finishedAt, ...(r.runAt === undefined ? {} : { runAt: r.runAt }), ...(r.retries === undefined ? {} : { retries: r.retries })
  }
}

/** `sha256=<hex>` of HMAC-SHA256(secret, `<timestamp>.<body>`): what the X-Taskmesh-Signature header carries. */
export function signature (secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
}

export class Callbacks {
  readonly #ctx: TaskContext
  readonly #settings: CallbackSettings | undefined
  readonly #inFlight = new Set<string>()
  #prunedAt = 0
  #warnedUnsigned = false

  constructor (ctx: TaskContext, settings: CallbackSettings | undefined) {
    this.#ctx = ctx
    this.#settings = settings
  }

  /** Endings recorded here: their deliveries are recorded (once: a delivery already held is kept). */
  ended (recs: readonly TaskRecord[]): void {
    const s = this.#settings
    if (s === undefined) return
    const now = this.#ctx.clock.now()
    const fresh = recs.flatMap(rec => targetsOf(rec, s.webhooks).map(target => ({
      state: newDelivery(createHash('sha256').update(deliveryKey(rec, target)).digest('hex').slice(0, 32), rec, target, now),
      headers: target.headers
    })))
    if (fresh.length === 0) return
    if (s.secret === null && !this.#warnedUnsigned) {
      this.#warnedUnsigned = true
      this.#ctx.log.warn('callbacks are delivered unsigned: set webhookSecret (TASKMESH_WEBHOOK_SECRET) so receivers can verify them')
    }
    try {
      s.store.add(fresh, now)
    } catch (err) {
      this.#ctx.log.error({ err: (err as Error).message }, 'could not record callback deliveries')
    }
  }

  /** Every tick: the due deliveries this node makes are sent. */
  tick (): void {
    const s = this.#settings
    if (s === undefined) return
    try {
      this.#sendDue(s)
    } catch (err) {
      this.#ctx.log.error({ err: (err as Error).message }, 'could not look at due callback deliveries; trying again on the next tick')
    }
  }

  #sendDue (s: CallbackSettings): void {
    const { cluster, store, clock } = this.#ctx
    const now = clock.now()
    if (now - this.#prunedAt >= PRUNE_EVERY_MS) {
      this.#prunedAt = now
      s.store.prune(now - s.retainMs)
    }
    // A node still joining may not see the task's other holders yet: it would take a delivery one of them makes.
    if (cluster.joining()) return
    const due = s.store.due(now, DUE_PER_TICK + this.#inFlight.size)
    // An idle node's tick ends here (due answers from memory, see delivery-store.ts): no member list built.
    if (due.length === 0) return
    const live = new Set(cluster.reachableMembers().map(m => m.id))
    const others: DeliveryState[] = []
    for (const d of due) {
      if (this.#inFlight.has(d.id)) continue
      const rec = store.get(d.task)
      // Forgotten (retention, a purge), or reopened by a user's retry: the ending to send is no longer held.
      const gone = rec === undefined ? 'the task\'s record was forgotten here before the delivery succeeded' : isTerminal(rec.status) ? null : 'the task was retried before its ending was delivered'
      if (gone !== null || rec === undefined) {
        this.#record({ ...d, state: 'failed', lastStatus: null, lastError: gone }, null)
        continue
      }
      const holders = [...new Set([rec.origin, ...rec.replicas])]
      if (delivererOf(holders, live) !== this.#ctx.self) { others.push(d); continue }
      this.#inFlight.add(d.id)
      void this.#try(d, rec, holders, s).finally(() => { this.#inFlight.delete(d.id) })
    }
    // Made by another holder: looked at again a little later (this one takes over when that one is gone).
    if (others.length > 0) s.store.postpone(others.map(d => d.id), now + RECHECK_MS)
  }

  async #try (due: DeliveryState, rec: TaskRecord, holders: string[], s: CallbackSettings): Promise<void> {
    const { clock, log } = this.#ctx
    // What the other holders know first: one may have delivered it while this node was down or not yet the deliverer.
    const d = await this.#catchUp(due, holders, s)
    if (d === undefined) return
    const body = JSON.stringify({ deliveryId: d.id, event: d.event, task: recordOf(rec) })
    const timestamp = String(clock.now())
    const headers: Record<string, string> = {
      ...s.store.headers(d.id),
      'content-type': 'application/json',
      'user-agent': 'taskmesh',
      'x-taskmesh-delivery': d.id,
      'x-taskmesh-event': d.event,
      'x-taskmesh-timestamp': timestamp,
      ...(s.secret === null ? {} : { 'x-taskmesh-signature': signature(s.secret, timestamp, body) })
    }
    let outcome: { ok: true } | { ok: false, status: number | null, error: string }
    try {
      const res = await fetch(d.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(s.timeoutMs) })
      await res.body?.cancel().catch(() => {})
      outcome = res.status >= 200 && res.status < 300 ? { ok: true } : { ok: false, status: res.status, error: `the receiver answered ${res.status}` }
    } catch (err) {
      outcome = { ok: false, status: null, error: `no answer: ${(err as Error).message}` }
    }
    const next = afterTry(d, outcome, clock.now(), s.policy)
    if (next.state !== 'pending') log.info({ task: d.task, delivery: d.id, url: d.url, state: next.state, attempts: next.attempts }, next.state === 'delivered' ? 'callback delivered' : 'callback failed: attempts spent')
    else log.warn({ task: d.task, delivery: d.id, url: d.url, attempts: next.attempts, err: next.lastError }, 'callback not delivered; retrying')
    try {
      this.#record(next, holders)
    } catch (err) {
      // Stopping (the store is closed): the try is made again after a restart, with the same id.
      log.warn({ delivery: d.id, err: (err as Error).message }, 'could not record a callback delivery\'s state')
    }
  }

  /** Merges the other live holders' states of this delivery; the state to try from, or undefined when it is no longer pending. */
  async #catchUp (d: DeliveryState, holders: string[], s: CallbackSettings): Promise<DeliveryState | undefined> {
    const { cluster, transport, clock, self } = this.#ctx
    const live = new Set(cluster.reachableMembers().map(m => m.id))
    await Promise.all(holders.filter(h => h !== self && live.has(h)).map(async h => {
      try {
        const r = await transport.request(h, { kind: 'deliveries', task: d.task }, TASK_PATH.holderReadTimeoutMs)
        if (r.kind === 'deliveries') s.store.merge(r.states.filter(x => x.id === d.id), clock.now())
      } catch {}
    }))
    const now = s.store.get(d.id)
    return now?.state === 'pending' ? now : undefined
  }

  /** Keeps a new state here and tells the task's other live holders. */
  #record (next: DeliveryState, holders: string[] | null): void {
    const s = this.#settings!
    const { cluster, transport, clock, self } = this.#ctx
    s.store.merge([next], clock.now())
    if (holders === null) return
    const live = new Set(cluster.reachableMembers().map(m => m.id))
    for (const h of holders) {
      if (h === self || !live.has(h)) continue
      transport.request(h, { kind: 'deliveries', states: [next] }, TASK_PATH.rpcTimeoutMs).catch(() => {})
    }
  }

  /** RPC `deliveries`: states another holder sends are merged; the asked task's are answered. */
  receive (msg: Extract<RpcRequest, { kind: 'deliveries' }>): RpcReply {
    const s = this.#settings
    if (s === undefined) return { kind: 'deliveries', states: [] }
    if (msg.states !== undefined && msg.states.length > 0) s.store.merge(msg.states, this.#ctx.clock.now())
    return { kind: 'deliveries', states: msg.task === undefined ? [] : s.store.ofTask(msg.task) }
  }

  /**
   * The deliveries of a task's endings: this node's when it holds the task,
   * else a live holder's. None, without a look, for a task without a
   * callback on a node without webhooks (the usual read: no query, no RPC).
   */
  async of (rec: TaskRecord): Promise<DeliveryState[]> {
    const s = this.#settings
    if (s === undefined || (rec.callback === undefined && s.webhooks.length === 0)) return []
    const { cluster, transport, self } = this.#ctx
    const holders = [...new Set([rec.origin, ...rec.replicas])]
    if (holders.includes(self)) return s.store.ofTask(rec.id)
    const live = new Set(cluster.reachableMembers().map(m => m.id))
    for (const h of holders.filter(x => live.has(x))) {
      try {
        const r = await transport.request(h, { kind: 'deliveries', task: rec.id }, TASK_PATH.holderReadTimeoutMs)
        if (r.kind === 'deliveries') return r.states
      } catch {}
    }
    return []
  }
}
