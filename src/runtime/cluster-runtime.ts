/**
 * The driver of the membership core: owns the timers and the clock, feeds
 * heartbeats, disconnects and ticks into ClusterCore, and carries out what it
 * decides (publish, keep connections, persist the term, log).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { ClusterCore } from '../core/cluster-core.ts'
import { TermGrants } from '../core/grants.ts'
import type { Grant } from '../core/grants.ts'
import type { ClusterCoreConfig, ClusterSnapshot } from '../core/cluster-core.ts'
import type { CoreEvent, LeaderView, MemberInfo } from '../core/types.ts'
import type { Clock } from './clock.ts'
import { machineLoad } from './load.ts'
import { isHealthy, isReachable } from './membership-port.ts'
import type { MembershipPort, TaskMember } from './membership-port.ts'
import { tickIntervalMs } from '../timings.ts'
import { hintConfirmMs } from '../core/membership.ts'
import { SYNC_TIMEOUT_MS } from '../protocol/constants.ts'
import type { ClusterTransport } from './transport.ts'
import { FormationSync } from './formation-sync.ts'

export interface ClusterRuntimeInit {
  name: string
  http: string
  capacity: number
  types: string[]
  /** This node's labels from its config (gossiped in its heartbeats; absent or empty: none). */
  labels?: Record<string, string>
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

/**
 * Where a node keeps the highest term it knew and its last grant, so that a
 * restarted node never goes back in terms nor grants a term twice.
 *
 * The writes are synchronous and durable on return (raft's "persist, then
 * send"): when `writeTermSync` or `writeGrantSync` returns, the value survives
 * a crash of the process or the machine; when it throws, the old value is
 * still the durable one. Nothing is ever pending, so a crash loses nothing a
 * caller was told was written (the simulator's disk models exactly this).
 */
export interface TermStore {
  read (): Promise<number>
  /** The last term this node granted, and to whom (see TermGrants). */
  readGrant (): Promise<Grant | null>
  /** Durable on return; throws when the disk refuses (the old term stays). */
  writeTermSync (term: number): void
  /** Durable on return; throws when the disk refuses (the old grant stays). */
  writeGrantSync (grant: Grant): void
}

/** The term in `<dataDir>/term` and the grant in `<dataDir>/grant`, each replaced atomically and fsynced. */
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
    async readGrant () {
      try {
        const g = JSON.parse(await readFile(join(dataDir, 'grant'), 'utf8')) as Partial<Grant>
        return Number.isSafeInteger(g.term) && typeof g.leader === 'string' ? { term: g.term!, leader: g.leader } : null
      } catch {
        return null
      }
    },
    writeTermSync (term) {
      replaceFileSync(dataDir, 'term', String(term))
    },
    writeGrantSync (grant) {
      replaceFileSync(dataDir, 'grant', JSON.stringify(grant))
    }
  }
}

/**
 * Replaces `dir/name` with `text` so that a crash leaves either the old or
 * the new content, and the new one survives once this returns: the data is
 * written to a temporary file and fsynced, renamed over the old one, and the
 * folder fsynced (the rename is durable only once the folder is).
 * Synchronous on purpose: an fsync costs a fraction of a millisecond on an
 * SSD, terms and grants change only at leader changes, and a synchronous
 * write lets the runtime persist inside the very call that decided, before
 * any listener or message can see the value (no window to gate).
 */
function replaceFileSync (dir: string, name: string, text: string): void {
  mkdirSync(dir, { recursive: true })
  const tmp = join(dir, `${name}.tmp`)
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeFileSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, join(dir, name))
  const dirFd = openSync(dir, 'r')
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
}

/**
 * The term a node adopted could not be made durable. The runtime throws it
 * out of the call that adopted the term, before any listener or heartbeat
 * sees it; uncaught (as it is in a node) it stops the process, as raft
 * panics when its storage fails: a node must not go on with a term a
 * restart would forget.
 */
