/**
 * Reads and cancels, from any node: a task's record comes from this node's
 * copy or from the other holders (the most advanced one wins: holders may
 * lag one another by a message), and a long-poll waits here for the ending.
 * A cancel goes through the leader, which alone knows where the task runs.
 */
import { trace } from '../../trace.ts'
import { generationOf, isTerminal, mergeUpdate } from '../../core/tasks.ts'
import type { TaskRecord, TaskStatus, TaskUpdate } from '../../core/tasks.ts'
import { TaskExpiredError, TaskFinishedError, TaskNotFoundError, UnavailableError } from '../../errors.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'
import type { RpcReply } from '../../protocol/rpc.ts'

/** How long a cancel's answer waits for the task's holders to record the cancel. */
const CANCEL_CONFIRM_MS = 1_000

export class Reads {
  readonly #ctx: TaskContext
  readonly #waiters = new Map<string, Set<(rec: TaskRecord) => void>>()

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
  }

  /** The task's record from this node or any reachable node; waits up to waitMs for it to end. */
  async get (id: string, waitMs = 0, opts: { everywhere?: boolean } = {}): Promise<TaskRecord> {
    const { cluster, transport } = this.#ctx
    const local = await this.getLocal(id, waitMs)
    if (local !== undefined && opts.everywhere !== true && isTerminal(local.status)) return local
    const reachable = cluster.reachableMembers().filter(m => m.id !== this.#ctx.self).map(m => m.id)
    // An unfinished copy here may be a message or two behind the task's other holders: they answer too.
    // Without a copy here, every reachable member is asked.
    const ask = local !== undefined && opts.everywhere !== true
      ? [...new Set([local.origin, ...local.replicas])].filter(h => reachable.includes(h))
      : reachable
    const askWaitMs = local !== undefined ? 0 : waitMs
    let forgotten = local === undefined && this.#ctx.store.retention.wasForgotten(id)
    const replies = await Promise.allSettled(ask.map(async m => {
      const r = await transport.request(m, { kind: 'get', id, waitMs: askWaitMs }, askWaitMs + (local !== undefined ? TASK_PATH.holderReadTimeoutMs : TASK_PATH.rpcTimeoutMs))
      if (r.kind === 'error' && r.code === 'TASK_EXPIRED') forgotten = true
      return r.kind === 'task' ? r.task as TaskRecord | null : null
    }))
    let best: TaskRecord | undefined = local
    for (const r of replies) {
      if (r.status !== 'fulfilled' || r.value === null) continue
      if (best === undefined || mergeUpdate(best, r.value) !== null) best = r.value
    }
    if (best === undefined) throw forgotten ? new TaskExpiredError(id) : new TaskNotFoundError(id)
    return best
  }

  list (filter: { status?: TaskStatus, limit: number }): TaskRecord[] {
    return this.#ctx.store.list(filter)
  }

  /** This node's copy; when unfinished, waits up to waitMs for it to end. */
  async getLocal (id: string, waitMs: number): Promise<TaskRecord | undefined> {
    await this.watchHeld([id], waitMs, 'any').done
    return this.#ctx.store.get(id)
  }

  /**
   * Of `ids`, those held here: `done` resolves once one of them has ended
   * (mode 'any': at once if one already has) or all have ('all'), or after
   * waitMs, or at once when none is held here unfinished; `cancel` ends the
   * wait early. Each id's waiters are released either way.
   */
  watchHeld (ids: readonly string[], waitMs: number, mode: 'any' | 'all'): { done: Promise<void>, cancel: () => void } {
    const { store, clock } = this.#ctx
    const open = new Set<string>()
    let ended = false
    for (const id of ids) {
      const rec = store.get(id)
      if (rec === undefined) continue
      if (isTerminal(rec.status)) ended = true
      else open.add(id)
    }
    if (waitMs <= 0 || open.size === 0 || (ended && mode === 'any')) return { done: Promise.resolve(), cancel: () => {} }
    let finish!: () => void
    const done = new Promise<void>(resolve => {
      const watched = [...open]
      const onChange = (r: TaskRecord): void => {
        if (!isTerminal(r.status)) return
        trace('reads.woken', r.id)
        open.delete(r.id)
        if (mode === 'any' || open.size === 0) finish()
      }
      const cancelTimer = clock.after(waitMs, () => { finish() })
      finish = () => {
        cancelTimer()
        for (const id of watched) {
          const set = this.#waiters.get(id)
          set?.delete(onChange)
          if (set?.size === 0) this.#waiters.delete(id)
        }
        resolve()
      }
      for (const id of watched) {
        const set = this.#waiters.get(id) ?? new Set()
        this.#waiters.set(id, set)
        set.add(onChange)
      }
    })
    return { done, cancel: () => { finish() } }
  }

  /**
   * Serves a bulk wait from another member (RPC `wait`): waits up to waitMs
   * for one of the asked tasks held here to end, then answers with those
   * held here that have ended (as many as fit a quarter of a frame; the rest
   * are listed as held, and the asker asks again) and the other held ids.
   */
  async serveWait (ids: readonly string[], waitMs: number): Promise<Extract<RpcReply, { kind: 'tasks' }>> {
    const { store } = this.#ctx
    const unique = [...new Set(ids)]
    await this.watchHeld(unique, waitMs, 'any').done
    const ended: TaskRecord[] = []
    const held: string[] = []
    let bytes = 0
    for (const id of unique) {
      const rec = store.get(id)
      if (rec === undefined) continue
      const size = isTerminal(rec.status) ? Buffer.byteLength(JSON.stringify(rec)) : 0
      if (size > 0 && (ended.length === 0 || bytes + size <= this.#ctx.batchBytes)) {
        ended.push(rec)
        bytes += size
      } else {
        held.push(id)
      }
    }
    return { kind: 'tasks', ended, held }
  }

  /** A record held here changed: long-polls on it may answer. */
  changed (rec: TaskRecord): void {
    for (const w of [...this.#waiters.get(rec.id) ?? []]) w(rec)
  }

  async cancel (id: string): Promise<{ id: string, status: 'cancelled' | 'cancelling' }> {
    const { cluster, transport, roles, clock } = this.#ctx
    const rec = await this.get(id)
    if (isTerminal(rec.status)) throw new TaskFinishedError(id, rec.status)
    const leader = cluster.leader()
    if (leader === null) throw new UnavailableError('no leader to cancel through; retry')
    const reply = leader.id === this.#ctx.self
      ? await roles.dispatcher.cancel(id)
      : await transport.request(leader.id, { kind: 'cancel', id }, TASK_PATH.rpcTimeoutMs)
    if (reply.kind !== 'cancel') throw new UnavailableError(`the leader could not cancel: ${reply.kind === 'error' ? reply.message : reply.kind}`)
    if (reply.outcome === 'cancelled') return await this.#recorded(id)
    if (reply.outcome === 'aborting') return { id, status: 'cancelling' }
    // The leader does not track it: it just ended (a holder here may lag), or it was never handed over.
    const latest = await this.get(id, 0, { everywhere: true })
    if (isTerminal(latest.status)) throw new TaskFinishedError(id, latest.status)
    if (latest.status !== 'queued' && latest.status !== 'retrying' && latest.status !== 'scheduled' && latest.status !== 'waiting') throw new UnavailableError('the task is between leaders; retry the cancel')
    const update: TaskUpdate = { id, status: 'cancelled', attempts: rec.attempts, worker: rec.worker, progress: rec.progress, result: null, error: 'cancelled by request', startedAt: rec.startedAt, finishedAt: clock.now(), ...generationOf(latest) }
    roles.holders.send([update], [rec.origin, ...rec.replicas])
    roles.handOver.ended(id)
    return await this.#recorded(id)
  }

  /**
   * A cancel was decided and sent to the task's holders: the answer is what
   * they record, read with a bounded wait (CANCEL_CONFIRM_MS). `cancelled`
   * once they do; a result that reached them first outranks the cancel
   * (409, as for any ended task); still unfinished (an ending on its way, a
   * holder out of reach), `cancelling`: decided, not yet recorded.
   */
  async #recorded (id: string): Promise<{ id: string, status: 'cancelled' | 'cancelling' }> {
    const rec = await this.get(id, CANCEL_CONFIRM_MS).catch(() => undefined)
    if (rec === undefined || !isTerminal(rec.status)) return { id, status: 'cancelling' }
    if (rec.status !== 'cancelled') throw new TaskFinishedError(id, rec.status)
    return { id, status: 'cancelled' }
  }
}
