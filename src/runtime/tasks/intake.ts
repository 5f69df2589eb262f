/**
 * Intake, the origin's part: a submit is judged (src/core/admission.ts),
 * stored here and on a second live node (the leader first: that copy is
 * also the hand-over), and only then accepted. Idempotency keys resolve to
 * the first task stored under them, also while that one is being stored.
 */
import { trace } from '../../trace.ts'
import { newTaskId } from './task-ids.ts'
import { admit, plannedCopies, replicaTargets } from '../../core/admission.ts'
import { resolveRunAt } from '../../core/delay.ts'
import { describeRequirement, someMemberCanRun } from '../../core/labels.ts'
import { planBatch } from '../../core/dependencies.ts'
import type { ItemParents } from '../../core/dependencies.ts'
import { copiesOf, isTerminal, specOf } from '../../core/tasks.ts'
import type { TaskRecord, TaskSpec } from '../../core/tasks.ts'
import { DrainingError, InvalidDependenciesError, InvalidRequestError, TaskExpiredError, TaskNotFoundError, UnknownParentError, PayloadTooLargeError, QueueFullError, RequirementUnmetError, UnavailableError, UnknownTaskTypeError } from '../../errors.ts'
import { errorOfReply } from '../../protocol/rpc-errors.ts'
import type { RpcReply } from '../../protocol/rpc.ts'
import { MAX_DELAY_MS } from '../../protocol/constants.ts'
import { TASK_PATH } from './context.ts'
import type { SubmitInput, TaskContext } from './context.ts'

/** What a submit stored: the ids in order, and the fewest durable copies any of them was stored in before it was accepted. */
export interface Accepted { ids: string[], copies: number }

/** How many secured copies an intake remembers (see Intake.#secure). */
const SECURED_MEMORY = 10_000

export class Intake {
  readonly #ctx: TaskContext
  /** Idempotency keys whose first task is being stored right now. */
  readonly #pendingKeys = new Map<string, Promise<string>>()

  constructor (ctx: TaskContext) {
    this.#ctx = ctx
  }

