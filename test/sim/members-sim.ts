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
import { DEFAULTS } from '../../src/config.ts'
import { coreTimings, tickIntervalMs } from '../../src/timings.ts'
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
  /** Connected to a member (see startTogether). */
  connected: boolean
  /** In the gossip mesh: a node that is not yet (see startTogether) sends and hears no heartbeats. */
  meshed: boolean
  /** A starved process runs nothing until then: no ticks, and what arrives waits (see startTogether). */
  pausedUntilMs: number
}

type Event =
  | { kind: 'hb', to: string, hb: Heartbeat }
  | { kind: 'hint', to: string, about: string }
  | { kind: 'probe', to: string, about: string, answered: boolean }
  | { kind: 'sync', to: string, view: Heartbeat[] }
  | { kind: 'start', id: string }
  | { kind: 'connect', to: string }
  | { kind: 'sync-ask', to: string, from: string, replyMs: number }
  | { kind: 'mesh', to: string }

export interface Counters { published: number, delivered: number, probes: number, syncs: number, falseSuspicions: number, selfClaims: number, lonelyClaims: number, reincarnations: number }

/**
 * Nodes started at once on an overloaded host (see startTogether); each
 * range is [least, most], drawn uniformly per node.
 */
export interface SlowStart {
  n: number
  /** The nodes start spread over this long (processes spawned one after another, slow to load). */
  spreadMs: number
  /** From its start until it first connects to a member (an mDNS answer, a dial, a Noise handshake on a starved host). */
  connectMs: [number, number]
  /**
   * From that connection until the node is in the gossip mesh and hears (and
   * is heard by) the others: gossipsub grafts a new peer at its next
   * heartbeat (every second), later on a starved host.
   */
  meshMs: [number, number]
  /** From that connection until its first state sync completes (the member it asked is starved too). */
  syncMs: [number, number]
  /** Chance, at each of its ticks, that a process stalls (its host's cores are all busy), and for how long. */
  stallChance: number
  stallMs: [number, number]
}

export class MembersSim {
  readonly config: ClusterCoreConfig
  readonly rng: () => number
  readonly nodes = new Map<string, Node>()
  nowMs = 1_000_000
  readonly counters: Counters = { published: 0, delivered: 0, probes: 0, syncs: 0, falseSuspicions: 0, selfClaims: 0, lonelyClaims: 0, reincarnations: 0 }
  #slow: SlowStart | null = null
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
      this.nodes.set(ids[i]!, { id: ids[i]!, core, up: true, nextTickMs: this.nowMs + Math.floor(this.rng() * this.#tickMs), connected: true, meshed: true, pausedUntilMs: 0 })
      // The leader's claim goes out now, so that all agree on it; a follower published last some time ago.
      if (core.isLeader()) this.#publish(this.nodes.get(ids[i]!)!, core.nextHeartbeat(this.nowMs))
      else core.nextHeartbeat(this.nowMs - Math.floor(this.rng() * core.publishIntervalMs(this.nowMs)))
    })
  }

  /** Starts a new node; it asks one random up member for the state sync, as the runtime does on its first connection. */
  join (): string {
    const id = this.nextId()
    const core = new ClusterCore({ id, name: id, info: this.#info(id) }, this.config, this.nowMs)
    const node: Node = { id, core, up: true, nextTickMs: this.nowMs, connected: true, meshed: true, pausedUntilMs: 0 }
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

  /**
   * Starts `opts.n` nodes at once on a starved host, as the bench's scale
   * run does (25 processes spawned together on 2 cores): each starts at a
   * random moment within spreadMs, connects to a random started member after
   * connectMs (only then is it in the gossip mesh; the runtime then tells its
   * core of the contact), and its state sync with that member completes
   * syncMs later; every process stalls now and then. Returns the time of the
   * last start.
   */
  startTogether (opts: SlowStart): number {
    this.#slow = opts
    let lastMs = this.nowMs
    for (let i = 0; i < opts.n; i++) {
      const atMs = this.nowMs + 1 + Math.floor(this.rng() * opts.spreadMs)
      lastMs = Math.max(lastMs, atMs)
      this.#at(atMs, { kind: 'start', id: this.nextId() })
    }
    return lastMs
  }

  /** True when every up node names the same leader (that has claimed) and holds every other up node alive. */
  agreed (): boolean {
    const ups = this.upNodes()
    const leader = ups[0]?.core.leader()?.id
    if (leader === undefined) return false
    return ups.every(n => n.core.leader()?.id === leader && ups.every(o => n.core.statusOf(o.id) === 'alive'))
  }

  #uniform ([lo, hi]: [number, number]): number {
    return lo + Math.floor(this.rng() * (hi - lo + 1))
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
        if (this.#slow !== null && this.rng() < this.#slow.stallChance) {
          n.pausedUntilMs = this.nowMs + this.#uniform(this.#slow.stallMs)
          n.nextTickMs = n.pausedUntilMs
          continue
        }
        this.#observe(n, n.core.onTick(this.nowMs))
        if (n.core.heartbeatDue(this.nowMs)) this.#publish(n, n.core.nextHeartbeat(this.nowMs))
      }
    }
  }

