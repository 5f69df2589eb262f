/**
 * The driver of the membership core: owns the timers and the clock, feeds
 * heartbeats, disconnects and ticks into ClusterCore, and carries out what it
 * decides (publish, keep connections, persist the term, log).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { ClusterCore } from '../core/cluster-core.ts'
import { TermGrants } from '../core/grants.ts'
import type { Grant, GrantVerdict } from '../core/grants.ts'
import type { ClusterCoreConfig, ClusterSnapshot } from '../core/cluster-core.ts'
import type { CoreEvent, LeaderView, MemberInfo } from '../core/types.ts'
import type { Clock } from './clock.ts'
import { machineLoad } from './load.ts'
import { isHealthy, isReachable } from './membership-port.ts'
import type { MembershipPort, TaskMember } from './membership-port.ts'
import { tickIntervalMs } from '../config.ts'
import type { ClusterTransport } from './transport.ts'

export interface ClusterRuntimeInit {
  name: string
  http: string
  capacity: number
  types: string[]
  /** Tasks this node runs now, and (as leader) holds waiting. */
  load: () => { running: number, queued: number }
  /** Keeps the highest term across restarts (see fileTermStore). */
  terms: TermStore
  /** Failure detection, join window and quorum (see coreTimings in src/config.ts). */
  timings: ClusterCoreConfig
  transport: ClusterTransport
  clock: Clock
  log: Logger
  /** This machine's CPU and memory use, for heartbeats (default: the real machine's). */
  machineLoad?: () => { cpu: number, memory: number }
}

/** Where a node keeps the highest term it knew, so that a restarted node never goes back in terms. */
export interface TermStore {
  read (): Promise<number>
  save (term: number): Promise<void>
  /** The last term this node granted, and to whom (see TermGrants). */
  readGrant (): Promise<Grant | null>
  saveGrant (grant: Grant): Promise<void>
}

/** The term in `<dataDir>/term`, replaced atomically. */
export function fileTermStore (dataDir: string): TermStore {
  return {
    async read () {
      try {
        const n = Number.parseInt(await readFile(join(dataDir, 'term'), 'utf8'), 10)
        return Number.isSafeInteger(n) && n >= 0 ? n : 0
      } catch {
        return 0
      }
    },
    async save (term) {
      await replaceFile(dataDir, 'term', String(term))
    },
    async readGrant () {
      try {
        const g = JSON.parse(await readFile(join(dataDir, 'grant'), 'utf8')) as Partial<Grant>
        return Number.isSafeInteger(g.term) && typeof g.leader === 'string' ? { term: g.term!, leader: g.leader } : null
      } catch {
        return null
      }
    },
    async saveGrant (grant) {
      await replaceFile(dataDir, 'grant', JSON.stringify(grant))
    }
  }
}

async function replaceFile (dir: string, name: string, text: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, `${name}.tmp`), text)
  await rename(join(dir, `${name}.tmp`), join(dir, name))
}

export class ClusterRuntime implements MembershipPort {
  readonly #core: ClusterCore
  readonly #init: ClusterRuntimeInit
  #stopTimer: (() => void) | undefined
  #lastPublishMs = 0
  #savedTerm: number
  #saving: Promise<void> = Promise.resolve()
  readonly #listeners = new Set<(e: CoreEvent) => void>()

  readonly #grants: TermGrants
  #savingGrant: Promise<void> = Promise.resolve()

  constructor (init: ClusterRuntimeInit, initialTerm: number, initialGrant: Grant | null = null) {
    this.#init = init
    this.#savedTerm = initialTerm
    this.#grants = new TermGrants(initialGrant)
    this.#core = new ClusterCore({ id: init.transport.id, name: init.name, info: this.#localInfo() }, init.timings, init.clock.now(), initialTerm)
  }

  // ---- the membership port (see membership-port.ts) ----------------------

