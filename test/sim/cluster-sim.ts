/**
 * A seeded, deterministic simulator of many ClusterCore instances: a manual
 * clock, and a network that delays, reorders, drops and partitions heartbeats.
 * Nodes can be crashed (peers get a disconnect hint), paused (no ticks, inbox
 * held until resumed) and restarted (a new core, a new incarnation).
 * The same seed replays the same run exactly.
 *
 * Invariant checked on every run: no leader change without a fault that
 * forces one (see leadership-watch.ts); breaches are listed in
 * `leadershipViolations`.
 */
import { ClusterCore } from '../../src/core/cluster-core.ts'
import type { ClusterCoreConfig } from '../../src/core/cluster-core.ts'
import type { CoreEvent, Heartbeat } from '../../src/core/types.ts'

import { seededRng } from '../../scripts/lib/rng.ts'
import { LeadershipWatch } from './leadership-watch.ts'
import type { WatchedNode } from './leadership-watch.ts'
export { seededRng }

/**
 * How far back the heal replays what a partition held back, by default: about
 * gossipsub's message cache (5 heartbeats of 1 s, the last 3 gossiped).
 */
export const GOSSIP_REPLAY_MS = 3_000

export const SIM_CONFIG: ClusterCoreConfig = {
  quorum: 0,
  heartbeatIntervalMs: 100,
  failureTimeoutMs: 600,
  deadRetentionMs: 5_000,
  joinWindowMs: 600
}

/** `left`: the node drained, announced that it left, and stopped (as `crashed`, but it said so). */
type NodeState = 'up' | 'paused' | 'crashed' | 'left'

interface SimNode {
  id: string
  core: ClusterCore
  state: NodeState
  clockOffsetMs: number
  nextTickMs: number
  held: Heartbeat[]
  /** Every term this node has reported, in order (for monotonicity checks). */
  terms: number[]
  /** Spans during which this node believed itself leader: [fromMs, toMs|null, term]. */
  leadership: Array<{ fromMs: number, toMs: number | null, term: number }>
  /** Until then what it publishes reaches nobody (see resume's catchUp); it arrives, in order, after. */
  sendsLateUntilMs: number
  /** Until then what is sent to it waits (see resume's catchUp); it is read, in order, after. */
  readsLateUntilMs: number
}

interface InFlight { atMs: number, order: number, from: string, to: string, hb: Heartbeat }

export interface SimOptions {
  seed: number
  config?: ClusterCoreConfig
  /** Largest one-way delay of a heartbeat. */
  maxDelayMs?: number
  /** Probability that one heartbeat to one receiver is lost. */
  dropRate?: number
  /**
   * At a heal, heartbeats published this recently that a partition kept from
   * a receiver reach it after all, as gossipsub's message cache hands them
   * on once the mesh is whole again (default GOSSIP_REPLAY_MS; 0: none).
   */
  replayMs?: number
}

export class ClusterSim {
  readonly config: ClusterCoreConfig
  readonly rng: () => number
  readonly nodes = new Map<string, SimNode>()
  readonly log: string[] = []
  nowMs = 1_000_000
  #inFlight: InFlight[] = []
  #order = 0
  #group = new Map<string, number>()
  readonly #maxDelayMs: number
  readonly #dropRate: number
  readonly #replayMs: number
  #catchUpSpreadMs = 0
  /** Heartbeats a partition kept from their receiver, for the replay at the heal. */
  #cutOff: Array<{ sentMs: number, from: string, to: string, hb: Heartbeat }> = []
  readonly #watch: LeadershipWatch

  constructor (opts: SimOptions) {
    this.config = opts.config ?? SIM_CONFIG
    this.rng = seededRng(opts.seed)
    this.#maxDelayMs = opts.maxDelayMs ?? 30
    this.#dropRate = opts.dropRate ?? 0
    this.#replayMs = opts.replayMs ?? GOSSIP_REPLAY_MS
    this.#watch = new LeadershipWatch(this.config)
  }

