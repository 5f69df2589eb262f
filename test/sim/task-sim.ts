/**
 * A seeded, deterministic simulation of the whole task system: the real
 * ClusterRuntime and TaskRuntime of 3-9 nodes (membership, election,
 * scheduler, origin/leader/worker code paths, the sqlite task store), wired
 * through a simulated network and a simulated clock. Only the edges are
 * simulated: the network (heartbeats and RPC frames, encoded and decoded as on
 * the wire, delayed, reordered, dropped, partitioned), time, the disk that
 * survives a crash (an in-memory database per node, and the term and grant
 * as durable values, see SimNode.savedTerm) and the handler pool.
 *
 * Every runtime timer is a simulated event; between two events every pending
 * promise settles, so the same seed replays the same run exactly.
 *
 * Faults: crash (the node's events and timers vanish, peers' streams to it
 * reset), pause (its events wait until it resumes, as in SIGSTOP), restart
 * (a new incarnation on the same store and term), partitions (links cut,
 * sometimes noticed as disconnects), and a disk that refuses a grant write
 * now and then (an I/O error: the grant must then be refused, not revealed).
 *
 * Persist, then send: every heartbeat, inventory request and assignment is
 * checked to carry no term above its sender's durable term, and every grant
 * (an inventory or an accepted assignment) to be on the granter's disk when
 * its reply leaves. After every event: no leader change without a fault that
 * forces one (leadership-watch.ts; a leader is in office once it dispatches).
 */
import pino from 'pino'
import { DEFAULTS } from '../../src/config.ts'
import { coreTimings } from '../../src/timings.ts'
import { MinHeap } from '../../src/core/min-heap.ts'
import { copiesOf, isTerminal } from '../../src/core/tasks.ts'
import type { TaskRecord } from '../../src/core/tasks.ts'
import type { Grant } from '../../src/core/grants.ts'
import type { CoreEvent, Heartbeat } from '../../src/core/types.ts'
import type { AttemptInput, AttemptOutcome, TaskExecutor } from '../../src/exec/handler-pool.ts'
import { decodeHeartbeat, encodeHeartbeat } from '../../src/protocol/messages.ts'
import { decodeReply, decodeRequest, encodeFrame } from '../../src/protocol/rpc.ts'
import { refusal, replyOfError } from '../../src/protocol/rpc-errors.ts'
import type { RpcReply, RpcRequest } from '../../src/protocol/rpc.ts'
import type { Clock } from '../../src/runtime/clock.ts'
import { ClusterRuntime } from '../../src/runtime/cluster-runtime.ts'
import { Drain } from '../../src/runtime/drain.ts'
import type { TermStore } from '../../src/runtime/cluster-runtime.ts'
import { TaskRuntime } from '../../src/runtime/task-runtime.ts'
import type { ClusterTransport } from '../../src/runtime/transport.ts'
import { TaskStore } from '../../src/store/task-store.ts'
import { GOSSIP_REPLAY_MS, seededRng } from './cluster-sim.ts'
import { LeadershipWatch } from './leadership-watch.ts'
import type { WatchedNode } from './leadership-watch.ts'

export interface TaskSimOptions {
  seed: number
  /** Nodes in the cluster (default: 3-9, from the seed). */
  nodes?: number
  /** 0: no quorum; otherwise the quorum each node is configured with (default: from the seed). */
  quorum?: number
  /** Simulated milliseconds of faults and load (default 12,000). */
  faultMs?: number
  /** Simulated milliseconds allowed, after faults stop, for every accepted task to end (default 60,000). */
  settleMs?: number
  /**
   * 'faulty' (default): delays of 1-15 ms, dropped heartbeats, reset streams
   * and lost replies, on top of what the real transport does. 'perfect': none
   * of those (the transport contract suite runs on it).
   */
  network?: 'faulty' | 'perfect'
  /**
   * Dependencies in the workload (default off, so that the other seeds replay
   * as they always did): some batches are chains or small graphs (refs and
   * dependsOn), and some tasks depend on a task accepted earlier. Drawn from
   * a second stream of the seed.
   */
  dependencies?: boolean
  /**
   * At a heal, heartbeats published this recently that the partition kept
   * from a receiver reach it after all, in a random order within the
   * network's delays, as gossipsub's message cache hands them on once the
   * mesh is whole again (default GOSSIP_REPLAY_MS, gossipsub's reach; 0:
   * none). On by default since seeds 1-200 pass with it (seed 135, which
   * once ended with a retried task's holders apart, among them).
   */
  replayMs?: number
  /**
   * Kills as the chaos smoke makes them (default off, so that the other
   * seeds replay as they always did): a third of the crashes last until the
   * faults stop instead of a few seconds, so a holder can miss endings for
   * long and come back to copies that ended elsewhere, while the node that
   * parked those endings for it restarts meanwhile. Drawn from a third stream
   * of the seed.
   */
  kills?: boolean
}

interface Event { at: number, seq: number, node: SimNode | null, life: number, fn: () => void, cancelled: boolean }

/** Events ordered by (time, insertion). */
class EventQueue extends MinHeap<Event> {
  constructor () { super(before) }
}