export class TermNotDurableError extends Error {
  override name = 'TermNotDurableError'
  constructor (term: number, cause: unknown) {
    super(`could not persist term ${term}: ${(cause as Error).message}`, { cause })
  }
}

export class ClusterRuntime implements MembershipPort {
  readonly #core: ClusterCore
  readonly #init: ClusterRuntimeInit
  #stopTimer: (() => void) | undefined
  /** The term on disk (durable). */
  #savedTerm: number
  readonly #listeners = new Set<(e: CoreEvent) => void>()

  readonly #grants: TermGrants
  /** The grant on disk (durable). */
  #savedGrant: Grant | null

  constructor (init: ClusterRuntimeInit, initialTerm: number, initialGrant: Grant | null = null) {
    this.#init = init
    this.#savedTerm = initialTerm
    this.#grants = new TermGrants(initialGrant)
    this.#savedGrant = initialGrant
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
      this.#formation?.heard(hb.id)
      this.#apply(this.#core.onHeartbeat(hb, clock.now()))
    })
    transport.onPeerDisconnected(id => {
      const events = this.#core.onPeerDisconnected(id, clock.now())
      this.#apply(events)
      // A member's connection closed: probe it directly (a refused dial confirms a crash at once).
      if (events.length > 0) this.#probe(id)
    })
    const members = transport.membership
    if (members !== undefined) {
      members.onMembersRequest(hb => {
        this.#formation?.heard(hb.id)
        this.#apply(this.#core.onHeartbeat(hb, clock.now(), true))
        return this.#core.syncView(clock.now()).filter(m => m.id !== hb.id)
      })
      const formation = this.#formation = new FormationSync(members, clock, SYNC_TIMEOUT_MS, {
        self: () => this.#core.syncView(clock.now())[0]!,
        apply: (view, from, ms) => {
          // The answer counts for the join window before the sync's verdict is taken.
          this.#contact()
          this.#apply(this.#core.onSync(view, clock.now()))
          this.#init.log.info({ from, members: view.length, ms }, 'membership synced')
        },
        expectedLeader: () => this.#core.expectedLeader(),
        hasLeader: () => this.#core.leader() !== null,
        failed: (from, err) => { this.#init.log.debug({ peer: from, err: err.message }, 'member sync failed; trying the next peer') }
      })
      members.onPeerConnected(() => {
        this.#contact()
        formation.pump()
      })
      members.onPeerDiscovered(() => { this.#contact() })
    }
    // Tick faster than heartbeats so that failures are noticed close to their deadline.
    const tickMs = tickIntervalMs(this.#init.timings.heartbeatIntervalMs)
    this.#stopTimer = clock.every(tickMs, () => { this.#tick() })
    this.#tick()
  }

  #probe (id: string): void {
    const members = this.#init.transport.membership
    if (members === undefined) return
    members.probe(id, hintConfirmMs(this.#init.timings)).then(result => {
      if (result !== 'timeout') this.#apply(this.#core.onProbeResult(id, result === 'answered', this.#init.clock.now()))
    }, () => {})
  }

  /** The joining state syncs (formation-sync.ts); undefined without a membership transport. */
  #formation: FormationSync | undefined

  /** Subscribes to the core's events (membership and leader changes). */
  onEvent (listener: (e: CoreEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Grants `term` to `leader` (see TermGrants). A grant is on disk (fsynced)
   * before this returns true, so the caller may reveal it at once. A grant the disk refused is answered
   * as a refusal: nothing reveals it, the leader claims a newer term, and the
   * next request retries the write (the grant held in memory only makes this
   * node stricter, never laxer, until then).
   */
  grant (term: number, leader: string): boolean {
    const v = this.#grants.grant(term, leader)
    if (!v.granted) return false
    const g = this.#grants.current!
    if (this.#savedGrant === null || this.#savedGrant.term !== g.term || this.#savedGrant.leader !== g.leader) {
      try {
        this.#init.terms.writeGrantSync(g)
        this.#savedGrant = { ...g }
      } catch (err) {
        this.#init.log.error({ err: (err as Error).message, term, leader }, 'could not persist term grant; refusing it')
        return false
      }
    }
    return true
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

  /**
   * This node begins to drain: it stops leading (if it did) and tells the
   * others at once, with a heartbeat sent now rather than at the next period.
   */
  beginDrain (): void {
    const now = this.#init.clock.now()
    this.#apply(this.#core.beginDrain(now))
    void this.#publishNow(now)
  }

  /**
   * This node leaves: a heartbeat saying `left` goes out now, so the others
   * count it gone without waiting for the failure detector. Resolves once
   * the heartbeat is handed to the transport (or could not be).
   */
  async announceLeft (): Promise<void> {
    const now = this.#init.clock.now()
    this.#apply(this.#core.leave(now))
    await this.#publishNow(now)
  }

  /** Stops the timers. Terms and grants are written synchronously, so nothing is left to wait for. */
  async stop (): Promise<void> {
    this.#stopTimer?.()
    this.#stopTimer = undefined
  }

  /**
   * This node has heard of a member (an mDNS answer, a connection) before
   * its first state sync: its join window waits for the sync (see
   * join-window.ts). Only a transport that syncs says so.
   */
  #contact (): void {
    const formation = this.#formation
    if (formation?.active === true) this.#apply(this.#core.onContact(this.#init.clock.now(), formation.unanswered()))
  }

  #tick (): void {
    const now = this.#init.clock.now()
    // A connection that opened while this process was starved counts before the tick that could end the window.
    if (this.#formation?.active === true && (this.#init.transport.membership?.connectedPeers().length ?? 0) > 0) {
      this.#contact()
      this.#formation.pump()
    }
    this.#apply(this.#core.onTick(now))
    if (this.#core.heartbeatDue(now)) void this.#publishNow(now)
  }

  async #publishNow (now: number): Promise<void> {
    this.#core.setLocalInfo(this.#localInfo())
    this.#version++
    await this.#init.transport.publishHeartbeat(this.#core.nextHeartbeat(now)).catch((err: Error) => {
      this.#init.log.warn({ err: err.message }, 'heartbeat publish failed')
    })
  }

  #localInfo (): MemberInfo {
    return {
      http: this.#init.http,
      capacity: this.#init.capacity,
      ...this.#init.load(),
      load: (this.#init.machineLoad ?? machineLoad)(),
      types: this.#init.types,
      ...(this.#init.labels === undefined || Object.keys(this.#init.labels).length === 0 ? {} : { labels: this.#init.labels })
    }
  }

  #apply (events: CoreEvent[]): void {
    this.#version++
    // Persist, then send: a term the core just adopted is on disk before any
    // listener (a new leader's inventory requests carry it) or heartbeat sees it.
    this.#persistTerm()
    const log = this.#init.log
    for (const e of events) {
      switch (e.type) {
        case 'member-joined':
          this.#init.transport.keepConnected(e.id)
          log.info({ member: e.name, id: e.id, incarnation: e.incarnation }, 'member joined')
          break
        case 'member-status':
          log[e.to === 'alive' || e.to === 'draining' || e.to === 'left' ? 'info' : 'warn']({ member: e.name, id: e.id, from: e.from, to: e.to, reason: e.reason }, `member ${e.to}`)
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
  }

  /**
   * Keeps the highest term on disk, so a restarted node never goes back in
   * terms. Called right after every core step (the only calls that change the
   * term), before anything else runs; throws TermNotDurableError when the
   * disk refuses, and every later step tries again (and throws again).
   */
  #persistTerm (): void {
    const term = this.#core.term
    if (term <= this.#savedTerm) return
    try {
      this.#init.terms.writeTermSync(term)
    } catch (err) {
      this.#init.log.fatal({ err: (err as Error).message, term }, 'could not persist term; stopping')
      throw new TermNotDurableError(term, err)
    }
    this.#savedTerm = term
  }
}