  #deliver (e: Event): void {
    if (e.kind === 'start') {
      this.#start(e.id)
      return
    }
    const n = this.nodes.get(e.to)
    if (n === undefined || !n.up) return
    if (n.pausedUntilMs > this.nowMs) {
      this.#at(n.pausedUntilMs, e)
      return
    }
    switch (e.kind) {
      case 'connect': {
        // Connected to a started member: the runtime reports the contact and asks for the sync; gossip flows once meshed.
        const peers = this.upNodes().filter(o => o.id !== n.id && o.meshed)
        const any = this.upNodes().filter(o => o.id !== n.id)
        const peer = (peers.length > 0 ? peers : any)[Math.floor(this.rng() * (peers.length > 0 ? peers.length : any.length))]
        if (peer === undefined) {
          this.#at(this.nowMs + 100, e)
          return
        }
        n.connected = true
        this.#at(this.nowMs + this.#uniform(this.#slow!.meshMs), { kind: 'mesh', to: n.id })
        this.#observe(n, n.core.onContact(this.nowMs))
        this.counters.syncs++
        const syncMs = this.#uniform(this.#slow!.syncMs)
        this.#at(this.nowMs + Math.ceil(syncMs / 2), { kind: 'sync-ask', to: peer.id, from: n.id, replyMs: Math.floor(syncMs / 2) })
        return
      }
      case 'mesh':
        n.meshed = true
        return
      case 'sync-ask': {
        const asker = this.nodes.get(e.from)!
        this.#observe(n, n.core.onHeartbeat(asker.core.syncView(this.nowMs)[0]!, this.nowMs))
        this.#at(this.nowMs + Math.max(1, e.replyMs), { kind: 'sync', to: e.from, view: n.core.syncView(this.nowMs).filter(h => h.id !== e.from) })
        return
      }
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

  #start (id: string): void {
    const core = new ClusterCore({ id, name: id, info: this.#info(id) }, this.config, this.nowMs)
    this.nodes.set(id, { id, core, up: true, nextTickMs: this.nowMs, connected: false, meshed: false, pausedUntilMs: 0 })
    this.#at(this.nowMs + this.#uniform(this.#slow!.connectMs), { kind: 'connect', to: id })
  }

  #publish (from: Node, hb: Heartbeat): void {
    this.counters.published++
    if (!from.meshed) return
    for (const to of this.nodes.values()) {
      if (to === from || !to.up || !to.meshed) continue
      if (this.rng() < this.#loss) continue
      this.#at(this.nowMs + 1 + Math.floor(this.rng() * this.#maxDelayMs), { kind: 'hb', to: to.id, hb })
    }
  }

  #observe (n: Node, events: CoreEvent[]): void {
    for (const e of events) {
      if (e.type === 'member-status' && (e.to === 'suspect' || e.to === 'dead') && this.nodes.get(e.id)?.up === true) this.counters.falseSuspicions++
      if (e.type === 'leader-changed' && e.leader?.id === n.id) {
        this.counters.selfClaims++
        // Took office alone although it had already connected to a member: a cluster of one, to be merged later.
        if (n.connected && n.core.snapshot(this.nowMs).members.length === 1) this.counters.lonelyClaims++
      }
      if (e.type === 'reincarnated') this.counters.reincarnations++
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
