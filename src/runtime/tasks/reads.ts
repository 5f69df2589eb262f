/**
 * Reads and cancels, from any node: a task's record comes from this node's
 * copy or from the other holders (the most advanced one wins: holders may
 * lag one another by a message), and a long-poll waits here for the ending.
 * A cancel goes through the leader, which alone knows where the task runs.
 */
import { isTerminal, mergeUpdate } from '../../core/tasks.ts'
import type { TaskRecord, TaskStatus, TaskUpdate } from '../../core/tasks.ts'
import { TaskFinishedError, TaskNotFoundError, UnavailableError } from '../../errors.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

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
    const replies = await Promise.allSettled(ask.map(async m => {
      const r = await transport.request(m, { kind: 'get', id, waitMs: askWaitMs }, askWaitMs + (local !== undefined ? TASK_PATH.holderReadTimeoutMs : TASK_PATH.rpcTimeoutMs))
      return r.kind === 'task' ? r.task as TaskRecord | null : null
    }))
    let best: TaskRecord | undefined = local
    for (const r of replies) {
      if (r.status !== 'fulfilled' || r.value === null) continue
      if (best === undefined || mergeUpdate(best, r.value) !== null) best = r.value
    }
    if (best === undefined) throw new TaskNotFoundError(id)
    return best
  }

  list (filter: { status?: TaskStatus, limit: number }): TaskRecord[] {
    return this.#ctx.store.list(filter)
  }

  /** This node's copy; when unfinished, waits up to waitMs for it to end. */
  async getLocal (id: string, waitMs: number): Promise<TaskRecord | undefined> {
    const rec = this.#ctx.store.get(id)
    if (rec === undefined || waitMs <= 0 || isTerminal(rec.status)) return rec
    return await new Promise(resolve => {
      const set = this.#waiters.get(id) ?? new Set()
      this.#waiters.set(id, set)
      const done = (r: TaskRecord): void => {
        if (!isTerminal(r.status)) return
        cancelTimer()
        set.delete(done)
        if (set.size === 0) this.#waiters.delete(id)
        resolve(r)
      }
      const cancelTimer = this.#ctx.clock.after(waitMs, () => {
        set.delete(done)
        if (set.size === 0) this.#waiters.delete(id)
        resolve(this.#ctx.store.get(id))
      })
      set.add(done)
    })
  }

  /** A record held here changed: long-polls on it may answer. */
  changed (rec: TaskRecord): void {
    for (const w of this.#waiters.get(rec.id) ?? []) w(rec)
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
    if (reply.outcome === 'cancelled') return { id, status: 'cancelled' }
    if (reply.outcome === 'aborting') return { id, status: 'cancelling' }
    // The leader does not track it: it just ended (a holder here may lag), or it was never handed over.
    const latest = await this.get(id, 0, { everywhere: true })
    if (isTerminal(latest.status)) throw new TaskFinishedError(id, latest.status)
    if (latest.status !== 'queued' && latest.status !== 'retrying') throw new UnavailableError('the task is between leaders; retry the cancel')
    const update: TaskUpdate = { id, status: 'cancelled', attempts: rec.attempts, worker: rec.worker, progress: rec.progress, result: null, error: 'cancelled by request', startedAt: rec.startedAt, finishedAt: clock.now() }
    roles.holders.send([update], [rec.origin, ...rec.replicas])
    roles.handOver.ended(id)
    return { id, status: 'cancelled' }
  }
}