  /** Breaches of "no leader change without a fault that forces one", each with the time and what happened. */
  get leadershipViolations (): readonly string[] { return this.#watch.violations }

  /**
   * Starts a node. `clockOffsetMs` skews its clock against the others'.
   * A restarted node keeps the highest term it knew, as the real node keeps it in its data directory.
   */
  addNode (id: string, clockOffsetMs = 0): void {
    const prev = this.nodes.get(id)
    const info = { http: `http://${id}`, capacity: 1, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: [] }
    const core = new ClusterCore({ id, name: id, info }, this.config, this.nowMs + clockOffsetMs, prev?.core.term ?? 0)
    this.nodes.set(id, {
      id,
      core,
      clockOffsetMs,
      state: 'up',
      nextTickMs: this.nowMs + Math.floor(this.rng() * this.config.heartbeatIntervalMs),
      held: [],
      sendsLateUntilMs: 0,
      readsLateUntilMs: 0,
      terms: prev?.terms ?? [],
      leadership: prev?.leadership ?? []
    })
    this.#group.set(id, this.#group.get(id) ?? 0)
    this.log.push(`${this.nowMs} add ${id}`)
  }

  crash (id: string): void {
    const n = this.#must(id)
    const leader = this.#faultBegins()
    n.state = 'crashed'
    this.#faultEnds(leader, id)
    this.#endLeadership(n)
    this.log.push(`${this.nowMs} crash ${id}`)
    // Peers that had a connection see it close shortly after, behind what it had already sent (TCP order).
    for (const other of this.nodes.values()) {
      if (other.id !== id && other.state !== 'crashed' && this.#connected(id, other.id)) {
        const lastSent = Math.max(this.nowMs, ...this.#inFlight.filter(m => m.from === id && m.to === other.id).map(m => m.atMs))
        this.#hint(other, id, lastSent + 1 + Math.floor(this.rng() * 20))
      }
    }
  }

  /** The node begins to drain: it says so in a heartbeat sent now (as the runtime does). */
  drain (id: string): void {
    const n = this.#must(id)
    this.#faultEnds(this.#faultBegins(), id)
    this.log.push(`${this.nowMs} drain ${id}`)
    this.#observe(n, n.core.beginDrain(this.#clock(n)))
    this.#publish(n, n.core.nextHeartbeat(this.#clock(n)))
  }

  /**
   * The node leaves: a heartbeat saying `left` goes out now, then the node
   * stops and its connections close behind that heartbeat (TCP order).
   */
  leave (id: string): void {
    const n = this.#must(id)
    this.#faultEnds(this.#faultBegins(), id)
    this.log.push(`${this.nowMs} leave ${id}`)
    this.#observe(n, n.core.leave(this.#clock(n)))
    this.#publish(n, n.core.nextHeartbeat(this.#clock(n)))
    n.state = 'left'
    this.#endLeadership(n)
    for (const other of this.nodes.values()) {
      if (other.id !== id && other.state !== 'crashed' && other.state !== 'left' && this.#connected(id, other.id)) {
        const lastSent = Math.max(this.nowMs, ...this.#inFlight.filter(m => m.from === id && m.to === other.id).map(m => m.atMs))
        this.#hint(other, id, lastSent + 1 + Math.floor(this.rng() * 20))
      }
    }
  }

  restart (id: string): void {
    this.log.push(`${this.nowMs} restart ${id}`)
    this.#returns(id)
    this.addNode(id, this.#must(id).clockOffsetMs)
  }

  pause (id: string): void {
    const leader = this.#faultBegins()
    this.#must(id).state = 'paused'
    this.#faultEnds(leader, id)
    this.log.push(`${this.nowMs} pause ${id}`)
  }

  /**
   * The node runs again. `catchUp`: its timers run at once, but for a while
   * what it publishes reaches the others only afterwards (`sendMs`), and what
   * they send it is read only afterwards (`readMs`), in order, each receiver
   * up to `spreadMs` later than the next: a resumed process that works
   * through a backlog (CPU starved, its connections re-established), so its
   * silence outlasts the pause.
   */
  resume (id: string, catchUp: { sendMs?: number, readMs?: number, spreadMs?: number } = {}): void {
    const n = this.#must(id)
    this.#returns(id)
    n.state = 'up'
    n.sendsLateUntilMs = this.nowMs + (catchUp.sendMs ?? 0)
    n.readsLateUntilMs = this.nowMs + (catchUp.readMs ?? 0)
    if (n.readsLateUntilMs > this.nowMs) {
      // What came in during the pause is read after the catch-up too, before what comes later.
      for (const hb of n.held) this.#inFlight.push({ atMs: n.readsLateUntilMs, order: this.#order++, from: hb.id, to: id, hb })
      n.held = []
    }
    this.#catchUpSpreadMs = catchUp.spreadMs ?? 0
    const lag = catchUp.sendMs === undefined && catchUp.readMs === undefined ? '' : ` (catching up: sends late for ${catchUp.sendMs ?? 0} ms, reads late for ${catchUp.readMs ?? 0} ms)`
    this.log.push(`${this.nowMs} resume ${id}${lag}`)
    // A resumed process runs its overdue timer first, then reads its sockets.
    n.nextTickMs = this.nowMs
  }

  /** Splits the nodes into groups; only nodes in one group hear each other. */
  partition (groups: string[][]): void {
    const leader = this.#faultBegins()
    groups.forEach((g, i) => { for (const id of g) this.#group.set(id, i + 1) })
    this.#faultEnds(leader, null)
    this.log.push(`${this.nowMs} partition ${groups.map(g => g.join(',')).join(' | ')}`)
  }

  heal (): void {
    this.#watch.healed(this.nowMs)
    for (const id of this.#group.keys()) this.#group.set(id, 0)
    // Gossip hands on what the partition held back, oldest first, within a few delays.
    for (const m of this.#cutOff) {
      if (this.nowMs - m.sentMs > this.#replayMs) continue
      this.#inFlight.push({ atMs: this.nowMs + 1 + Math.floor(this.rng() * this.#maxDelayMs), order: this.#order++, from: m.from, to: m.to, hb: m.hb })
    }
    this.#cutOff = []
    this.log.push(`${this.nowMs} heal`)
  }

  /** The leader before a fault is applied (see #faultEnds). */
  #faultBegins (): string | null {
    return this.#watch.leaderBefore(this.#watched())
  }

  /** A fault was applied to `target` (null: a partition). */
  #faultEnds (leader: string | null, target: string | null): void {
    this.#watch.faultApplied(this.nowMs, leader, target, this.#watched())
  }

  #returns (id: string): void {
    this.#watch.returns(this.nowMs, id, this.#watched())
  }

  #watched (): WatchedNode[] {
    return [...this.nodes.values()].map(n => ({
      id: n.id,
      state: n.state === 'up' || n.state === 'paused' ? n.state : 'down',
      leads: n.core.isLeader(),
      names: n.core.leader(),
      side: this.#group.get(n.id) ?? 0
    }))
  }

  #connected (a: string, b: string): boolean {
    return this.#group.get(a) === this.#group.get(b)
  }

  #hints: Array<{ atMs: number, to: SimNode, about: string }> = []

  #hint (to: SimNode, about: string, atMs: number): void {
    this.#hints.push({ atMs, to, about })
  }

  /** Runs the simulation forward by `ms`, in steps of one millisecond of events. */
  run (ms: number): void {
    const endMs = this.nowMs + ms
    while (this.nowMs < endMs) {
      this.nowMs += 1
      this.#deliverDue()
      for (const n of this.nodes.values()) {
        if (n.state === 'up' && n.nextTickMs <= this.nowMs) {
          n.nextTickMs = this.nowMs + this.config.heartbeatIntervalMs
          this.#observe(n, n.core.onTick(this.#clock(n)))
          if (n.held.length > 0) {
            const held = n.held
            n.held = []
            for (const hb of held) this.#observe(n, n.core.onHeartbeat(hb, this.#clock(n)))
          }
          if (n.core.heartbeatDue(this.#clock(n))) this.#publish(n, n.core.nextHeartbeat(this.#clock(n)))
        }
      }
      this.#watch.check(this.nowMs, this.#watched())
    }
  }

  #publish (from: SimNode, hb: Heartbeat): void {
    for (const to of this.nodes.values()) {
      if (to.id === from.id || to.state === 'crashed' || to.state === 'left') continue
      if (!this.#connected(from.id, to.id)) {
        if (this.#replayMs > 0) {
          if ((this.#cutOff[0]?.sentMs ?? this.nowMs) < this.nowMs - 2 * this.#replayMs) this.#cutOff = this.#cutOff.filter(m => m.sentMs >= this.nowMs - this.#replayMs)
          this.#cutOff.push({ sentMs: this.nowMs, from: from.id, to: to.id, hb: structuredClone(hb) })
        }
        continue
      }
      if (this.rng() < this.#dropRate) continue
      const delay = 1 + Math.floor(this.rng() * this.#maxDelayMs)
      const lagged = from.sendsLateUntilMs > this.nowMs ? from.sendsLateUntilMs + Math.floor(this.rng() * this.#catchUpSpreadMs) : this.nowMs
      this.#inFlight.push({ atMs: lagged + delay, order: this.#order++, from: from.id, to: to.id, hb: structuredClone(hb) })
    }
  }

  #deliverDue (): void {
    const due = this.#inFlight.filter(m => m.atMs <= this.nowMs).sort((a, b) => a.atMs - b.atMs || a.order - b.order)
    if (due.length > 0) this.#inFlight = this.#inFlight.filter(m => m.atMs > this.nowMs)
    for (const m of due) {
      const to = this.nodes.get(m.to)
      if (to === undefined || to.state === 'crashed' || to.state === 'left' || !this.#connected(m.from, m.to)) continue
      if (to.state === 'paused') { to.held.push(m.hb); continue }
      if (to.readsLateUntilMs > this.nowMs) { this.#inFlight.push({ ...m, atMs: to.readsLateUntilMs }); continue }
      this.#observe(to, to.core.onHeartbeat(m.hb, this.#clock(to)))
    }
    const hints = this.#hints.filter(h => h.atMs <= this.nowMs)
    if (hints.length > 0) this.#hints = this.#hints.filter(h => h.atMs > this.nowMs)
    for (const h of hints) {
      if (h.to.state === 'up') this.#observe(h.to, h.to.core.onPeerDisconnected(h.about, this.#clock(h.to)))
    }
  }

  #observe (n: SimNode, events: CoreEvent[]): void {
    const t = n.core.term
    if (n.terms.at(-1) !== t) n.terms.push(t)
    for (const e of events) {
      if (e.type === 'leader-changed' || e.type === 'reincarnated' || e.type === 'member-status' || e.type === 'member-joined') {
        this.log.push(`${this.nowMs} ${n.id} ${e.type} ${JSON.stringify(e.type === 'leader-changed' ? e.leader : e.type === 'reincarnated' ? e.reason : e)}`)
      }
    }
    const leads = n.core.isLeader()
    const open = n.leadership.at(-1)
    const openSpan = open !== undefined && open.toMs === null ? open : undefined
    if (leads && (openSpan === undefined || openSpan.term !== n.core.leader()?.term)) {
      if (openSpan !== undefined) openSpan.toMs = this.nowMs
      n.leadership.push({ fromMs: this.nowMs, toMs: null, term: n.core.leader()?.term ?? -1 })
    } else if (!leads && openSpan !== undefined) {
      openSpan.toMs = this.nowMs
    }
  }

  #endLeadership (n: SimNode): void {
    const open = n.leadership.at(-1)
    if (open !== undefined && open.toMs === null) open.toMs = this.nowMs
  }

  #clock (n: SimNode): number {
    return this.nowMs + n.clockOffsetMs
  }

  #must (id: string): SimNode {
    const n = this.nodes.get(id)
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  upNodes (): SimNode[] {
    return [...this.nodes.values()].filter(n => n.state === 'up')
  }

  /** The leader every up node names, or null when they disagree or name none. */
  agreedLeader (): { id: string, term: number } | null {
    return this.agreedLeaderOf(this.upNodes().map(n => n.id))
  }

  /** The leader these up nodes all name (one that leads in its own eyes too), or null. */
  agreedLeaderOf (ids: readonly string[]): { id: string, term: number } | null {
    const ups = this.upNodes().filter(n => ids.includes(n.id))
    const first = ups[0]?.core.leader()
    if (first === undefined || first === null) return null
    for (const n of ups) {
      const l = n.core.leader()
      if (l === null || l.id !== first.id || l.term !== first.term) return null
    }
    const leaderNode = this.nodes.get(first.id)
    if (leaderNode === undefined || leaderNode.state !== 'up' || !leaderNode.core.isLeader()) return null
    return { id: first.id, term: first.term }
  }

  /** The cluster's leader (see LeadershipWatch.majorityLeader), or null. */
  majorityLeader (): { id: string, term: number } | null {
    return LeadershipWatch.majorityLeader(this.#watched())
  }

  /** Runs until the up nodes agree on a live leader, or `limitMs` passes. Returns the time taken or null. */
  runUntilAgreed (limitMs: number): number | null {
    const start = this.nowMs
    while (this.nowMs - start < limitMs) {
      if (this.agreedLeader() !== null) return this.nowMs - start
      this.run(10)
    }
    return this.agreedLeader() !== null ? this.nowMs - start : null
  }
}
