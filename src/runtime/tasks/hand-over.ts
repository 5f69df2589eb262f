/**
 * Hand-over, the holders' part: unfinished tasks held here go to whoever
 * leads, until that leader acknowledges them. Records held from before a
 * restart are first brought up to date from their other holders, and a task
 * the leader says ended, but whose ending no holder has, runs again. The
 * decisions are HandOverQueue's (src/core/hand-over.ts); this moves bytes.
 */
import { firstChunkBySize } from '../chunks.ts'
import { HandOverQueue } from '../../core/hand-over.ts'
import { isTerminal, specOf, updateOf } from '../../core/tasks.ts'
import type { TaskRecord } from '../../core/tasks.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export class HandOver {
  readonly #ctx: TaskContext
  readonly #queue = new HandOverQueue()
  #busy = false

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
  }

  /** Tasks accepted here that no leader has taken yet. */
  get waiting (): number { return this.#queue.waiting }

  /** Records held since before this start: reconciled before they are offered. */
  restarted (ids: Iterable<string>): void {
    for (const id of ids) this.#queue.markStale(id)
  }

  isStoring (id: string): boolean { return this.#queue.isStoring(id) }
  isStale (id: string): boolean { return this.#queue.isStale(id) }
  beginStoring (ids: readonly string[]): void { this.#queue.beginStoring(ids) }
  endStoring (ids: readonly string[]): void { this.#queue.endStoring(ids) }

  /** Offers these held tasks to the leader now. */
  offer (ids: Iterable<string>): void {
    this.#queue.offer(ids)
    this.forward()
  }

  /** Reopened here by a user's retry: offered as re-runs, at once. */
  offerRerun (ids: Iterable<string>): void {
    this.#queue.offerRerun(ids)
    this.forward()
  }

  /** Offers them with the next step (a leader's full queue, a new leader). */
  offerLater (ids: Iterable<string>): void {
    this.#queue.offer(ids)
  }

  /** The task ended (or was cancelled before a leader took it): nothing to hand over. */
  ended (id: string): void {
    this.#queue.drop(id)
  }

  /** A new leader knows nothing yet: every unfinished task held here is offered to it. */
  offerAll (): void {
    const ids: string[] = []
    for (const rec of this.#ctx.store.unfinished()) if (!this.#queue.isStoring(rec.id)) ids.push(rec.id)
    this.offer(ids)
  }

  /** Sends held, unfinished tasks the current leader has not acknowledged (one step at a time). */
  forward (): void {
    if (this.#busy) return
    const { cluster, store, roles, transport, log } = this.#ctx
    const leader = cluster.leader()
    const step = this.#queue.next(leader !== null, cluster.joining())
    if (step.kind === 'idle' || leader === null) return
    if (step.kind === 'reconcile') {
      this.#busy = true
      void this.reconcile(step.ids).then(answered => {
        const ended = answered.filter(id => { const r = store.get(id); return r !== undefined && isTerminal(r.status) }).length
        log.info({ records: step.ids.length, answered: answered.length, ended }, 'records held from before this start checked with their other holders')
      }).finally(() => { this.#busy = false })
      return
    }
    const unfinished: TaskRecord[] = []
    for (const id of step.ids) {
      const r = store.get(id)
      if (r === undefined || isTerminal(r.status)) this.#queue.drop(id)
      else unfinished.push(r)
    }
    const records = firstChunkBySize(unfinished, this.#ctx.batchBytes)
    const ids = records.map(r => r.id)
    if (ids.length === 0) return
    if (leader.id === this.#ctx.self) {
      if (roles.dispatcher.gathering) return // the gathering takes in every held task
      for (const id of this.#queue.acknowledge(ids)) roles.dispatcher.forgetEnded(id)
      roles.dispatcher.enqueue(records.map(r => ({ ...specOf(r), attempts: r.attempts })), true)
      return
    }
    this.#busy = true
    const rerun = this.#queue.reruns(ids)
    transport.request(leader.id, { kind: 'submit', tasks: records.map(specOf), attempts: records.map(r => r.attempts), accepted: true, ...(rerun.length > 0 ? { rerun } : {}) }, TASK_PATH.rpcTimeoutMs).then(reply => {
      if (reply.kind !== 'stored') return
      // A leader that has been replaced meanwhile may have dropped them: the new one gets them again.
      const now = cluster.leader()
      if (now?.id !== leader.id || now.term !== leader.term) return
      this.#queue.acknowledge(ids)
      // Ended under this leader, but our copy missed it: fetch the ending from the other holders.
      if (reply.ended !== undefined && reply.ended.length > 0) void this.catchUpEnded(reply.ended.filter(id => ids.includes(id)))
    }, (err: Error) => {
      log.debug({ leader: leader.name, err: err.message }, 'hand-over to the leader failed; will retry')
    }).finally(() => { this.#busy = false })
  }

  /**
   * Brings records held here up to date from their other reachable holders
   * (after a restart, a task may have ended elsewhere while this node was
   * down, and must not be handed to the leader and run again). Returns the
   * ids every such holder could be asked about.
   */
  async reconcile (ids: readonly string[]): Promise<string[]> {
    const { store, cluster, transport, roles, log } = this.#ctx
    const answeredIds: string[] = []
    await Promise.all(ids.map(async id => {
      const rec = store.get(id)
      const reachable = new Set(cluster.reachableMembers().map(m => m.id))
      const others = rec === undefined ? [] : [rec.origin, ...rec.replicas].filter(h => h !== this.#ctx.self && reachable.has(h))
      let answered = others.length === 0
      for (const h of others) {
        try {
          const r = await transport.request(h, { kind: 'get', id, waitMs: 0 }, TASK_PATH.rpcTimeoutMs)
          answered = true
          if (r.kind === 'task' && r.task !== null) roles.holders.apply([{ ...updateOf(r.task as TaskRecord), id }])
        } catch (err) {
          log.debug({ id, holder: h, err: (err as Error).message }, 'holder did not answer reconcile')
        }
      }
      if (answered) {
        this.#queue.reconciled(id)
        answeredIds.push(id)
      }
    }))
    return answeredIds
  }

  /**
   * The leader says these tasks ended, but the copy here is unfinished:
   * fetch the ending from the other holders; the ones no holder has the
   * ending of run again (see HandOverQueue.rerunUnfinished).
   */
  async catchUpEnded (ids: readonly string[]): Promise<void> {
    const answered = await this.reconcile(ids)
    this.#queue.rerunUnfinished(answered, id => this.#ctx.store.get(id)?.status)
  }
}

