/**
 * Carries tasks through the cluster: the facade over the task runtime's
 * parts, one file per role under ./tasks/ (every node plays them all):
 * - intake.ts: an origin judges a submit, stores it here and on a second
 *   live node, and only then accepts it;
 * - hand-over.ts: holders offer unfinished tasks to whoever leads;
 * - dispatcher.ts: the leader gathers, schedules, assigns, takes reports;
 * - worker.ts: runs fenced assignments, reports, answers inventories;
 * - holder-sync.ts: every holder's copy converges (outbox, passed-on endings);
 * - reads.ts: reads, long-polls and cancels from any node;
 * - bulk-reads.ts: waits on many tasks in one request, from any node;
 * - retention.ts: finished records expire (swept in small steps), purges;
 * - schedules.ts: recurring schedules, kept on every member, fired by the leader;
 * - rpc-router.ts: requests from other members to the part that serves them.
 * Decisions live in src/core (admission, fencing, gather, hand-over,
 * Scheduler, tasks); these files move data, persist, and call the core.
 */
import { describeRequirement, someMemberCanRun } from '../core/labels.ts'
import { hasParents, isDelayed, isTerminal } from '../core/tasks.ts'
import type { TaskRecord, TaskStatus } from '../core/tasks.ts'
import { BulkReads } from './tasks/bulk-reads.ts'
import { Callbacks } from './tasks/callbacks.ts'
import type { DeliveryState } from '../core/callbacks.ts'
import type { BulkWaitResult } from './tasks/bulk-reads.ts'
import { TaskContext, TASK_PATH } from './tasks/context.ts'
import type { SubmitInput, TaskRuntimeInit } from './tasks/context.ts'
import { Dispatcher } from './tasks/dispatcher.ts'
import { HandOver } from './tasks/hand-over.ts'
import { HolderSync } from './tasks/holder-sync.ts'
import { Intake } from './tasks/intake.ts'
import { listCluster } from './tasks/listing.ts'
import type { ListFilter } from './tasks/listing.ts'
import type { PageKey } from '../core/listing.ts'
import type { Accepted } from './tasks/intake.ts'
import { Retention } from './tasks/retention.ts'
import type { PurgeFilter } from './tasks/retention.ts'
import { Reads } from './tasks/reads.ts'
import { routeRequest } from './tasks/rpc-router.ts'
import { retryTask } from './tasks/retry.ts'
import type { Retried } from './tasks/retry.ts'
import { Worker } from './tasks/worker.ts'
import { TypeLimits } from './tasks/type-limits.ts'
import { Schedules } from './tasks/schedules.ts'
import type { TypeRow } from './tasks/type-limits.ts'
import type { TypeLimit } from '../core/type-limits.ts'

export type { Accepted, BulkWaitResult, PurgeFilter, Retried, SubmitInput, TaskRuntimeInit, TypeRow }

export class TaskRuntime {
  readonly #ctx: TaskContext
  readonly #roles: { intake: Intake, handOver: HandOver, reads: Reads, dispatcher: Dispatcher, worker: Worker, holders: HolderSync, retention: Retention, limits: TypeLimits, schedules: Schedules, callbacks: Callbacks }
  readonly #bulk: BulkReads
  /** Where the endings this node may not have passed on before it (re)started begin. */
  readonly #startSeq: number
  #stopTimer: (() => void) | undefined

  constructor (init: TaskRuntimeInit) {
    const ctx = new TaskContext(init)
    this.#roles = {
      intake: new Intake(ctx),
      handOver: new HandOver(ctx),
      reads: new Reads(ctx),
      dispatcher: new Dispatcher(ctx),
      worker: new Worker(ctx),
      holders: new HolderSync(ctx),
      retention: new Retention(ctx, init.retention),
      limits: new TypeLimits(ctx, init.typeLimits?.config ?? {}, init.typeLimits?.store),
      schedules: new Schedules(ctx, init.schedules, async inputs => await this.#roles.intake.submit(inputs)),
      callbacks: new Callbacks(ctx, init.callbacks)
    }
    ctx.roles = this.#roles
    this.#bulk = new BulkReads(ctx)
    this.#ctx = ctx
    this.#startSeq = Math.max(0, init.store.seq - 2_000)
  }

