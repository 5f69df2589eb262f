/**
 * A seeded membership simulator for large clusters: N ClusterCores on one
 * manual clock, a gossip layer that delivers each published heartbeat to
 * every other up node after a short delay (or loses it, independently per
 * receiver), the runtime's direct probe after a closed connection, and the
 * joining state sync. It measures what issue 15 asks: how long until every
 * node knows of a join and of a crash, messages per node per second, and
 * false suspicions (an up node shown suspect or dead by another).
 *
 * Gossipsub is modelled as a broadcast: on the wire each heartbeat also
 * travels the mesh (each node receives it from up to D peers and drops the
 * duplicates), which multiplies packets, not what the core processes.
 * Events are kept in per-millisecond buckets, so 1,000 nodes run in seconds.
 */
import { ClusterCore } from '../../src/core/cluster-core.ts'
import type { ClusterCoreConfig } from '../../src/core/cluster-core.ts'
import type { CoreEvent, Heartbeat, MemberInfo } from '../../src/core/types.ts'
import { coreTimings, tickIntervalMs, DEFAULTS } from '../../src/config.ts'
import { seededRng } from '../../scripts/lib/rng.ts'

export interface MembersSimOptions {
  seed: number
  /** Probability that one heartbeat to one receiver is lost. */
  loss: number
  config?: ClusterCoreConfig
  /** Largest one-way delay of a heartbeat (a few gossip hops on a LAN). */
  maxDelayMs?: number
}

interface Node {
  id: string
  core: ClusterCore
  up: boolean
  nextTickMs: number
}

type Event =
  | { kind: 'hb', to: string, hb: Heartbeat }
  | { kind: 'hint', to: string, about: string }
  | { kind: 'probe', to: string, about: string, answered: boolean }
  | { kind: 'sync', to: string, view: Heartbeat[] }

export interface Counters { published: number, delivered: number, probes: number, syncs: number, falseSuspicions: number }

export class MembersSim {
  readonly config: ClusterCoreConfig
  readonly rng: () => number
  readonly nodes = new Map<string, Node>()
  nowMs = 1_000_000
  readonly counters: Counters = { published: 0, delivered: 0, probes: 0, syncs: 0, falseSuspicions: 0 }
  readonly #queue = new Map<number, Event[]>()
  readonly #tickMs: number
  readonly #maxDelayMs: number
  readonly #loss: number
  #seq = 0

  constructor (opts: MembersSimOptions) {
    this.config = opts.config ?? coreTimings({ heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs, failureTimeoutMs: DEFAULTS.failureTimeoutMs, quorum: 0 })
    this.rng = seededRng(opts.seed)
    this.#tickMs = tickIntervalMs(this.config.heartbeatIntervalMs)
    this.#maxDelayMs = opts.maxDelayMs ?? 15
    this.#loss = opts.loss
  }

  /** A fresh id that sorts after every earlier one. */
  nextId (): string {
    return `n${String(++this.#seq).padStart(5, '0')}`
  }

