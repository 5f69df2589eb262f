/**
 * Prometheus metrics of one node (prom-client). Each node has its own
 * Registry, so several nodes in one process never collide on the global one.
 * Counters are fed by the events the runtime already emits (task records
 * changing in the store, membership and leader changes, RPC frames); gauges
 * are read from the runtime when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ClusterSnapshot } from './core/cluster-core.ts'
import { isTerminal } from './core/tasks.ts'
import type { TaskRecord, TaskStatus } from './core/tasks.ts'
import type { CoreEvent } from './core/types.ts'

export interface MetricsSources {
  /** The membership view (undefined while the node starts). */
  snapshot: () => ClusterSnapshot | undefined
  /** Attempts running here and, on the leader, tasks waiting. */
  load: () => { running: number, queued: number }
  /** Records held here, by status and type. */
  taskCounts: () => Array<{ status: TaskStatus, type: string, n: number }>
  /** Clients following GET /v1/events. */
  eventStreams: () => number
  /** Requests waiting (`?wait=`) on this node now. */
  longPolls: () => number
  /** Requests that waited on this node so far, by route (task, submit, batch, wait). */
  longPollsBegun: () => Record<string, number>
}

/** Seconds: from 1 ms to 10 minutes. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600]

/** Sampling period of the nodejs_eventloop_lag_* figures (monitorEventLoopDelay's resolution). */
const EVENT_LOOP_SAMPLE_MS = 100

export class NodeMetrics {
  readonly registry = new Registry()
  readonly #transitions: Counter<'state' | 'type'>
  readonly #runSeconds: Histogram<'type' | 'state'>
  readonly #latencySeconds: Histogram<'type' | 'state'>
  readonly #leaderChanges: Counter
  readonly #memberChanges: Counter<'to'>
  readonly #rpcMessages: Counter<'direction' | 'kind'>
  readonly #rpcBytes: Counter<'direction' | 'kind'>

  constructor (sources: MetricsSources) {
    const registers = [this.registry]
    // Event-loop delay sampled every 100 ms (prom-client's default, 10 ms, wakes an idle node 100 times a second).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
    // prom-client also adds gauges named nodejs_active_{handles,requests,resources}_total:
    // a gauge with a counter's suffix, which `promtool check metrics` rejects.
    // The same figures stay as the by-type gauges without the suffix
    // (sum(nodejs_active_handles) is the total).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name)
    this.#transitions = new Counter({ name: 'taskmesh_task_transitions_total', help: 'Task records held here that entered each state, by task type', labelNames: ['state', 'type'], registers })
    this.#runSeconds = new Histogram({ name: 'taskmesh_task_run_seconds', help: 'Run time of the last attempt of tasks that ended (started to finished), recorded by their holders', labelNames: ['type', 'state'], buckets: DURATION_BUCKETS, registers })
    this.#latencySeconds = new Histogram({ name: 'taskmesh_task_latency_seconds', help: 'End-to-end latency of tasks that ended (submitted to finished), recorded by their holders', labelNames: ['type', 'state'], buckets: DURATION_BUCKETS, registers })
    this.#leaderChanges = new Counter({ name: 'taskmesh_leader_changes_total', help: 'Changes of the leader this node sees (including to none)', registers })
    this.#memberChanges = new Counter({ name: 'taskmesh_member_status_changes_total', help: 'Members this node saw change status, by the new status', labelNames: ['to'], registers })
    this.#rpcMessages = new Counter({ name: 'taskmesh_rpc_messages_total', help: 'Frames of the node-to-node RPC protocol, by direction and message kind', labelNames: ['direction', 'kind'], registers })
    this.#rpcBytes = new Counter({ name: 'taskmesh_rpc_bytes_total', help: 'Bytes of RPC frames (before length prefix and encryption), by direction and message kind', labelNames: ['direction', 'kind'], registers })

    new Gauge({
      name: 'taskmesh_tasks', help: 'Task records held on this node, by state and type', labelNames: ['state', 'type'], registers,
      collect () {
        this.reset()
        for (const c of sources.taskCounts()) this.set({ state: c.status, type: c.type }, c.n)
      }
    })
    new Gauge({ name: 'taskmesh_queue_depth', help: 'Tasks waiting (queued or retrying) in this node\'s scheduler; non-zero only on the leader', registers, collect () { this.set(sources.load().queued) } })
    new Gauge({ name: 'taskmesh_tasks_running', help: 'Attempts running on this node', registers, collect () { this.set(sources.load().running) } })
    new Gauge({
      name: 'taskmesh_members', help: 'Members of the cluster as this node sees them, by status', labelNames: ['status'], registers,
      collect () {
        const counts = { alive: 0, suspect: 0, draining: 0, left: 0, dead: 0 }
        for (const m of sources.snapshot()?.members ?? []) counts[m.status]++
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
      }
    })
    new Gauge({ name: 'taskmesh_leader_term', help: 'Highest term this node knows', registers, collect () { this.set(sources.snapshot()?.term ?? 0) } })
    new Gauge({
      name: 'taskmesh_is_leader', help: '1 while this node leads', registers,
      collect () { const s = sources.snapshot(); this.set(s !== undefined && s.leader?.id === s.self.id ? 1 : 0) }
    })
    new Gauge({
      name: 'taskmesh_heartbeat_lag_seconds', help: 'Time since the last heartbeat of each other member that is not dead', labelNames: ['member'], registers,
      collect () {
        this.reset()
        const s = sources.snapshot()
        for (const m of s?.members ?? []) if (m.id !== s?.self.id && m.status !== 'dead' && m.status !== 'left') this.set({ member: m.name }, m.lastSeenMs / 1000)
      }
    })
    new Gauge({ name: 'taskmesh_event_streams', help: 'Clients following GET /v1/events', registers, collect () { this.set(sources.eventStreams()) } })
    new Gauge({ name: 'taskmesh_long_polls', help: 'Requests waiting (?wait=) on this node, at most maxLongPolls', registers, collect () { this.set(sources.longPolls()) } })
    new Counter({
      name: 'taskmesh_long_poll_requests_total', help: 'Requests that waited on this node, by route: task (GET /v1/tasks/:id?wait=), submit (POST /v1/tasks?wait=), batch (POST /v1/tasks/batch?wait=), wait (POST /v1/tasks/wait, one however many ids)', labelNames: ['route'], registers,
      collect () {
        this.reset()
        for (const [route, n] of Object.entries(sources.longPollsBegun())) this.inc({ route }, n)
      }
    })
  }

  /** Records inserted or changed in the store. */
  onTasks (records: readonly TaskRecord[]): void {
    for (const r of records) {
      this.#transitions.inc({ state: r.status, type: r.type })
      if (!isTerminal(r.status) || r.finishedAt === null) continue
      const labels = { type: r.type, state: r.status }
      if (r.startedAt !== null) this.#runSeconds.observe(labels, Math.max(0, r.finishedAt - r.startedAt) / 1000)
      this.#latencySeconds.observe(labels, Math.max(0, r.finishedAt - r.createdAt) / 1000)
    }
  }

  onCoreEvent (e: CoreEvent): void {
    if (e.type === 'leader-changed') this.#leaderChanges.inc()
    else if (e.type === 'member-status') this.#memberChanges.inc({ to: e.to })
  }

  onFrame (direction: 'sent' | 'received', kind: string, bytes: number): void {
    this.#rpcMessages.inc({ direction, kind })
    this.#rpcBytes.inc({ direction, kind }, bytes)
  }

  async text (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