  get self (): string { return this.#core.id }
  leader (): LeaderView | null { return this.#core.leader() }
  isLeader (): boolean { return this.#core.isLeader() }
  term (): number { return this.#core.term }
  joining (): boolean { return this.#core.joining(this.#init.clock.now()) }

  reachableMembers (): readonly TaskMember[] {
    return this.#memberLists().reachable
  }

  healthyMembers (): readonly TaskMember[] {
    return this.#memberLists().healthy
  }

  /** Bumped on every step of the core: the member lists are rebuilt only after one. */
  #version = 0
  #lists: { version: number, reachable: TaskMember[], healthy: TaskMember[] } | null = null

  #memberLists (): { reachable: TaskMember[], healthy: TaskMember[] } {
    if (this.#lists?.version !== this.#version) {
      const members = this.snapshot().members
      this.#lists = { version: this.#version, reachable: members.filter(m => isReachable(m.status)), healthy: members.filter(m => isHealthy(m.status)) }
    }
    return this.#lists
  }

  start (): void {
    const { transport, clock } = this.#init
    transport.onHeartbeat(hb => {
      this.#apply(this.#core.onHeartbeat(hb, clock.now()))
    })
    transport.onPeerDisconnected(id => {
      this.#apply(this.#core.onPeerDisconnected(id, clock.now()))
    })
    // Tick faster than heartbeats so that failures are noticed close to their deadline.
    const tickMs = tickIntervalMs(this.#init.timings.heartbeatIntervalMs)
    this.#stopTimer = clock.every(tickMs, () => { this.#tick() })
    this.#tick()
  }

  /** Subscribes to the core's events (membership and leader changes). */
  onEvent (listener: (e: CoreEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Grants `term` to `leader` (see TermGrants). The verdict is final at once;
   * `durable` resolves once a grant is on disk, and a vote must wait for it.
   */
  grant (term: number, leader: string): { granted: boolean, verdict: GrantVerdict, durable: Promise<void> } {
    const v = this.#grants.grant(term, leader)
    if (!v.granted) return { granted: false, verdict: v, durable: Promise.resolve() }
    if (v.changed) {
      const g = { term, leader }
      this.#savingGrant = this.#savingGrant.then(async () => { await this.#init.terms.saveGrant(g) })
        .catch((err: Error) => { this.#init.log.error({ err: err.message }, 'could not persist term grant') })
    }
    return { granted: true, verdict: v, durable: this.#savingGrant }
  }

  /** This leader's term was granted to another: claim a newer one. */
  claimNewTerm (aboveTerm: number): void {
    this.#apply(this.#core.claimNewTerm(aboveTerm, this.#init.clock.now()))
  }

  /** Live members (this one included) a leader needs to dispatch; 0: none. */
  get quorum (): number { return this.#init.timings.quorum }
  get heartbeatIntervalMs (): number { return this.#init.timings.heartbeatIntervalMs }

  snapshot (): ClusterSnapshot {
    return this.#core.snapshot(this.#init.clock.now())
  }

  async stop (): Promise<void> {
    this.#stopTimer?.()
    this.#stopTimer = undefined
    await this.#saving
    await this.#savingGrant
  }

  #tick (): void {
    const now = this.#init.clock.now()
    this.#apply(this.#core.onTick(now))
    if (now - this.#lastPublishMs >= this.#init.timings.heartbeatIntervalMs) {
      this.#lastPublishMs = now
      this.#core.setLocalInfo(this.#localInfo())
      this.#version++
      this.#init.transport.publishHeartbeat(this.#core.nextHeartbeat(now)).catch((err: Error) => {
        this.#init.log.warn({ err: err.message }, 'heartbeat publish failed')
      })
    }
  }

  #localInfo (): MemberInfo {
    return {
      http: this.#init.http,
      capacity: this.#init.capacity,
      ...this.#init.load(),
      load: (this.#init.machineLoad ?? machineLoad)(),
      types: this.#init.types
    }
  }

  #apply (events: CoreEvent[]): void {
    this.#version++
    const log = this.#init.log
    for (const e of events) {
      switch (e.type) {
        case 'member-joined':
          this.#init.transport.keepConnected(e.id)
          log.info({ member: e.name, id: e.id, incarnation: e.incarnation }, 'member joined')
          break
        case 'member-status':
          log[e.to === 'alive' ? 'info' : 'warn']({ member: e.name, id: e.id, from: e.from, to: e.to, reason: e.reason }, `member ${e.to}`)
          break
        case 'member-removed':
          log.info({ member: e.name, id: e.id }, 'member forgotten')
          break
        case 'leader-changed':
          log.info({ leader: e.leader?.name ?? null, leaderId: e.leader?.id ?? null, term: e.leader?.term ?? null, self: e.leader?.id === this.#core.id }, e.leader === null ? 'no leader' : 'leader changed')
          break
        case 'reincarnated':
          log.warn({ incarnation: e.incarnation, reason: e.reason }, 'began a new incarnation')
          break
        case 'stall-detected':
          log.warn({ gapMs: e.gapMs }, 'this process was stalled')
          break
      }
      for (const l of this.#listeners) l(e)
    }
    this.#persistTerm()
  }

  /** Keeps the highest term on disk, so a restarted node never goes back in terms. */
  #persistTerm (): void {
    const term = this.#core.term
    if (term <= this.#savedTerm) return
    this.#savedTerm = term
    this.#saving = this.#saving.then(async () => { await this.#init.terms.save(term) }).catch((err: Error) => { this.#init.log.error({ err: err.message }, 'could not persist term') })
  }
}