  /**
   * Starts `n` nodes that have been members for a while: each learned the
   * others from a state sync, its clock ticked through its join window (often
   * enough not to look stalled), the oldest leads, and each follower last
   * published at a random moment within its interval (as in a cluster that
   * formed over time, not all in step).
   */
  seed (n: number): void {
    const ids = Array.from({ length: n }, () => this.nextId())
    const budget = this.config.followerHeartbeatsPerSecond ?? 0
    const intervalMs = budget > 0 ? Math.max(this.config.heartbeatIntervalMs, Math.ceil((n - 1) * 1000 / budget)) : this.config.heartbeatIntervalMs
    const startMs = this.nowMs - this.config.joinWindowMs - intervalMs - n - 1
    const cores = ids.map((id, i) => new ClusterCore({ id, name: id, info: this.#info(id) }, this.config, startMs + i))
    // Each node learned every other from a state sync while joining; its clock ticks through the join
    // window (often enough not to look stalled); the oldest leads. A second sync just before the start
    // stands for the heartbeats heard since (each member last heard a moment ago).
    const view = cores.map(c => ({ ...c.syncView(startMs + n)[0]!, intervalMs }))
    for (const core of cores) core.onSync(view, startMs + n)
    for (let t = startMs + n + 900; t < this.nowMs - 1; t += 900) for (const core of cores) core.onTick(t)
    const recent = cores.map(c => ({ ...c.syncView(this.nowMs - 1)[0]!, seq: 1, joining: false, intervalMs: c.isLeader() ? this.config.heartbeatIntervalMs : intervalMs }))
    for (const core of cores) core.onSync(recent, this.nowMs - 1)
    cores.forEach((core, i) => {
      core.onTick(this.nowMs)
      this.nodes.set(ids[i]!, { id: ids[i]!, core, up: true, nextTickMs: this.nowMs + Math.floor(this.rng() * this.#tickMs) })
      // The leader's claim goes out now, so that all agree on it; a follower published last some time ago.
      if (core.isLeader()) this.#publish(this.nodes.get(ids[i]!)!, core.nextHeartbeat(this.nowMs))
      else core.nextHeartbeat(this.nowMs - Math.floor(this.rng() * core.publishIntervalMs(this.nowMs)))
    })
  }

  /** Starts a new node; it asks one random up member for the state sync, as the runtime does on its first connection. */
  join (): string {
    const id = this.nextId()
    const core = new ClusterCore({ id, name: id, info: this.#info(id) }, this.config, this.nowMs)
    const node: Node = { id, core, up: true, nextTickMs: this.nowMs }
    this.nodes.set(id, node)
    const ups = this.upNodes().filter(n => n.id !== id)
    const first = ups[Math.floor(this.rng() * ups.length)]
    if (first !== undefined) {
      this.counters.syncs++
      const rtt = 1 + Math.floor(this.rng() * this.#maxDelayMs)
      const self = core.syncView(this.nowMs)[0]!
      this.#at(this.nowMs + Math.ceil(rtt / 2), { kind: 'hb', to: first.id, hb: self })
      this.#at(this.nowMs + rtt, { kind: 'sync', to: id, view: first.core.syncView(this.nowMs + Math.ceil(rtt / 2)) })
    }
    return id
  }

  /**
   * Stops a node. With `closes` (a killed process) every peer's connection
   * closes and their probe is refused; without it (a host that vanished, a
   * paused process) the others only hear silence.
   */
  crash (id: string, closes: boolean): void {
    const node = this.nodes.get(id)!
    node.up = false
    if (!closes) return
    for (const other of this.upNodes()) {
      const at = this.nowMs + 1 + Math.floor(this.rng() * 20)
      this.#at(at, { kind: 'hint', to: other.id, about: id })
    }
  }

  upNodes (): Node[] {
    return [...this.nodes.values()].filter(n => n.up)
  }

  /** True when every up node (other than `id`) holds `id` with `status`. */
  allSee (id: string, status: 'alive' | 'dead'): boolean {
    for (const n of this.nodes.values()) {
      if (!n.up || n.id === id) continue
      const s = n.core.statusOf(id)
      if (status === 'alive' ? s !== 'alive' : (s !== undefined && s !== 'dead')) return false
    }
    return true
  }

  /** Runs until `done()` holds (checked every `everyMs`) or `limitMs` passes; the time taken, or null. */
  runUntil (done: () => boolean, limitMs: number, everyMs = 10): number | null {
    const start = this.nowMs
    while (this.nowMs - start <= limitMs) {
      if (done()) return this.nowMs - start
      this.run(everyMs)
    }
    return null
  }

  run (ms: number): void {
    const end = this.nowMs + ms
    while (this.nowMs < end) {
      this.nowMs++
      const due = this.#queue.get(this.nowMs)
      if (due !== undefined) {
        this.#queue.delete(this.nowMs)
        for (const e of due) this.#deliver(e)
      }
      for (const n of this.nodes.values()) {
        if (!n.up || n.nextTickMs > this.nowMs) continue
        n.nextTickMs = this.nowMs + this.#tickMs
        this.#observe(n, n.core.onTick(this.nowMs))
        if (n.core.heartbeatDue(this.nowMs)) this.#publish(n, n.core.nextHeartbeat(this.nowMs))
      }
    }
  }

  #deliver (e: Event): void {
    const n = this.nodes.get(e.to)
    if (n === undefined || !n.up) return
    switch (e.kind) {
      case 'hb':
        this.counters.delivered++
        this.#observe(n, n.core.onHeartbeat(e.hb, this.nowMs))
        return
      case 'sync':
        this.#observe(n, n.core.onSync(e.view, this.nowMs))
        return
      case 'hint': {
        const events = n.core.onPeerDisconnected(e.about, this.nowMs)
        this.#observe(n, events)
        if (events.length > 0) {
          // The runtime probes at once: a dial to a live node is answered, one to a killed process refused.
          this.counters.probes++
          const about = this.nodes.get(e.about)
          this.#at(this.nowMs + 1 + Math.floor(this.rng() * 5), { kind: 'probe', to: n.id, about: e.about, answered: about?.up === true })
        }
        return
      }
      case 'probe':
        this.#observe(n, n.core.onProbeResult(e.about, e.answered, this.nowMs))
    }
  }

  #publish (from: Node, hb: Heartbeat): void {
    this.counters.published++
    for (const to of this.nodes.values()) {
      if (to === from || !to.up) continue
      if (this.rng() < this.#loss) continue
      this.#at(this.nowMs + 1 + Math.floor(this.rng() * this.#maxDelayMs), { kind: 'hb', to: to.id, hb })
    }
  }

  #observe (n: Node, events: CoreEvent[]): void {
    for (const e of events) {
      if (e.type === 'member-status' && (e.to === 'suspect' || e.to === 'dead') && this.nodes.get(e.id)?.up === true) this.counters.falseSuspicions++
    }
  }

  #at (atMs: number, e: Event): void {
    const list = this.#queue.get(atMs)
    if (list === undefined) this.#queue.set(atMs, [e])
    else list.push(e)
  }

  #info (id: string): MemberInfo {
    return { http: `http://${id}`, capacity: 1, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: [] }
  }
}