  /**
   * Whether another node's copy of these tasks can be stored here now, or
   * why not: a key is answered (with the id of the task stored here under
   * it) only when that task is accepted, never with an id that may end up
   * stored nowhere. Not while this node is still storing the first task of
   * the key (its submit may yet fail and delete it), nor when the task held
   * under it is a copy nobody else may know of (see #unconfirmed). The
   * answer is at once, never after a wait: the asking origin then stores its
   * own task on another node (two accepted tasks may then share the key,
   * and both run), and no copy arrives here after the origin gave up on it.
   * Check and store in the same turn.
   */
  keyConflict (specs: readonly TaskSpec[]): string | null {
    const { store } = this.#ctx
    for (const s of specs) {
      if (s.idempotencyKey === null) continue
      if (this.#pendingKeys.has(s.idempotencyKey)) return `idempotency key "${s.idempotencyKey}" names a task this node is still storing`
      const held = store.byIdempotencyKey(s.idempotencyKey)
      if (held !== undefined && held.id !== s.id && this.#unconfirmed(held)) return `idempotency key "${s.idempotencyKey}" names a task held here that may not be accepted yet`
    }
    return null
  }

  /**
   * A copy held here of a task another node originated, that has not begun
   * and that no leader here tracks: its origin may have refused it after
   * this node stored it (the reply was lost), and then no other node knows
   * of it and no leader will run it.
   */
  #unconfirmed (rec: TaskRecord): boolean {
    const { self, roles } = this.#ctx
    return rec.origin !== self && (rec.status === 'queued' || rec.status === 'scheduled' || rec.status === 'waiting') && rec.attempts === 0 && !this.#secured.has(rec.id) && !roles.dispatcher.tracks(rec.id)
  }

  /** Copies made durable by #secure (bounded: an id forgotten here is only secured again). */
  readonly #secured = new Set<string>()

  /**
   * Stores these copies (held here, see #unconfirmed) on one more live node,
   * and offers them to the leader from here: a client's resubmitted key is
   * answered with them only then.
   */
  async #secure (recs: readonly TaskRecord[]): Promise<void> {
    if (recs.length === 0) return
    const { cluster, store, transport, roles, log, self } = this.#ctx
    const leaderId = cluster.leader()?.id ?? null
    const targets = replicaTargets(cluster.healthyMembers(), self, leaderId, TASK_PATH.maxStoreTargets)
    const ids = recs.map(r => r.id)
    for (const target of targets) {
      // Each record's holders as stored now (another request may be securing it too), and this target:
      // a target that failed may still have stored them, so it stays a holder (as in #storeOnAnother).
      const specs: TaskSpec[] = []
      for (const id of ids) {
        const rec = store.get(id)
        // Begun or ended meanwhile: a leader has it, nothing left to secure.
        if (rec === undefined || !this.#unconfirmed(rec)) continue
        const replicas = target === rec.origin || rec.replicas.includes(target) ? rec.replicas : [...rec.replicas, target]
        if (replicas !== rec.replicas) store.setReplicas([id], replicas)
        specs.push({ ...specOf(rec), replicas })
      }
      if (specs.length === 0) return
      try {
        const reply = await transport.request(target, { kind: target === leaderId ? 'submit' : 'replicate', tasks: specs }, TASK_PATH.rpcTimeoutMs)
        if (reply.kind === 'stored' && reply.canonical.every(([id, c]) => id === c)) {
          for (const id of ids) this.#secured.add(id)
          for (const id of this.#secured) {
            if (this.#secured.size <= SECURED_MEMORY) break
            this.#secured.delete(id)
          }
          roles.handOver.offer(ids)
          // Ended while the copy travelled: the new holder hears the ending too.
          roles.holders.passOnEndings(this.#endedOf(specs))
          return
        }
      } catch (err) {
        log.warn({ target, err: (err as Error).message }, 'could not store a copy answered by idempotency key on another node; trying another')
      }
    }
    throw new UnavailableError('the task this idempotency key names is held here only, and no other live node could store a second copy; retry')
  }

  /** Task types run by reachable members (this node included). */
  clusterTypes (): Set<string> {
    const types = new Set(this.#ctx.init.pool.types())
    for (const m of this.#ctx.cluster.reachableMembers()) for (const t of m.types) types.add(t)
    return types
  }

  /** Validates, stores durably on two nodes (when there are two), hands over to the leader; returns ids in order. */
  async submit (inputs: readonly SubmitInput[]): Promise<Accepted> {
    const { init, store, clock, cluster, roles } = this.#ctx
    // A node about to leave keeps no new copy: the task would be left with one.
    if (this.#ctx.draining) throw new DrainingError()
    const leader = cluster.leader()
    const leaderWaiting = leader === null
      ? 0
      : leader.id === this.#ctx.self ? roles.dispatcher.waiting : (cluster.reachableMembers().find(m => m.id === leader.id)?.queued ?? 0)
    const verdict = admit({
      types: this.clusterTypes(),
      tasks: inputs.map(t => ({ type: t.type, payloadBytes: Buffer.byteLength(JSON.stringify(t.payload ?? null)) })),
      maxPayloadBytes: init.maxPayloadBytes,
      leaderWaiting,
      maxQueuedTasks: init.scheduler.maxQueuedTasks,
      heldForLeader: roles.handOver.waiting,
      maxHeldForLeader: init.maxQueuedTasksPerNode ?? Infinity
    })
    if (!verdict.ok) {
      switch (verdict.reason) {
        case 'unknown-type': throw new UnknownTaskTypeError(verdict.type, verdict.known)
        case 'payload-too-large': throw new PayloadTooLargeError(inputs.length > 1 ? `tasks[${verdict.index}].payload` : 'payload', verdict.bytes, verdict.limit)
        case 'queue-full': throw new QueueFullError(verdict.limit, verdict.scope)
      }
    }

    // Required labels: some live member that runs the type must have them now (one that dies later leaves the task waiting for it).
    const able = cluster.reachableMembers().filter(m => m.status !== 'draining')
    for (const [i, t] of inputs.entries()) {
      if (t.require !== undefined && !someMemberCanRun(able, t.type, t.require)) throw new RequirementUnmetError(inputs.length > 1 ? `tasks[${i}].require` : 'require', t.type, describeRequirement(t.require))
    }
    const targets = replicaTargets(cluster.healthyMembers(), this.#ctx.self, leader?.id ?? null, TASK_PATH.maxStoreTargets)
    const minCopies = init.minCopies ?? 1
    const planned = plannedCopies(targets.length, minCopies)
    const ids: string[] = []
    const fresh: TaskSpec[] = []
    /** Where each fresh task is in `ids` (its input's index). */
    const freshAt: number[] = []
    const orphans: TaskRecord[] = []
    const pending: Array<[number, Promise<string>]> = []
    const now = clock.now()
    const runAts = inputs.map((t, i) => {
      const v = resolveRunAt(t, now, MAX_DELAY_MS)
      if (!v.ok) throw new InvalidRequestError(inputs.length > 1 ? `tasks[${i}]: ${v.message}` : v.message)
      return v.runAt
    })
    const parents = await this.#parentsOf(inputs)
    let copies: number = planned ?? 1
    for (const [i, t] of inputs.entries()) {
      const inFlight = t.idempotencyKey === undefined ? undefined : this.#pendingKeys.get(t.idempotencyKey)
      if (inFlight !== undefined) { pending.push([ids.length, inFlight]); ids.push(''); continue }
      const held = t.idempotencyKey === undefined ? undefined : store.byIdempotencyKey(t.idempotencyKey)
      if (held !== undefined) {
        if (this.#unconfirmed(held) && !orphans.some(o => o.id === held.id)) orphans.push(held)
        ids.push(held.id)
        continue
      }
      const sameBatch = t.idempotencyKey === undefined ? undefined : fresh.find(f => f.idempotencyKey === t.idempotencyKey)
      if (sameBatch !== undefined) { ids.push(sameBatch.id); continue }
      const spec: TaskSpec = {
        id: (init.newId ?? newTaskId)(),
        type: t.type,
        payload: t.payload ?? null,
        priority: t.priority ?? 0,
        timeoutMs: t.timeoutMs ?? init.defaultTimeoutMs,
        maxAttempts: t.maxAttempts ?? init.defaultMaxAttempts,
        idempotencyKey: t.idempotencyKey ?? null,
        createdAt: now,
        origin: this.#ctx.self,
        replicas: [],
        copies: planned ?? 1,
        ...(t.retainMs === undefined ? {} : { retainMs: t.retainMs }),
        ...(runAts[i] === undefined ? {} : { runAt: runAts[i] }),
        ...(t.schedule === undefined ? {} : { schedule: t.schedule }),
        ...(t.require === undefined ? {} : { require: t.require }),
        ...(t.callback === undefined ? {} : { callback: t.callback })
      }
      fresh.push(spec)
      freshAt.push(ids.length)
      ids.push(spec.id)
    }
    // Parents named by a ref of this batch get that item's id (the ids of new tasks are known before they are stored).
    for (const [k, spec] of fresh.entries()) {
      const i = freshAt[k]!
      const p = parents[i]!
      if (p.local.length + p.ids.length === 0) continue
      const local = p.local.map(j => ids[j]!)
      if (local.includes('')) throw new UnavailableError(`tasks[${i}] depends on a task whose idempotency key is being stored by another submit; retry`)
      spec.dependsOn = [...new Set([...local, ...p.ids])]
    }
    if (fresh.length > 0 && planned === null) {
      throw new UnavailableError(`minCopies is ${minCopies} and no other live member can store a second copy; nothing was accepted, retry when another node is up`)
    }
    // A key being stored by a concurrent submit resolves to that submit's id, once it is durable.
    const mine = new Map<string, PromiseWithResolvers<string>>()
    for (const spec of fresh) {
      if (spec.idempotencyKey === null) continue
      const d = Promise.withResolvers<string>()
      d.promise.catch(() => {})
      mine.set(spec.idempotencyKey, d)
      this.#pendingKeys.set(spec.idempotencyKey, d.promise)
    }
    try {
      // Tasks named by a resubmitted key, held here as a copy nobody else may know of: made durable first.
      await this.#secure(orphans)
      const canonical = fresh.length === 0 ? new Map<string, string>() : await this.#storeDurably(fresh, targets, leader?.id ?? null)
      for (const spec of fresh) if (spec.idempotencyKey !== null) mine.get(spec.idempotencyKey)?.resolve(canonical.get(spec.id) ?? spec.id)
      const out = ids.map(id => canonical.get(id) ?? id)
      for (const [i, p] of pending) out[i] = await p
      // Every answered id held here says how many copies it was stored in.
      for (const id of new Set(out)) {
        const held = store.get(id)
        if (held !== undefined) copies = Math.min(copies, copiesOf(held))
      }
      return { ids: out, copies }
    } catch (err) {
      for (const d of mine.values()) d.reject(err)
      throw err
    } finally {
      for (const key of mine.keys()) this.#pendingKeys.delete(key)
    }
  }

  /**
   * Each input's parents (src/core/dependencies.ts planBatch): refs of the
   * batch, and ids of existing tasks, each found on some live node (a task
   * that already failed is a parent all the same: its child fails at once).
   */
  async #parentsOf (inputs: readonly SubmitInput[]): Promise<ItemParents[]> {
    const where = (i: number): string => inputs.length > 1 ? `tasks[${i}]: ` : ''
    const plan = planBatch(inputs)
    if (!plan.ok) throw new InvalidDependenciesError(plan.message)
    const external = new Map<string, number>()
    plan.items.forEach((p, i) => { for (const id of p.ids) if (!external.has(id)) external.set(id, i) })
    await Promise.all([...external].map(async ([id, i]) => {
      if (this.#ctx.store.get(id) !== undefined) return
      try {
        await this.#ctx.roles.reads.get(id, 0)
      } catch (err) {
        if (err instanceof TaskNotFoundError || err instanceof TaskExpiredError) throw new UnknownParentError(where(i), id, err instanceof TaskExpiredError)
        throw err
      }
    }))
    return plan.items
  }

  async #storeDurably (specs: TaskSpec[], targets: string[], leaderId: string | null): Promise<Map<string, string>> {
    const { store, roles } = this.#ctx
    if (targets.length === 0) {
      const canonical = store.insert(specs)
      roles.handOver.offer(specs.map(s => s.id))
      return canonical
    }
    const ids = specs.map(s => s.id)
    // Until a second node has them, these records are not accepted: never handed over, offered or run.
    roles.handOver.beginStoring(ids)
    try {
      return await this.#storeOnAnother(specs, targets, leaderId)
    } finally {
      roles.handOver.endStoring(ids)
      // Handed over while still being stored: they can go now, not on the next tick.
      roles.handOver.forward()
    }
  }

  /** The records of these tasks held here that have ended. */
  #endedOf (specs: readonly TaskSpec[]): TaskRecord[] {
    return specs.map(s => this.#ctx.store.get(s.id)).filter((r): r is TaskRecord => r !== undefined && isTerminal(r.status))
  }

  async #storeOnAnother (specs: TaskSpec[], targets: string[], leaderId: string | null): Promise<Map<string, string>> {
    const { store, transport, roles, log, init, clock } = this.#ctx
    const ids = specs.map(s => s.id)
    // A target that failed may still have stored them (a lost reply): it stays a holder, so that its copy
    // hears how they end instead of lingering unfinished.
    const tried: string[] = []
    for (const target of targets) {
      const kind = target === leaderId ? 'submit' : 'replicate'
      tried.push(target)
      const withReplica = specs.map(s => ({ ...s, replicas: [...tried] }))
      let sent: Promise<RpcReply>
      if (tried.length === 1) {
        // The second copy travels while this node stores its own: the two fsyncs overlap instead of
        // following each other. The insert waits one timer turn, so that the frame is on the socket
        // before the insert blocks the loop. A message about the task can come first (the other node,
        // as leader, may assign it at once): a worker runs it from the assignment, and an ending for a
        // copy not stored yet is kept for it (holder-sync.ts). The submit is accepted only once both
        // copies are on disk, as before. (An insert that fails here leaves the other node's copy as a
        // lost reply would: see below.)
        sent = transport.request(target, { kind, tasks: withReplica }, TASK_PATH.rpcTimeoutMs)
        sent.catch(() => {})
        await new Promise<void>(resolve => { clock.after(0, resolve) })
        store.insert(withReplica)
      } else {
        store.setReplicas(ids, tried)
        sent = transport.request(target, { kind, tasks: withReplica }, TASK_PATH.rpcTimeoutMs)
      }
      trace('intake.local-stored', ids[0])
      try {
        const reply = await sent
        trace('intake.remote-stored', ids[0])
        if (reply.kind === 'error') {
          const err = errorOfReply(reply, init.scheduler.maxQueuedTasks)
          // A full queue is the cluster's answer, not this target's: nothing is accepted.
          if (err instanceof QueueFullError) store.delete(ids)
          throw err
        }
        if (reply.kind !== 'stored') throw new Error(`unexpected reply ${reply.kind}`)
        const canonical = new Map(reply.canonical)
        const duplicates = specs.filter(s => canonical.get(s.id) !== s.id).map(s => s.id)
        if (duplicates.length > 0) store.delete(duplicates)
        if (kind === 'replicate') roles.handOver.offer(specs.filter(s => canonical.get(s.id) === s.id).map(s => s.id))
        // An earlier target that seemed to fail had them after all, and they have already ended: tell every holder.
        if (tried.length > 1) roles.holders.passOnEndings(this.#endedOf(specs))
        return canonical
      } catch (err) {
        if (err instanceof QueueFullError) throw err
        log.warn({ target, kind, err: (err as Error).message }, 'could not store tasks on a second node; trying another')
      }
    }
    // A target whose reply was lost may have stored them all the same: if they have begun to run, it did.
    // (A delayed task is stored as scheduled, a task with parents as waiting: neither has begun.)
    if (specs.some(s => { const r = store.get(s.id); return r !== undefined && ((r.status !== 'queued' && r.status !== 'scheduled' && r.status !== 'waiting') || r.attempts > 0) })) {
      roles.handOver.offer(ids)
      roles.holders.passOnEndings(this.#endedOf(specs))
      return new Map(specs.map(s => [s.id, s.id]))
    }
    store.delete(ids)
    throw new UnavailableError('no other live node could store the task durably; nothing was accepted, retry')
  }
}
