/**
 * The driver of the membership core: owns the timers and the clock, feeds
 * heartbeats, disconnects and ticks into ClusterCore, and carries out what it
 * decides (publish, keep connections, persist the term, log).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { ClusterCore } from '../core/cluster-core.ts'
import type { ClusterCoreConfig, ClusterSnapshot } from '../core/cluster-core.ts'
import type { CoreEvent, MemberInfo } from '../core/types.ts'
import type { Clock } from './clock.ts'
import { machineLoad } from './load.ts'
import type { ClusterTransport } from './transport.ts'

export interface ClusterRuntimeInit {
  name: string
  http: string
  capacity: number
  types: string[]
  /** Tasks this node runs now, and (as leader) holds waiting. */
  load: () => { running: number, queued: number }
  dataDir: string
  core: ClusterCoreConfig
  transport: ClusterTransport
  clock: Clock
  log: Logger
}

/** Reads the highest term this node knew before it stopped (0 when none). */
export async function readTerm (dataDir: string): Promise<number> {
  try {
    const n = Number.parseInt(await readFile(join(dataDir, 'term'), 'utf8'), 10)
    return Number.isSafeInteger(n) && n >= 0 ? n : 0
  } catch {
    return 0
  }
}

export class ClusterRuntime {
  readonly core: ClusterCore
  readonly #init: ClusterRuntimeInit
  #timer: NodeJS.Timeout | undefined
  #lastPublishMs = 0
  #savedTerm: number
  #saving: Promise<void> = Promise.resolve()
  readonly #listeners = new Set<(e: CoreEvent) => void>()

  constructor (init: ClusterRuntimeInit, initialTerm: number) {
    this.#init = init
    this.#savedTerm = initialTerm
    this.core = new ClusterCore({ id: init.transport.id, name: init.name, info: this.#localInfo() }, init.core, init.clock.now(), initialTerm)
  }

  start (): void {
    const { transport, clock } = this.#init
    transport.onHeartbeat(hb => {
      this.#apply(this.core.onHeartbeat(hb, clock.now()))
    })
    transport.onPeerDisconnected(id => {
      this.#apply(this.core.onPeerDisconnected(id, clock.now()))
    })
    // Tick faster than heartbeats so that failures are noticed close to their deadline.
    const tickMs = Math.max(10, Math.min(100, Math.floor(this.#init.core.heartbeatIntervalMs / 2)))
    this.#timer = setInterval(() => { this.#tick() }, tickMs)
    this.#tick()
  }

  /** Subscribes to the core's events (membership and leader changes). */
  onEvent (listener: (e: CoreEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  snapshot (): ClusterSnapshot {
    return this.core.snapshot(this.#init.clock.now())
  }

  async stop (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#saving
  }

  #tick (): void {
    const now = this.#init.clock.now()
    this.#apply(this.core.onTick(now))
    if (now - this.#lastPublishMs >= this.#init.core.heartbeatIntervalMs) {
      this.#lastPublishMs = now
      this.core.setLocalInfo(this.#localInfo())
      this.#init.transport.publishHeartbeat(this.core.nextHeartbeat(now)).catch((err: Error) => {
        this.#init.log.warn({ err: err.message }, 'heartbeat publish failed')
      })
    }
  }

  #localInfo (): MemberInfo {
    return {
      http: this.#init.http,
      capacity: this.#init.capacity,
      ...this.#init.load(),
      load: machineLoad(),
      types: this.#init.types
    }
  }

  #apply (events: CoreEvent[]): void {
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
          log.info({ leader: e.leader?.name ?? null, leaderId: e.leader?.id ?? null, term: e.leader?.term ?? null, self: e.leader?.id === this.core.id }, e.leader === null ? 'no leader' : 'leader changed')
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
    const term = this.core.term
    if (term <= this.#savedTerm) return
    this.#savedTerm = term
    const dir = this.#init.dataDir
    this.#saving = this.#saving.then(async () => {
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, 'term.tmp'), String(term))
      await rename(join(dir, 'term.tmp'), join(dir, 'term'))
    }).catch((err: Error) => { this.#init.log.error({ err: err.message }, 'could not persist term') })
  }
}
