/**
 * Per-type limits, the runtime's part: the config's limits (version 0) and
 * those set at runtime, stored on every member (src/store/type-limit-store.ts)
 * so that whichever node leads next enforces the newest; the leader's
 * Scheduler enforces them (src/core/type-limits.ts). A setting goes to every
 * reachable member, and the leader sends all of them to a member that joins
 * (one that was down when a limit changed catches up).
 */
import { newerLimit } from '../../core/type-limits.ts'
import type { TypeLimit, VersionedLimit } from '../../core/type-limits.ts'
import { UnavailableError } from '../../errors.ts'
import type { RpcReply } from '../../protocol/rpc.ts'
import type { TypeLimitStore } from '../../store/type-limit-store.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export type LimitSetting = { type: string } & VersionedLimit
export interface TypeRow extends TypeLimit { type: string, queued: number, running: number, limited: number }

export class TypeLimits {
  readonly #ctx: TaskContext
  readonly #config: Readonly<Record<string, TypeLimit>>
  readonly #store: TypeLimitStore | undefined

  constructor (ctx: TaskContext, config: Readonly<Record<string, TypeLimit>>, store: TypeLimitStore | undefined) {
    this.#ctx = ctx
    this.#config = config
    this.#store = store
  }

  /** Every type's limit in force: the newest setting, the config's when none was made at runtime. */
  current (): Map<string, VersionedLimit> {
    const out = new Map<string, VersionedLimit>()
    for (const [type, l] of Object.entries(this.#config)) out.set(type, { ...l, version: 0, by: '' })
    for (const [type, l] of this.#store?.all() ?? []) {
      const c = out.get(type)
      if (c === undefined || newerLimit(l, c)) out.set(type, l)
    }
    return out
  }

  /** Settings from another member (or this one): the newer ones are stored, and enforced if this node leads. */
  take (settings: readonly LimitSetting[]): void {
    const changed = new Set(this.#store?.put(settings) ?? [])
    if (changed.size === 0) return
    const current = this.current()
    for (const type of changed) this.#ctx.roles.dispatcher.applyLimit(type, current.get(type) ?? {})
    this.#ctx.log.info({ types: [...changed] }, 'task type limits changed')
  }

  /** Sets a type's limit (no field: none) on every reachable member; answers with how many stored it. */
  async set (type: string, limit: TypeLimit): Promise<{ setting: LimitSetting, stored: number, members: number }> {
    const { cluster, clock, transport, self } = this.#ctx
    if (this.#store === undefined) throw new UnavailableError('this node keeps no type limits')
    const held = this.current().get(type)
    // Later than any setting held, on this node's clock (a clock behind another's still moves the version on).
    const setting: LimitSetting = { type, ...limit, version: Math.max(clock.now(), (held?.version ?? 0) + 1), by: self }
    this.take([setting])
    const others = cluster.reachableMembers().filter(m => m.id !== self)
    const replies = await Promise.allSettled(others.map(async m => await transport.request(m.id, { kind: 'limits', limits: [setting] }, TASK_PATH.rpcTimeoutMs)))
    const stored = 1 + replies.filter(r => r.status === 'fulfilled' && r.value.kind === 'ok').length
    return { setting, stored, members: others.length + 1 }
  }

  /** As leader: a member joined (or restarted): it gets every runtime setting, and keeps the newer. */
  sendTo (member: string): void {
    const settings = [...(this.#store?.all() ?? [])].map(([type, l]) => ({ type, ...l }))
    if (settings.length === 0 || member === this.#ctx.self) return
    void this.#ctx.transport.request(member, { kind: 'limits', limits: settings }, TASK_PATH.rpcTimeoutMs).catch((err: Error) => {
      this.#ctx.log.warn({ to: member, err: err.message }, 'type limits not delivered to a joining member')
    })
  }

  /** Each type's limit and counts, from the leader. */
  async rows (): Promise<TypeRow[]> {
    const { cluster, transport, roles, self } = this.#ctx
    const leader = cluster.leader()
    if (leader === null) throw new UnavailableError('no leader to ask; retry')
    const reply: RpcReply = leader.id === self ? await roles.dispatcher.typeRows() : await transport.request(leader.id, { kind: 'types' }, TASK_PATH.rpcTimeoutMs)
    if (reply.kind !== 'types') throw new UnavailableError(`the leader could not answer: ${reply.kind === 'error' ? reply.message : reply.kind}; retry`)
    return reply.types
  }
}