function before (a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

type NodeState = 'up' | 'paused' | 'crashed'

interface SimNode {
  id: string
  index: number
  state: NodeState
  /** Bumped on every crash: events of an earlier life never run. */
  life: number
  /** Events that came due while paused, run in order on resume. */
  held: Event[]
  /** The node's disk: survives crashes and restarts. */
  store: TaskStore
  /**
   * The term and grant on this node's disk. The real TermStore writes them
   * synchronously and durably (fsync of file and folder before it returns),
   * so a write is either refused (it throws, the old value stays) or
   * complete; none is ever pending, and a crash, which the simulator can
   * only inject between two events, loses none. This is exactly what the
   * real one can lose.
   */
  savedTerm: number
  savedGrant: Grant | null
  cluster: ClusterRuntime | null
  tasks: TaskRuntime | null
  /** The running process's clock (null while it is down). */
  clock: Clock | null
  heartbeatHandler: ((hb: Heartbeat) => void) | null
  disconnectHandler: ((id: string) => void) | null
  requestHandler: ((msg: RpcRequest, from: string) => Promise<RpcReply>) | null
  /** Attempts running in this node's simulated handler pool. */
  running: Set<SimAttempt>
  queued: SimAttempt[]
  capacity: number
}

interface SimAttempt { input: AttemptInput, resolve: (o: AttemptOutcome) => void, assignTerm: number, assignLeader: string, cancelTimers: Array<() => void> }

/** One execution of a handler that ran to its end (the sim's equivalent of a line in a recording handler's log). */
export interface Execution { task: string, node: string, attempt: number, assignTerm: number, atMs: number }

/** `cancelAnswers`: each cancel answered `cancelled`, with the generation (user retries) it was answered in. */
interface Accepted { id: string, type: 'echo' | 'fail', payload: unknown, cancelRequested: boolean, cancelAnswers?: number[], atMs: number, runAt: number | null, retried: number, parents: string[] }

type SimInput = { type: 'echo' | 'fail', payload: { ms: number, n: number }, maxAttempts: number, delayMs?: number, idempotencyKey?: string, ref?: string, dependsOn?: string[] }

export interface Violation { kind: string, detail: string }

export interface TaskSimReport {
  seed: number
  nodes: number
  quorum: number
  accepted: number
  /** Accepted tasks that were delayed (runAt after their submit). */
  delayed: number
  /** Accepted tasks a user retried (a retry accepted at least once). */
  retried: number
  /** Accepted tasks with parents (dependsOn). */
  withParents: number
  succeeded: number
  failed: number
  cancelled: number
  executions: number
  /** Tasks executed to the end more than once (allowed after faults; counted). */
  duplicates: number
  /**
   * Tasks whose cancel was answered `cancelled` (a holder had recorded it)
   * that ended with a result of that generation all the same: an attempt
   * the leader did not know of (after a fault) finished, and a result
   * outranks a cancel (allowed; counted).
   */
  cancelsOverturned: number
  /** Tasks accepted while their origin saw no other live node (stored on one node, as documented). */
  singleCopy: number
  faults: number
  leaders: number
  settledAfterMs: number | null
  violations: Violation[]
  log: string[]
}

/** A task id whose every RPC is logged (debugging a seed). */
const TRACE = process.env.TASKSIM_TRACE
/**
 * Settings the simulator sets on purpose (faster failure detection, shorter
 * task timeouts and backoff, so that one seed covers more failovers and
 * retries); every other setting is the default.
 */
const SIM_SETTINGS = { heartbeatIntervalMs: 100, failureTimeoutMs: 600, defaultTimeoutMs: 30_000, retryBaseMs: 50, retryMaxMs: 1_000, maxPayloadBytes: 64 * 1024, maxRpcFrameBytes: 8 * 1024 * 1024 }
const NET_MAX_DELAY_MS = 15
/** Probability that one grant write fails while faults are injected. */
const GRANT_WRITE_FAILURE_RATE = 0.1

export class TaskSim {
  readonly seed: number
  readonly rng: () => number
  readonly nodes: SimNode[] = []
  readonly log: string[] = []
  readonly violations: Violation[] = []
  readonly executions: Execution[] = []
  /** When each attempt began on a worker (its handler started). */
  readonly starts: Array<{ task: string, node: string, attempt: number, atMs: number, parents: Record<string, unknown> | undefined }> = []
  readonly accepted = new Map<string, Accepted>()
  /** Leaders that gathered and dispatched: term -> their ids. */
  readonly dispatchers = new Map<number, Set<string>>()
  /** Per worker: term -> the leaders whose assignments of that term it ran. */
  readonly #ranFrom = new Map<string, Map<number, Set<string>>>()
  readonly quorum: number
  now = 1_700_000_000_000
  readonly #queue = new EventQueue()
  #seq = 0
  #ids = 0
  #faults = 0
  readonly #group = new Map<string, number>()
  /** RPCs not yet answered: a crash of the callee resets them. */
  readonly #pending = new Set<{ from: SimNode, fromLife: number, to: SimNode, reject: (err: Error) => void }>()
  readonly #silent = pino({ level: 'silent' })

  readonly opts: TaskSimOptions
  readonly #faultyNetwork: boolean
  readonly #replayMs: number
  /** Heartbeats a partition kept from their receiver, for the replay at the heal (see TaskSimOptions.replayMs). */
  #cutOff: Array<{ sentMs: number, from: SimNode, to: SimNode, bytes: Uint8Array }> = []
  /** True while faults are injected (disk errors too). */
  #faulting = true
  /** "No leader change without a fault that forces one", checked after every event. */
  readonly #watch: LeadershipWatch
  /** The term each node dispatches in as leader, since it gathered in it (this life). */
  readonly #dispatchingTerm = new Map<string, number>()
  /** Nodes draining (this life): they leave, so the watch counts them gone. */
  readonly #draining = new Set<string>()

  constructor (opts: TaskSimOptions) {
    this.opts = opts
    this.#faultyNetwork = (opts.network ?? 'faulty') === 'faulty'
    this.#replayMs = opts.replayMs ?? GOSSIP_REPLAY_MS
    this.seed = opts.seed
    this.rng = seededRng(opts.seed)
    this.#depRng = seededRng(opts.seed * 7_919 + 1)
    this.#killRng = seededRng(opts.seed * 104_729 + 3)
    const n = opts.nodes ?? 3 + Math.floor(this.rng() * 7)
    this.quorum = opts.quorum ?? (this.rng() < 0.5 ? 0 : Math.floor(n / 2) + 1)
    this.#watch = new LeadershipWatch({ quorum: this.quorum, failureTimeoutMs: SIM_SETTINGS.failureTimeoutMs })
    for (let i = 0; i < n; i++) {
      const id = `node${String(i).padStart(2, '0')}`
      this.nodes.push({
        id, index: i, state: 'crashed', life: 0, held: [], store: this.#watchEndings(new TaskStore(null)), savedTerm: 0, savedGrant: null,
        cluster: null, tasks: null, clock: null, heartbeatHandler: null, disconnectHandler: null, requestHandler: null,
        running: new Set(), queued: [], capacity: 1 + Math.floor(this.rng() * 3)
      })
      this.#group.set(id, 0)
    }
  }

  /** Tasks some holder recorded as failed or cancelled at some time (a success may have beaten that ending since, after a fault). */
  readonly #endedWithoutSuccess = new Set<string>()
  /** Tasks some holder recorded as cancelled at some time. */
  readonly #recordedCancelled = new Set<string>()
  #cancelsOverturned = 0

  #watchEndings (store: TaskStore): TaskStore {
    const apply = store.applyUpdates.bind(store)
    store.applyUpdates = updates => {
      const r = apply(updates)
      for (const rec of r.changed) if (rec.status === 'failed' || rec.status === 'cancelled') this.#endedWithoutSuccess.add(rec.id)
      for (const rec of r.changed) if (rec.status === 'cancelled') this.#recordedCancelled.add(rec.id)
      // Reopened (a user's retry took effect, maybe one whose answer never came back): not settled any more.
      for (const rec of r.changed) if (!isTerminal(rec.status)) this.#ended.delete(rec.id)
      return r
    }
    return store
  }

  // ---- the event loop ------------------------------------------------------

  /** Schedules `fn` at `at` on `node` (null: the simulator itself). */
  schedule (at: number, node: SimNode | null, fn: () => void, life = node?.life ?? 0): Event {
    const e: Event = { at: Math.max(at, this.now), seq: this.#seq++, node, life, fn, cancelled: false }
    this.#queue.push(e)
    return e
  }

  /** Runs events until simulated time `untilMs`, settling every promise between two events. */
  async runUntil (untilMs: number, stop?: () => boolean): Promise<void> {
    for (;;) {
      const next = this.#queue.peek()
      if (next === undefined || next.at > untilMs) break
      this.#queue.pop()
      this.now = next.at
      if (next.cancelled) continue
      const node = next.node
      if (node !== null) {
        if (node.life !== next.life || node.state === 'crashed') continue
        if (node.state === 'paused') { node.held.push(next); continue }
      }
      next.fn()
      // Every promise settles before simulated time moves on (events of one millisecond run back to back).
      await settle()
      this.#watch.check(this.now, this.#watched())
      if (stop?.() === true) return
    }
    this.now = Math.max(this.now, untilMs)
  }

  // ---- nodes ---------------------------------------------------------------

  start (node: SimNode): void {
    this.#watch.returns(this.now, node.id, this.#watched())
    this.#dispatchingTerm.delete(node.id)
    this.#draining.delete(node.id)
    node.state = 'up'
    node.held = []
    const sim = this
    const clock: Clock = {
      now: () => sim.now,
      after: (ms, fn) => {
        const e = sim.schedule(sim.now + ms, node, fn)
        return () => { e.cancelled = true }
      },
      every: (ms, fn) => {
        let cancelled = false
        let e: Event
        const arm = (): void => {
          e = sim.schedule(sim.now + ms, node, () => { if (!cancelled) { arm(); fn() } })
        }
        arm()
        return () => { cancelled = true; e.cancelled = true }
      }
    }
    const transport = this.#transport(node)
    const terms: TermStore = {
      read: async () => node.savedTerm,
      readGrant: async () => node.savedGrant,
      writeTermSync: term => { node.savedTerm = term },
      writeGrantSync: grant => {
        // While faults are injected, the disk sometimes refuses a write (an I/O error).
        if (this.#faulting && this.rng() < GRANT_WRITE_FAILURE_RATE) {
          this.log.push(`${this.#t()} ${node.id} disk refused grant ${grant.term} -> ${grant.leader}`)
          throw new Error('EIO: simulated write error')
        }
        node.savedGrant = { ...grant }
      }
    }
    const executor = this.#executor(node)
    let tasks: TaskRuntime | null = null
    const cluster = new ClusterRuntime({
      name: node.id,
      http: `http://${node.id}`,
      capacity: node.capacity,
      types: executor.types(),
      load: () => tasks?.load() ?? { running: 0, queued: 0 },
      terms,
      timings: coreTimings({ ...SIM_SETTINGS, quorum: this.quorum }),
      transport,
      clock,
      log: this.#silent,
      machineLoad: () => ({ cpu: 0, memory: 0 })
    }, node.savedTerm, node.savedGrant)
    tasks = new TaskRuntime({
      store: node.store,
      pool: executor,
      transport,
      cluster,
      clock,
      log: this.#silent,
      capacity: node.capacity,
      maxPayloadBytes: SIM_SETTINGS.maxPayloadBytes,
      maxFrameBytes: SIM_SETTINGS.maxRpcFrameBytes,
      defaultTimeoutMs: SIM_SETTINGS.defaultTimeoutMs,
      defaultMaxAttempts: DEFAULTS.defaultMaxAttempts,
      scheduler: { maxQueuedTasks: DEFAULTS.maxQueuedTasks, retryBaseMs: SIM_SETTINGS.retryBaseMs, retryMaxMs: SIM_SETTINGS.retryMaxMs, resultGraceMs: DEFAULTS.resultGraceMs, outstandingPerSlot: DEFAULTS.outstandingPerSlot },
      newId: () => `task-${String(this.#ids++).padStart(5, '0')}`,
      onDispatching: term => {
        this.#dispatchingTerm.set(node.id, term)
        this.log.push(`${this.#t()} ${node.id} dispatches as leader of term ${term}`)
        const set = this.dispatchers.get(term) ?? new Set()
        set.add(node.id)
        this.dispatchers.set(term, set)
      }
    })
    node.cluster = cluster
    node.tasks = tasks
    node.clock = clock
    cluster.onEvent(e => { this.#observe(node, cluster, e) })
    cluster.start()
    tasks.start()
    this.log.push(`${this.#t()} start ${node.id} (term ${node.savedTerm})`)
  }

  #observe (node: SimNode, cluster: ClusterRuntime, e: CoreEvent): void {
    if (e.type !== 'leader-changed') return
    const l = e.leader
    this.log.push(`${this.#t()} ${node.id} leader ${l === null ? 'none' : `${l.id} term ${l.term}`}`)
    void cluster
  }

  crash (node: SimNode): void {
    if (node.state === 'crashed') return
    this.#fault(`crash ${node.id}${node.cluster?.isLeader() === true ? ' (leader)' : ''}`)
    const leader = this.#watch.leaderBefore(this.#watched())
    this.#halt(node)
    this.#watch.faultApplied(this.now, leader, node.id, this.#watched())
  }

  /**
   * A graceful stop (SIGTERM): the node drains as the real one does (the
   * runtime's Drain, on this node's clock), announces that it left, and its
   * process ends; `then` runs once it has.
   */
  drain (node: SimNode, drainTimeoutMs: number, then: () => void): void {
    if (node.state !== 'up' || node.cluster === null || node.tasks === null || node.clock === null) return
    this.#fault(`drain ${node.id}${node.cluster.isLeader() ? ' (leader)' : ''} within ${drainTimeoutMs} ms`)
    const leader = this.#watch.leaderBefore(this.#watched())
    this.#draining.add(node.id)
    this.#watch.faultApplied(this.now, leader, node.id, this.#watched())
    const life = node.life
    const drain = new Drain({
      cluster: node.cluster,
      tasks: node.tasks,
      drainTimeoutMs,
      clock: node.clock,
      log: this.#silent,
      stopNode: async () => { if (node.life === life && node.state !== 'crashed') this.#halt(node) }
    })
    void drain.begin().then(outcome => {
      this.log.push(`${this.#t()} ${node.id} left (${outcome})`)
      then()
    })
  }

  /** The node's process ends: what it ran and held in memory is gone. */
  #halt (node: SimNode): void {
    this.#submitting -= this.#submitsOn.get(node) ?? 0
    this.#submitsOn.delete(node)
    for (const a of node.running) for (const c of a.cancelTimers) c()
    node.running.clear()
    node.queued = []
    node.cluster = null
    node.tasks = null
    node.clock = null
    this.#leaveNetwork(node)
  }

  /**
   * The node's process is gone (crashed, or its transport stopped): its events
   * and timers vanish, streams to it reset, and peers connected to it see the
   * connection close.
   */
  #leaveNetwork (node: SimNode): void {
    node.state = 'crashed'
    node.life++
    node.held = []
    node.heartbeatHandler = null
    node.disconnectHandler = null
    node.requestHandler = null
    for (const p of [...this.#pending]) {
      if (p.to !== node) continue
      this.#pending.delete(p)
      this.schedule(this.now + 1 + Math.floor(this.rng() * 10), p.from, () => { p.reject(new Error('stream reset: peer gone')) }, p.fromLife)
    }
    for (const other of this.nodes) {
      if (other === node || other.state === 'crashed' || !this.#connected(node, other)) continue
      this.schedule(this.now + 1 + Math.floor(this.rng() * 20), other, () => { other.disconnectHandler?.(node.id) })
    }
  }

  pause (node: SimNode): void {
    if (node.state !== 'up') return
    this.#fault(`pause ${node.id}${node.cluster?.isLeader() === true ? ' (leader)' : ''}`)
    const leader = this.#watch.leaderBefore(this.#watched())
    node.state = 'paused'
    this.#watch.faultApplied(this.now, leader, node.id, this.#watched())
  }

  resume (node: SimNode): void {
    if (node.state !== 'paused') return
    this.log.push(`${this.#t()} resume ${node.id}`)
    this.#watch.returns(this.now, node.id, this.#watched())
    node.state = 'up'
    const held = node.held
    node.held = []
    for (const e of held) this.schedule(this.now, node, e.fn)
  }

  partition (groups: SimNode[][]): void {
    this.#fault(`partition ${groups.map(g => g.map(n => n.id).join(',')).join(' | ')}`)
    const leader = this.#watch.leaderBefore(this.#watched())
    groups.forEach((g, i) => { for (const n of g) this.#group.set(n.id, i + 1) })
    this.#watch.faultApplied(this.now, leader, null, this.#watched())
    // Sometimes the cut is noticed as closed connections, sometimes only as silence.
    if (this.rng() < 0.5) {
      for (const a of this.nodes) {
        for (const b of this.nodes) {
          if (a !== b && !this.#connected(a, b) && a.state === 'up') this.schedule(this.now + 1 + Math.floor(this.rng() * 50), a, () => { a.disconnectHandler?.(b.id) })
        }
      }
    }
  }

  heal (): void {
    this.log.push(`${this.#t()} heal`)
    this.#watch.healed(this.now)
    for (const id of this.#group.keys()) this.#group.set(id, 0)
    // Gossip hands on what the partition held back, within the network's delays (so in any order).
    for (const m of this.#cutOff) {
      if (this.now - m.sentMs > this.#replayMs || m.to.state === 'crashed') continue
      this.#deliverHeartbeat(m.from, m.to, m.bytes, this.now + 1 + Math.floor(this.rng() * NET_MAX_DELAY_MS))
    }
    this.#cutOff = []
  }

  /** Delivers a heartbeat at `atMs` if the link is still whole then (a paused receiver reads it when it resumes). */
  #deliverHeartbeat (from: SimNode, to: SimNode, bytes: Uint8Array, atMs: number): void {
    this.schedule(atMs, to, () => {
      if (this.#connected(from, to)) to.heartbeatHandler?.(decodeHeartbeat(bytes))
    })
  }

  /** Keeps a heartbeat that the partition kept from `to`, for the replay at the heal. */
  #holdBack (from: SimNode, to: SimNode, bytes: Uint8Array): void {
    if (this.#replayMs <= 0) return
    if ((this.#cutOff[0]?.sentMs ?? this.now) < this.now - 2 * this.#replayMs) this.#cutOff = this.#cutOff.filter(m => m.sentMs >= this.now - this.#replayMs)
    this.#cutOff.push({ sentMs: this.now, from, to, bytes })
  }

  #watched (): WatchedNode[] {
    return this.nodes.map(n => {
      const l = n.cluster?.leader() ?? null
      const leads = n.cluster?.isLeader() ?? false
      const dispatching = leads && l !== null && this.#dispatchingTerm.get(n.id) === l.term
      return { id: n.id, state: n.state === 'crashed' || this.#draining.has(n.id) ? 'down' : n.state, leads, dispatching, names: l === null ? null : { id: l.id, term: l.term }, side: this.#group.get(n.id) ?? 0 }
    })
  }

  #connected (a: SimNode, b: SimNode): boolean {
    return this.#group.get(a.id) === this.#group.get(b.id)
  }

  #fault (what: string): void {
    this.#faults++
    this.log.push(`${this.#t()} FAULT ${what}`)
  }

  #t (): string {
    return `+${String(this.now - 1_700_000_000_000).padStart(6)}ms`
  }

  // ---- the network ---------------------------------------------------------

  #delay (): number {
    return this.#faultyNetwork ? 1 + Math.floor(this.rng() * NET_MAX_DELAY_MS) : 0
  }

  /**
   * Brings a node up on the network alone (no runtimes) and returns its
   * transport: for the transport contract suite, which drives it in real time.
   */
  attachTransport (node: SimNode): ClusterTransport {
    node.state = 'up'
    return this.#transport(node)
  }

  #transport (node: SimNode): ClusterTransport {
    const sim = this
    const life = node.life
    return {
      id: node.id,
      addresses: () => [],
      publishHeartbeat: async hb => {
        sim.#checkDurableTerm(node, 'heartbeat', hb.term)
        const bytes = encodeHeartbeat(hb)
        for (const to of sim.nodes) {
          if (to === node || to.state === 'crashed') continue
          if (!sim.#connected(node, to)) { sim.#holdBack(node, to, bytes); continue }
          if (sim.#faultyNetwork && sim.rng() < 0.03) continue
          sim.#deliverHeartbeat(node, to, bytes, sim.now + sim.#delay())
        }
      },
      onHeartbeat: h => { if (node.life === life) node.heartbeatHandler = h },
      onPeerDisconnected: h => { if (node.life === life) node.disconnectHandler = h },
      keepConnected: () => {},
      onRequest: h => { if (node.life === life) node.requestHandler = h },
      // As a stopped libp2p node: no more requests or heartbeats; peers see its connections close.
      stop: async () => { if (node.life === life && node.state !== 'crashed') sim.#leaveNetwork(node) },
      request: async (toId, msg, timeoutMs) => await new Promise<RpcReply>((resolve, reject) => {
        if (msg.kind === 'inventory' || msg.kind === 'assign') sim.#checkDurableTerm(node, msg.kind, msg.term)
        const to = sim.nodes.find(n => n.id === toId)
        // Whatever comes back belongs to this life of the caller: after a crash it goes nowhere.
        const toCaller = (fn: () => void): Event => sim.schedule(sim.now + sim.#delay(), node, fn, life)
        let done = false
        const pending = { from: node, fromLife: life, to: to ?? node, reject: (err: Error) => { finish(() => { reject(err) }) } }
        const finish = (fn: () => void): void => {
          if (done) return
          done = true
          timer.cancelled = true
          sim.#pending.delete(pending)
          fn()
        }
        const timer = sim.schedule(sim.now + timeoutMs, node, () => { finish(() => { reject(new Error(`request to ${toId} timed out`)) }) }, life)
        if (to === node) {
          // libp2p refuses to dial itself.
          toCaller(() => { finish(() => { reject(new Error('cannot dial self')) }) })
          return
        }
        if (to === undefined || to.state === 'crashed') {
          toCaller(() => { finish(() => { reject(new Error(`cannot dial ${toId}`)) }) })
          return
        }
        sim.#pending.add(pending)
        if (!sim.#connected(node, to)) return // the stream hangs until the timeout
        const roll = sim.#faultyNetwork ? sim.rng() : 1
        if (roll < 0.01) { // reset before the request arrives
          toCaller(() => { finish(() => { reject(new Error('stream reset')) }) })
          return
        }
        const lostReply = roll < 0.02 // the callee handles it, the reply is lost
        const bytes = encodeFrame(msg)
        if (TRACE !== undefined && new TextDecoder().decode(bytes).includes(TRACE)) sim.log.push(`${sim.#t()} ${node.id} -> ${to.id} ${new TextDecoder().decode(bytes).slice(0, 300)}`)
        const toLife = to.life
        sim.schedule(sim.now + sim.#delay(), to, () => {
          if (!sim.#connected(node, to)) return
          const decoded = decodeRequest(bytes)
          const termBefore = to.cluster?.term() ?? 0
          const handled = serve(to.requestHandler, decoded, node.id)
          void handled.then(reply => {
            if (to.life !== toLife || to.state === 'crashed') return
            if (decoded.kind === 'assign' && reply.kind === 'ok' && decoded.term < termBefore) {
              sim.violations.push({ kind: 'stale-assignment-accepted', detail: `${to.id} (term ${termBefore}) accepted an assignment of term ${decoded.term} from ${node.id}` })
            }
            if ((decoded.kind === 'assign' && reply.kind === 'ok') || (decoded.kind === 'inventory' && reply.kind === 'inventory')) {
              // The reply reveals a grant of the term to the caller: it must be on the granter's disk (or superseded by a newer one).
              const g = to.savedGrant
              if (g === null || g.term < decoded.term || (g.term === decoded.term && g.leader !== node.id)) {
                sim.violations.push({ kind: 'grant-revealed-before-durable', detail: `${to.id} answered ${decoded.kind} of term ${decoded.term} from ${node.id} with its disk holding grant ${JSON.stringify(g)}` })
              }
            }
            const back = encodeFrame(reply)
            if (TRACE !== undefined && (new TextDecoder().decode(back).includes(TRACE) || new TextDecoder().decode(bytes).includes(TRACE))) sim.log.push(`${sim.#t()} ${to.id} => ${node.id} (reply to ${decoded.kind}) ${new TextDecoder().decode(back).slice(0, 300)}`)
            if (lostReply) {
              toCaller(() => { finish(() => { reject(new Error('stream reset after the request was handled')) }) })
              return
            }
            toCaller(() => {
              if (sim.#connected(node, to)) finish(() => { resolve(decodeReply(back)) })
            })
          })
        })
      })
    }
  }

  /** A message carrying `term` leaves `node`: the term must already be on its disk. */
  #checkDurableTerm (node: SimNode, what: string, term: number): void {
    if (term > node.savedTerm) this.violations.push({ kind: 'term-revealed-before-durable', detail: `${node.id} sent a ${what} of term ${term} with term ${node.savedTerm} on disk` })
  }

  // ---- the handler pool ----------------------------------------------------

  #executor (node: SimNode): TaskExecutor {
    const sim = this
    const life = node.life
    const next = (): void => {
      while (node.life === life && node.running.size < node.capacity && node.queued.length > 0) {
        const a = node.queued.shift()!
        node.running.add(a)
        begin(a)
      }
    }
    const end = (a: SimAttempt, outcome: AttemptOutcome): void => {
      if (node.life !== life || !node.running.has(a)) return
      node.running.delete(a)
      for (const c of a.cancelTimers) c()
      a.resolve(outcome)
      next()
    }
    const begin = (a: SimAttempt): void => {
      const { input } = a
      sim.starts.push({ task: input.taskId, node: node.id, attempt: input.attempt, atMs: sim.now, parents: input.parents })
      input.onStarted?.()
      const payload = input.payload as { ms: number }
      const timeout = sim.schedule(sim.now + input.timeoutMs, node, () => { end(a, { ok: false, error: `timed out after ${input.timeoutMs} ms` }) })
      const finish = sim.schedule(sim.now + payload.ms, node, () => {
        sim.executions.push({ task: input.taskId, node: node.id, attempt: input.attempt, assignTerm: a.assignTerm, atMs: sim.now })
        end(a, input.type === 'fail' ? { ok: false, error: 'failed on purpose' } : { ok: true, result: input.payload })
      })
      a.cancelTimers.push(() => { timeout.cancelled = true }, () => { finish.cancelled = true })
    }
    return {
      types: () => ['echo', 'fail'],
      supports: type => type === 'echo' || type === 'fail',
      run: async input => await new Promise<AttemptOutcome>(resolve => {
        // The worker passes on the term and leader of the assignment (a leader's to itself included).
        const from = input.assignment ?? { term: -1, leader: '' }
        const a: SimAttempt = { input, resolve, assignTerm: from.term, assignLeader: from.leader, cancelTimers: [] }
        const terms = sim.#ranFrom.get(node.id) ?? new Map<number, Set<string>>()
        sim.#ranFrom.set(node.id, terms)
        terms.set(from.term, (terms.get(from.term) ?? new Set()).add(from.leader))
        const onAbort = (): void => {
          const i = node.queued.indexOf(a)
          if (i >= 0) { node.queued.splice(i, 1); resolve({ ok: false, error: 'cancelled by request', cancelled: true }); return }
          sim.schedule(sim.now + 1, node, () => { end(a, { ok: false, error: 'cancelled by request', cancelled: true }) })
        }
        input.signal.addEventListener('abort', onAbort, { once: true })
        node.queued.push(a)
        sim.schedule(sim.now + Math.floor(sim.rng() * 3), node, next)
      })
    }
  }

  // ---- workload ------------------------------------------------------------

  /**
   * Submits tasks to a node as a client would (the HTTP route calls the same
   * method); counts them once accepted. Some clients put an idempotency key
   * on every task, and when a submit is refused, or not answered within
   * 150-600 ms, resubmit the same tasks with the same keys to another node,
   * at most twice (as the chaos workload's lanes would with keys): the first
   * submit may still be being stored, or answered later.
   */
  submit (node: SimNode, count: number): void {
    const keyed = this.rng() < 0.3
    const inputs = Array.from({ length: count }, () => {
      const fail = this.rng() < 0.1
      // One task in six is delayed by up to 3 s (its runAt must survive the faults, and nothing may start before it).
      const delayMs = this.rng() < 1 / 6 ? 1 + Math.floor(this.rng() * 3_000) : undefined
      return {
        type: fail ? 'fail' as const : 'echo' as const,
        payload: { ms: 5 + Math.floor(this.rng() * 300), n: Math.floor(this.rng() * 1e9) },
        maxAttempts: fail ? 2 : 20,
        ...(delayMs === undefined ? {} : { delayMs }),
        ...(keyed ? { idempotencyKey: `k${this.seed}-${++this.#keys}` } : {})
      }
    })
    if (this.opts.dependencies === true) this.#addDependencies(inputs)
    this.#submitTo(node, inputs, keyed ? 2 : 0, this.now)
  }

  #keys = 0
  /** The dependency workload's own stream (the main one stays as it was). */
  readonly #depRng: () => number
  /** Which crashes are kills that last until the faults stop (the `kills` option). */
  readonly #killRng: () => number

  /** A batch becomes a chain or a small graph (each task on 1-2 earlier ones), and a task may depend on one accepted earlier. */
  #addDependencies (inputs: SimInput[]): void {
    const r = this.#depRng
    if (inputs.length > 1 && r() < 0.5) {
      inputs.forEach((t, i) => { t.ref = `r${i}` })
      for (let i = 1; i < inputs.length; i++) {
        const parents = new Set([`r${i - 1}`])
        if (i > 1 && r() < 0.3) parents.add(`r${Math.floor(r() * (i - 1))}`)
        inputs[i]!.dependsOn = [...parents]
      }
    }
    if (this.accepted.size > 0 && r() < 0.1) {
      const ids = [...this.accepted.keys()]
      inputs[0]!.dependsOn = [...(inputs[0]!.dependsOn ?? []), ids[Math.floor(r() * ids.length)]!]
    }
  }

  /** `firstAt`: when the first submit of these tasks began (a resubmitted key may name a task created then). */
  #submitTo (node: SimNode, inputs: SimInput[], retries: number, firstAt: number): void {
    const tasks = node.tasks
    if (tasks === null) return
    const at = this.now
    const life = node.life
    let retried = false
    const retry = (): void => {
      if (retried || retries === 0) return
      retried = true
      const others = this.nodes.filter(n => n.state === 'up' && n !== node)
      const next = others[Math.floor(this.rng() * others.length)]
      if (next !== undefined) this.#submitTo(next, inputs, retries - 1, firstAt)
    }
    if (retries > 0) this.schedule(this.now + 150 + Math.floor(this.rng() * 450), null, retry)
    this.#submitting++
    this.#submitsOn.set(node, (this.#submitsOn.get(node) ?? 0) + 1)
    tasks.submit(inputs).then(ids => {
      // Accepted means durable: a task this node stored for two copies is on two disks when its submit is
      // answered (the origin writes its own copy while the second one travels: both writes end before the
      // answer). Tasks answered for a key held here as another origin's copy are not checked.
      for (const id of new Set(ids)) {
        const rec = node.store.get(id)
        const onDisk = this.#holdersOf(id).length
        if (rec !== undefined && rec.origin === node.id && copiesOf(rec) >= 2 && onDisk < 2) this.violations.push({ kind: 'accepted-before-two-copies', detail: `${node.id} answered a submit with ${id} stored on ${onDisk} node(s) (${rec.status}, attempts ${rec.attempts}, replicas ${rec.replicas.join(',')})` })
      }
      ids.forEach((id, i) => {
        const delayMs = inputs[i]!.delayMs
        const known = this.accepted.get(id)
        // The origin turns delayMs into runAt on its clock, when the submit begins. A task answered for a
        // resubmitted key may have been created by an earlier submit of the same tasks: firstAt + delayMs
        // bounds the runAt of every task these submits created from below.
        if (known !== undefined) return
        const parents = (inputs[i]!.dependsOn ?? []).map(p => { const j = inputs.findIndex(t => t.ref === p); return j >= 0 ? ids[j]! : p })
        this.accepted.set(id, { id, type: inputs[i]!.type, payload: inputs[i]!.payload, cancelRequested: false, atMs: firstAt, runAt: delayMs === undefined ? null : firstAt + delayMs, retried: 0, parents })
      })
      retried = true
    }, () => {
      // Refused (no leader, no second holder, ...): the client was told and nothing was accepted.
      retry()
    })
      .finally(() => {
        if (node.life !== life) return
        this.#submitting--
        this.#submitsOn.set(node, (this.#submitsOn.get(node) ?? 1) - 1)
      })
  }

  cancel (node: SimNode, id: string): void {
    const tasks = node.tasks
    const acc = this.accepted.get(id)
    if (tasks === null || acc === undefined) return
    acc.cancelRequested = true
    const generation = acc.retried
    tasks.cancel(id).then(r => {
      if (r.status !== 'cancelled') return
      // Answered `cancelled` only once a holder recorded it (a result may still outrank it later, after a fault: counted).
      if (!this.#recordedCancelled.has(id)) this.violations.push({ kind: 'cancel-answered-unrecorded', detail: `${id}: a cancel was answered "cancelled" before any holder recorded it` })
      ;(acc.cancelAnswers ??= []).push(generation)
    }, () => {})
  }

  /** A user's retry (accepted only for a failed or cancelled task): the task must then end in that generation or a later one. */
  retry (node: SimNode, id: string): void {
    const tasks = node.tasks
    const acc = this.accepted.get(id)
    if (tasks === null || acc === undefined) return
    const life = node.life
    // Counted as a submit in flight: the run settles only once every retry was answered (one may take a while under faults).
    this.#submitting++
    this.#submitsOn.set(node, (this.#submitsOn.get(node) ?? 0) + 1)
    tasks.retry(id).then(r => {
      this.log.push(`${this.#t()} ${node.id} retried ${id} (generation ${r.retries})`)
      acc.retried = Math.max(acc.retried, r.retries)
      this.#ended.delete(id)
    }, () => { /* not retryable now, or no leader: refused (a leader that lost office after its holders stored the new generation refuses too, yet the task runs again: #watchEndings sees it reopen) */ })
      .finally(() => {
        if (node.life !== life) return
        this.#submitting--
        this.#submitsOn.set(node, (this.#submitsOn.get(node) ?? 1) - 1)
      })
  }

  // ---- a whole run -----------------------------------------------------------

  async run (): Promise<TaskSimReport> {
    const faultMs = this.opts.faultMs ?? 12_000
    const settleMs = this.opts.settleMs ?? 60_000
    const t0 = this.now
    // Nodes start within a second of each other.
    for (const n of this.nodes) this.schedule(t0 + Math.floor(this.rng() * 1_000), null, () => { this.start(n) })
    // Load: a submit every 20-120 ms to a random node, from 1.5 s on.
    for (let t = t0 + 1_500; t < t0 + faultMs; t += 20 + Math.floor(this.rng() * 100)) {
      const pick = this.rng()
      const count = this.rng() < 0.2 ? 2 + Math.floor(this.rng() * 30) : 1
      this.schedule(t, null, () => {
        const up = this.nodes.filter(n => n.state === 'up')
        const node = up[Math.floor(pick * up.length)]
        if (node !== undefined) this.submit(node, count)
        if (this.rng() < 0.03 && node !== undefined && this.accepted.size > 0) {
          const ids = [...this.accepted.keys()]
          this.cancel(node, ids[Math.floor(this.rng() * ids.length)]!)
        }
        if (this.rng() < 0.1 && node !== undefined && this.accepted.size > 0) {
          // Mostly a task some holder has as failed or cancelled (a retry of anything else is refused).
          const ended = [...this.accepted.keys()].filter(id => this.#holdersOf(id).some(h => h.rec.status === 'failed' || h.rec.status === 'cancelled'))
          const ids = ended.length > 0 && this.rng() < 0.8 ? ended : [...this.accepted.keys()]
          this.retry(node, ids[Math.floor(this.rng() * ids.length)]!)
        }
      })
    }
    // Faults: one every 0.4-2 s from 2.5 s on, each undone within a few seconds.
    for (let t = t0 + 2_500; t < t0 + faultMs - 1_000; t += 400 + Math.floor(this.rng() * 1_600)) {
      const kind = this.rng()
      const pick = this.rng()
      const lengthMs = 200 + Math.floor(this.rng() * 3_000)
      const leaderBias = this.rng() < 0.5
      this.schedule(t, null, () => {
        const live = this.nodes.filter(n => n.state !== 'crashed')
        const leader = live.find(n => n.cluster?.isLeader() === true)
        const victim = leaderBias && leader !== undefined ? leader : live[Math.floor(pick * live.length)]
        if (victim === undefined) return
        if (kind < 0.45) {
          if (this.nodes.filter(n => n.state === 'crashed').length >= Math.ceil(this.nodes.length / 2) - 1) return
          // A kill (the `kills` option) stays down until the faults stop, when every crashed node starts again.
          const kill = this.opts.kills === true && this.#killRng() < 1 / 3
          const restart = (): void => {
            if (!kill) this.schedule(this.now + lengthMs, null, () => { if (victim.state === 'crashed') this.start(victim) })
            // A kill's drain that ends after the faults stopped: the restart of every crashed node has passed it.
            else if (!this.#faulting && victim.state === 'crashed') this.start(victim)
          }
          // A third of the stops are graceful: some drains finish in time, some time out.
          if (kind < 0.3) {
            this.crash(victim)
            restart()
          } else this.drain(victim, lengthMs, restart)
        } else if (kind < 0.65) {
          this.pause(victim)
          this.schedule(this.now + lengthMs, null, () => { this.resume(victim) })
        } else {
          const shuffled = [...this.nodes].sort(() => this.rng() - 0.5)
          const cut = 1 + Math.floor(this.rng() * (this.nodes.length - 1))
          this.partition([shuffled.slice(0, cut), shuffled.slice(cut)])
          this.schedule(this.now + lengthMs, null, () => { this.heal() })
        }
      })
    }
    await this.runUntil(t0 + faultMs)
    // Faults stop: heal, resume and restart everything, then wait for every accepted task to end.
    this.#faulting = false
    this.heal()
    for (const n of this.nodes) {
      if (n.state === 'paused') this.resume(n)
      if (n.state === 'crashed') this.start(n)
    }
    const settleStart = this.now
    let settledAfterMs: number | null = null
    const deadline = settleStart + settleMs
    while (this.now < deadline) {
      await this.runUntil(this.now + 250)
      if (this.#allSettled()) { settledAfterMs = this.now - settleStart; break }
    }
    // Let final updates travel before checking every holder.
    await this.runUntil(this.now + 2_000)
    this.#check(settledAfterMs !== null)
    const finals = [...this.accepted.keys()].map(id => this.#record(id)).filter((r): r is TaskRecord => r !== undefined)
    const singleCopy = [...this.accepted.keys()].filter(id => this.#holdersOf(id).length === 1).length
    // The runtimes are dropped with their pending events; only the stores hold resources.
    for (const n of this.nodes) n.store.close()
    const byTask = new Map<string, number>()
    for (const e of this.executions) byTask.set(e.task, (byTask.get(e.task) ?? 0) + 1)
    return {
      seed: this.seed,
      nodes: this.nodes.length,
      quorum: this.quorum,
      accepted: this.accepted.size,
      delayed: [...this.accepted.values()].filter(a => a.runAt !== null).length,
      retried: [...this.accepted.values()].filter(a => a.retried > 0).length,
      withParents: [...this.accepted.values()].filter(a => a.parents.length > 0).length,
      succeeded: finals.filter(r => r.status === 'succeeded').length,
      failed: finals.filter(r => r.status === 'failed').length,
      cancelled: finals.filter(r => r.status === 'cancelled').length,
      executions: this.executions.length,
      duplicates: [...byTask.values()].filter(c => c > 1).length,
      cancelsOverturned: this.#cancelsOverturned,
      singleCopy,
      faults: this.#faults,
      leaders: this.dispatchers.size,
      settledAfterMs,
      violations: this.violations,
      log: this.log
    }
  }

  /** The record of a task on any node (the first terminal one found, else any). */
  #record (id: string): TaskRecord | undefined {
    let any: TaskRecord | undefined
    for (const n of this.nodes) {
      const r = n.store.get(id)
      if (r === undefined) continue
      if (isTerminal(r.status)) return r
      any ??= r
    }
    return any
  }

  #holdersOf (id: string): Array<{ node: SimNode, rec: TaskRecord }> {
    return this.nodes.flatMap(node => {
      const rec = node.store.get(id)
      return rec === undefined ? [] : [{ node, rec }]
    })
  }

  /** Tasks found terminal and alike on every holder (checked again at the end). */
  readonly #ended = new Set<string>()

  /** Submits not yet answered (by a node that is still up). */
  #submitting = 0
  readonly #submitsOn = new Map<SimNode, number>()

  #allSettled (): boolean {
    if (this.#submitting > 0) return false
    for (const id of this.accepted.keys()) {
      if (this.#ended.has(id)) continue
      const holders = this.#holdersOf(id)
      if (holders.length === 0 || holders.some(h => !isTerminal(h.rec.status))) return false
      // Holders that saw different endings converge by passing them on: settled once they agree.
      const key = (r: TaskRecord): string => JSON.stringify([r.status, r.attempts, r.worker, r.result, r.retries ?? 0])
      if (holders.some(h => key(h.rec) !== key(holders[0]!.rec))) return false
      this.#ended.add(id)
    }
    return true
  }

  /**
   * Dependencies: an attempt of a task with parents began only after each
   * parent ran to a success, and saw every parent's result (its payload,
   * for an echo) in ctx.parents; such a task that began has only succeeded
   * parents.
   */
  #checkDependencies (ranToEnd: Map<string, Execution[]>): void {
    const v = this.violations
    for (const st of this.starts) {
      const acc = this.accepted.get(st.task)
      if (acc === undefined || acc.parents.length === 0) continue
      const expected: Record<string, unknown> = {}
      for (const p of acc.parents) {
        const parent = this.accepted.get(p)
        if (parent === undefined) continue
        expected[p] = parent.payload
        const ok = parent.type === 'echo' && (ranToEnd.get(p) ?? []).some(e => e.atMs <= st.atMs)
        if (!ok) v.push({ kind: 'started-before-parents', detail: `${st.task} attempt ${st.attempt} began on ${st.node} at +${st.atMs - 1_700_000_000_000}ms before its parent ${p} (${parent.type}) had succeeded` })
        const end = endOf(this.#holdersOf(p))
        if (end !== undefined && end.status !== 'succeeded') v.push({ kind: 'ran-after-parent-failed', detail: `${st.task} began although its parent ${p} ended ${end.status}` })
      }
      if (JSON.stringify(st.parents) !== JSON.stringify(expected)) v.push({ kind: 'wrong-parents', detail: `${st.task} attempt ${st.attempt} saw ctx.parents ${JSON.stringify(st.parents)}, not ${JSON.stringify(expected)}` })
    }
  }

  /**
   * The task failed because a parent of its own ended without success: its
   * final ending, or one some holder recorded before a success beat it (two
   * endings of one task exist only after a fault, say a cancel racing the
   * task's success across a leader change; the child keeps the failure it
   * was given, as the docs say), or before a user's retry.
   */
  #failedForParent (acc: Accepted, rec: TaskRecord): boolean {
    const named = /^parent task "([^"]+)" (failed|was cancelled)/.exec(rec.error ?? '')?.[1]
    if (named === undefined || !acc.parents.includes(named)) return false
    const parent = this.accepted.get(named)
    if (parent === undefined) return false
    const end = endOf(this.#holdersOf(named))
    return parent.retried > 0 || (end !== undefined && end.status !== 'succeeded') || this.#endedWithoutSuccess.has(named)
  }

  #check (settled: boolean): void {
    const v = this.violations
    for (const detail of this.#watch.violations) v.push({ kind: 'leader-changed-without-a-forcing-fault', detail })
    for (const [term, ids] of this.dispatchers) {
      if (ids.size > 1 && this.quorum > this.nodes.length / 2) v.push({ kind: 'two-leaders-one-term', detail: `term ${term} led (dispatched) by ${[...ids].join(', ')}` })
    }
    for (const [worker, terms] of this.#ranFrom) {
      for (const [term, leaders] of terms) {
        if (leaders.size > 1) v.push({ kind: 'one-term-two-leaders-on-a-worker', detail: `${worker} ran assignments of term ${term} from ${[...leaders].join(', ')}` })
      }
    }
    const ranToEnd = new Map<string, Execution[]>()
    for (const e of this.executions) ranToEnd.set(e.task, [...(ranToEnd.get(e.task) ?? []), e])
    for (const st of this.starts) {
      const runAt = this.accepted.get(st.task)?.runAt ?? null
      if (runAt !== null && st.atMs < runAt) v.push({ kind: 'started-before-run-at', detail: `${st.task} attempt ${st.attempt} began on ${st.node} at +${st.atMs - 1_700_000_000_000}ms, before its runAt +${runAt - 1_700_000_000_000}ms` })
    }
    this.#checkDependencies(ranToEnd)
    for (const e of this.executions) {
      if (e.assignTerm < 0) v.push({ kind: 'execution-without-assignment', detail: `${e.task} ran on ${e.node} without an assignment` })
    }
    for (const acc of this.accepted.values()) {
      const holders = this.#holdersOf(acc.id)
      if (holders.length === 0) { v.push({ kind: 'lost', detail: `${acc.id} accepted at +${acc.atMs - 1_700_000_000_000}ms is held by no node` }); continue }
      const unfinished = holders.filter(h => !isTerminal(h.rec.status))
      if (unfinished.length > 0) {
        v.push({ kind: settled ? 'holders-disagree' : 'not-terminal', detail: `${acc.id}: ${holders.map(h => `${h.node.id}=${h.rec.status}/${h.rec.attempts}`).join(' ')}` })
        continue
      }
      const first = holders[0]!.rec
      if ((first.retries ?? 0) < acc.retried) v.push({ kind: 'retry-lost', detail: `${acc.id}: a retry to generation ${acc.retried} was accepted, yet it ended in generation ${first.retries ?? 0}` })
      for (const h of holders.slice(1)) {
        if ((h.rec.retries ?? 0) !== (first.retries ?? 0)) {
          v.push({ kind: 'two-generations', detail: `${acc.id}: ${holders.map(h => `${h.node.id}=${h.rec.status}/${h.rec.retries ?? 0}`).join(' ')}` })
          break
        }
        if (h.rec.status !== first.status || JSON.stringify(h.rec.result) !== JSON.stringify(first.result) || h.rec.attempts !== first.attempts || h.rec.worker !== first.worker) {
          v.push({ kind: 'two-terminal-records', detail: `${acc.id}: ${holders.map(h => `${h.node.id}=${h.rec.status}/${h.rec.attempts}/${h.rec.worker ?? '-'}`).join(' ')}` })
          break
        }
      }
      if (first.status !== 'cancelled' && (acc.cancelAnswers ?? []).includes(first.retries ?? 0)) this.#cancelsOverturned++
      const runs = ranToEnd.get(acc.id) ?? []
      if (first.status === 'succeeded') {
        if (acc.type !== 'echo') v.push({ kind: 'wrong-outcome', detail: `${acc.id} (${acc.type}) succeeded` })
        else if (JSON.stringify(first.result) !== JSON.stringify(acc.payload)) v.push({ kind: 'wrong-result', detail: `${acc.id}: ${JSON.stringify(first.result)} != ${JSON.stringify(acc.payload)}` })
        if (!runs.some(r => r.node === first.worker)) v.push({ kind: 'result-without-execution', detail: `${acc.id} succeeded on ${first.worker ?? '-'}, which never ran it to the end` })
      } else if (first.status === 'cancelled') {
        if (!acc.cancelRequested) v.push({ kind: 'wrong-outcome', detail: `${acc.id} cancelled without a request (${first.error ?? ''}, ${first.attempts} attempts, last on ${first.worker ?? '-'})` })
      } else if (acc.type === 'echo' && !acc.cancelRequested && !/lost with its worker|assignment not accepted|timed out/.test(first.error ?? '') && !this.#failedForParent(acc, first)) {
        v.push({ kind: 'wrong-outcome', detail: `${acc.id} (echo) failed: ${first.error ?? ''}` })
      }
    }
  }
}

/** The ended record every holder of `id` agrees on (the first holder's), if any. */
function endOf (holders: Array<{ rec: TaskRecord }>): TaskRecord | undefined {
  const first = holders[0]?.rec
  return first !== undefined && isTerminal(first.status) ? first : undefined
}

/**
 * Runs a request handler as the real transport's serving side does: no
 * handler yet answers STARTING, and a handler's error goes back as an error
 * reply (a refusal's own code, or INTERNAL) instead of failing the caller's request.
 */
async function serve (handler: ((msg: RpcRequest, from: string) => Promise<RpcReply>) | null, msg: RpcRequest, from: string): Promise<RpcReply> {
  const asReply = (err: unknown): RpcReply => replyOfError(err)
  if (handler === null) return refusal('STARTING', 'node is starting')
  let handled: Promise<RpcReply>
  try {
    handled = handler(msg, from)
  } catch (err) {
    return asReply(err)
  }
  return await handled.catch(asReply)
}

/** Lets every pending promise (and what it triggers) settle: the runtime does no real I/O in the simulation. */
async function settle (): Promise<void> {
  await new Promise<void>(resolve => { setImmediate(resolve) })
}

/** Runs one seed. */
export async function runTaskSim (opts: TaskSimOptions): Promise<TaskSimReport> {
  return await new TaskSim(opts).run()
}