  start (): void {
    const { cluster, transport, store, clock } = this.#ctx
    const roles = this.#roles
    roles.handOver.restarted(store.unfinished().map(r => r.id))
    cluster.onEvent(e => {
      if (e.type === 'leader-changed') roles.dispatcher.onLeaderChanged()
      // Dead, or announced it left: the attempts it still had are lost at once (a drained node has none).
      if (e.type === 'member-status' && (e.to === 'dead' || e.to === 'left')) roles.dispatcher.onWorkerGone(e.id)
      // A new incarnation (a restart quicker than the failure detector) runs none of the old one's attempts.
      if (e.type === 'member-joined') roles.dispatcher.onWorkerGone(e.id)
      if ((e.type === 'member-status' && e.to === 'alive') || e.type === 'member-joined') roles.holders.unpark(e.id)
      // A member that (re)joins may have missed limit changes: the leader sends it every one.
      if (e.type === 'member-joined' && cluster.leader()?.id === this.#ctx.self) {
        roles.limits.sendTo(e.id)
        roles.schedules.sendTo(e.id)
      }
    })
    // Endings this node recorded just before it stopped may not have reached the other holders, nor had their deliveries recorded.
    const recent = store.endedSince(this.#startSeq, 2_000).records
    roles.holders.passOnEndings(recent)
    roles.callbacks.ended(recent)
    transport.onRequest(async (msg, from) => await routeRequest(this.#ctx, msg, from))
    this.#stopTimer = clock.every(TASK_PATH.tickMs, () => { this.#tick() })
    roles.dispatcher.onLeaderChanged()
    roles.retention.start()
  }

  /** The node drains: it accepts no submit and begins no attempt; attempts not begun go back to the leader. */
  beginDrain (): void {
    this.#ctx.draining = true
    this.#roles.worker.beginDrain()
  }

  /** Attempts held here and reports not yet delivered (0: drained). */
  get busy (): number {
    return this.#roles.worker.busy
  }

  async stop (): Promise<void> {
    this.#stopTimer?.()
    this.#roles.retention.stop()
    this.#roles.worker.stopAll()
    await this.#roles.holders.flush()
    this.#ctx.store.flushDeferred()
  }

  /** For heartbeats: attempts running here, and (as leader) tasks waiting. */
  /** What a submit's 202 says of a task it accepted (the origin holds a copy): `waiting` for its parents, `scheduled` while it waits for its runAt, else `queued`. */
  acceptedStatus (id: string): 'waiting' | 'scheduled' | 'queued' {
    const rec = this.#ctx.store.get(id)
    if (rec !== undefined && hasParents(rec)) return 'waiting'
    return rec !== undefined && isDelayed(rec) && rec.runAt! > this.#ctx.clock.now() ? 'scheduled' : 'queued'
  }

  load (): { running: number, queued: number } {
    return { running: this.#roles.worker.running, queued: this.#roles.dispatcher.waiting }
  }

  /** Task types run by live members (this node included). */
  clusterTypes (): Set<string> {
    return this.#roles.intake.clusterTypes()
  }

  /** Validates, stores durably on two nodes (when there are two), hands over to the leader; returns ids in order. */
  async submit (inputs: readonly SubmitInput[]): Promise<string[]> {
    return (await this.#roles.intake.submit(inputs)).ids
  }

  /** As submit, and how many durable copies were stored before it was accepted (the fewest of the tasks'). */
  async accept (inputs: readonly SubmitInput[]): Promise<Accepted> {
    return await this.#roles.intake.submit(inputs)
  }

  /** Forgets finished records (of `status`, when given) that ended before `before`, here and on every reachable member. */
  async purge (filter: PurgeFilter): Promise<{ purged: number, nodes: number, unreachable: number }> {
    return await this.#roles.retention.purgeEverywhere(filter)
  }

  /** The task's record from this node or any live node; waits up to waitMs for it to end. */
  async get (id: string, waitMs = 0, opts: { everywhere?: boolean } = {}): Promise<TaskRecord> {
    return await this.#roles.reads.get(id, waitMs, opts)
  }

  /**
   * Why a task not yet placed waits, when it is because of its required
   * labels: no live member that runs its type has them (as this node sees
   * the cluster). It waits until such a member is back. Undefined otherwise.
   */
  unplaceable (rec: TaskRecord): string | undefined {
    if (rec.require === undefined || isTerminal(rec.status) || rec.status === 'assigned' || rec.status === 'running') return undefined
    const able = this.#ctx.cluster.reachableMembers().filter(m => m.status !== 'draining')
    if (someMemberCanRun(able, rec.type, rec.require)) return undefined
    return `no live member that runs "${rec.type}" has the labels ${describeRequirement(rec.require)}: the task waits until one is back`
  }

  /** The deliveries of a task's endings to its callback and the webhooks (this node's, or a holder's). */
  async deliveries (rec: TaskRecord): Promise<DeliveryState[]> {
    return await this.#roles.callbacks.of(rec)
  }

  /** Waits up to waitMs for one of the tasks to end; answers with every one of them that has ended by then. */
  async waitAny (ids: readonly string[], waitMs: number): Promise<BulkWaitResult> {
    return await this.#bulk.waitAny(ids, waitMs)
  }

  /** Waits up to waitMs for all of the tasks to end. */
  async waitAll (ids: readonly string[], waitMs: number): Promise<BulkWaitResult> {
    return await this.#bulk.waitAll(ids, waitMs)
  }

  list (filter: { status?: TaskStatus, limit: number }): TaskRecord[] {
    return this.#roles.reads.list(filter)
  }

  /** One page of the cluster's tasks, newest submit first, after `before` (see tasks/listing.ts). */
  async listCluster (filter: ListFilter): Promise<{ tasks: TaskRecord[], next: PageKey | null, partial: boolean }> {
    return await listCluster(this.#ctx, filter)
  }

  async cancel (id: string): Promise<{ id: string, status: 'cancelled' | 'cancelling' }> {
    return await this.#roles.reads.cancel(id)
  }

  /** Retries a failed or cancelled task through the leader (same id; attempts continue; maxAttempts: its new total). */
  async retry (id: string, maxAttempts?: number): Promise<Retried> {
    return await retryTask(this.#ctx, await this.#roles.reads.get(id, 0, { everywhere: true }), maxAttempts)
  }

  /** Sets a task type's cluster-wide limit (no field: none) on every reachable member. */
  async setTypeLimit (type: string, limit: TypeLimit): Promise<{ type: string, maxConcurrent?: number, perSecond?: number, stored: number, members: number }> {
    const { setting, stored, members } = await this.#roles.limits.set(type, limit)
    return { type, ...(setting.maxConcurrent === undefined ? {} : { maxConcurrent: setting.maxConcurrent }), ...(setting.perSecond === undefined ? {} : { perSecond: setting.perSecond }), stored, members }
  }

  /** Recurring schedules: kept on every member, fired by the leader (see tasks/schedules.ts). */
  get schedules (): Schedules {
    return this.#roles.schedules
  }

  /** Each type's limit and queued, running and limited counts, from the leader. */
  async types (): Promise<TypeRow[]> {
    return await this.#roles.limits.rows()
  }

  #tick (): void {
    const { handOver, worker, dispatcher } = this.#roles
    handOver.forward()
    void worker.flushReports()
    dispatcher.tick()
    this.#roles.schedules.tick()
    this.#roles.callbacks.tick()
    // Non-terminal changes reach the disk here, at most one tick after they were applied.
    try {
      this.#ctx.store.flushDeferred()
    } catch (err) {
      this.#ctx.log.error({ err: (err as Error).message }, 'could not write task changes; retrying on the next tick')
    }
  }
}
