/**
 * Wires one node together: config -> transport (libp2p) + membership runtime + HTTP API.
 */
import { mkdir } from 'node:fs/promises'
import os from 'node:os'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { resolve } from 'node:path'
import { readableByOthers } from './config.ts'
import { coreTimings } from './timings.ts'
import type { ResolvedConfig } from './config.ts'
import { buildHttpServer } from './http/server.ts'
import { createLogger } from './log.ts'
import { Libp2pTransport } from './net/libp2p-transport.ts'
import { systemClock } from './runtime/clock.ts'
import type { Clock } from './runtime/clock.ts'
import { ClusterRuntime, fileTermStore } from './runtime/cluster-runtime.ts'
import { HandlerPool } from './exec/handler-pool.ts'
import { BODY_SLACK_BYTES, registerTaskRoutes } from './http/task-routes.ts'
import { MAX_WAIT_MS } from './protocol/constants.ts'
import { UnavailableError } from './errors.ts'
import { TaskRuntime } from './runtime/task-runtime.ts'
import { TaskStore } from './store/task-store.ts'
import { TypeLimitStore } from './store/type-limit-store.ts'
import { DeliveryStore } from './store/delivery-store.ts'
import { NodeMetrics } from './metrics.ts'
import { EventFeed } from './http/events.ts'
import { registerDashboard } from './http/dashboard.ts'
import { registerMetricsRoute } from './http/metrics-route.ts'
import { registerDrainRoute } from './http/drain-route.ts'
import { registerTypeRoutes } from './http/type-routes.ts'
import { registerScheduleRoutes } from './http/schedule-routes.ts'
import { ScheduleStore } from './store/schedule-store.ts'
import { Drain } from './runtime/drain.ts'
import type { DrainOutcome } from './runtime/drain.ts'

export type { DrainOutcome }

export interface RunningNode {
  id: string
  name: string
  /** Base URL of the HTTP API. */
  httpUrl: string
  /** libp2p addresses other nodes can dial. */
  addresses: string[]
  runtime: ClusterRuntime
  tasks: TaskRuntime
  /** The HTTP server (its routes, for tests and docs). */
  http: FastifyInstance
  log: Logger
  /** Stops at once: running attempts are stopped unreported (they run again elsewhere after the failure timeout). */
  stop (): Promise<void>
  /**
   * Drains (see src/runtime/drain.ts), then stops; resolves with how the
   * drain ended. Called again (or by `POST /v1/drain`), it joins the drain under way.
   */
  drain (): Promise<DrainOutcome>
  /** Cuts a drain under way short (a second signal): running attempts stop and run again elsewhere at once. */
  interruptDrain (): void
  /** Resolves once a drain (begun here or by `POST /v1/drain`) has ended and the node has stopped. */
  readonly drained: Promise<DrainOutcome>
}

export interface StartOptions {
  log?: Logger
  clock?: Clock
}

export async function startNode (config: ResolvedConfig, opts: StartOptions = {}): Promise<RunningNode> {
  const clock = opts.clock ?? systemClock
  const baseLog = opts.log ?? createLogger(config.logLevel)
  await mkdir(config.dataDir, { recursive: true })
  // Renamed below once the node's name (which needs its peer id) is known.
  let netLog = baseLog.child({ component: 'net' })
  let metrics: NodeMetrics | undefined
  // The task store first: it takes its file for itself (exclusive-db.ts), so a second node started on the same
  // data directory stops here, before its network layer joins the LAN with the first one's identity.
  const store = new TaskStore(config.dataDir)
  const transport = await Libp2pTransport.create({
    cluster: config.cluster,
    listen: config.listen,
    bootstrap: config.bootstrap,
    bootstrapRetryMs: config.bootstrapRetryMs,
    mdns: config.mdns,
    mdnsIntervalMs: config.mdnsIntervalMs,
    dataDir: config.dataDir,
    maxFrameBytes: config.maxRpcFrameBytes,
    maxFramesPerSecond: config.maxRpcFramesPerSecond,
    clusterKey: config.clusterKey,
    onFrame: (direction, kind, bytes) => { metrics?.onFrame(direction, kind, bytes) },
    warn: (msg, detail) => { netLog.warn(detail ?? {}, msg) },
    debug: (msg, detail) => { netLog.debug(detail ?? {}, msg) }
  }).catch((err: unknown) => {
    store.close()
    throw err
  })
  const name = config.name ?? `${os.hostname()}-${transport.id.slice(-6)}`
  const log = baseLog.child({ node: name })
  netLog = log.child({ component: 'net' })

  warnAboutSecurity(config, log)

  const limitStore = new TypeLimitStore(config.dataDir)
  const scheduleStore = new ScheduleStore(config.dataDir)
  const deliveryStore = new DeliveryStore(config.dataDir)
  const pool = new HandlerPool(config.capacity, config.handlers, config.baseDir, config.maxPayloadBytes, config.abortGraceMs)
  let runtime: ClusterRuntime | undefined
  let tasks: TaskRuntime | undefined
  const startedMs = clock.now()
  const events = new EventFeed({
    maxStreams: config.maxEventStreams,
    now: () => clock.now(),
    snapshot: () => runtime?.snapshot(),
    recentTasks: limit => store.list({ limit })
  })
  // Set once the task routes are registered (below).
  let longPolls = (): number => 0
  let longPollsBegun = (): Record<string, number> => ({})
  metrics = new NodeMetrics({
    snapshot: () => runtime?.snapshot(),
    load: () => tasks?.load() ?? { running: 0, queued: 0 },
    taskCounts: () => store.countsByType(),
    eventStreams: () => events.streams,
    longPolls: () => longPolls(),
    longPollsBegun: () => longPollsBegun()
  })
  const observed = metrics
  // Observers never fail the store's caller: the records are already committed.
  store.observe(records => {
    try {
      observed.onTasks(records)
      events.onTasks(records)
    } catch (err) {
      log.error({ err: (err as Error).message }, 'task observers failed')
    }
  })
  const http = await buildHttpServer({
    snapshot: () => {
      if (runtime === undefined) throw new Error('node is starting')
      return runtime.snapshot()
    },
    self: { id: transport.id, name },
    startedMs,
    now: () => clock.now(),
    log,
    bodyLimit: config.maxPayloadBytes + BODY_SLACK_BYTES,
    token: config.token
  })
  const routes = registerTaskRoutes(http, () => {
    if (tasks === undefined) throw new UnavailableError('node is starting')
    return tasks
  }, { maxPayloadBytes: config.maxPayloadBytes, maxBatchBodyBytes: Math.floor(config.maxRpcFrameBytes / 2), maxWaitMs: MAX_WAIT_MS, maxBatchTasks: config.maxBatchTasks, maxLongPolls: config.maxLongPolls })
  registerTypeRoutes(http, () => {
    if (tasks === undefined) throw new UnavailableError('node is starting')
    return tasks
  })
  registerScheduleRoutes(http, () => {
    if (tasks === undefined) throw new UnavailableError('node is starting')
    return tasks
  })
  longPolls = routes.longPolls
  longPollsBegun = routes.longPollsBegun
  events.register(http)
  registerMetricsRoute(http, observed)
  registerDashboard(http)
  // Set below, once the runtimes exist; the route only answers after the node has started.
  let beginDrain = (): void => { throw new UnavailableError('node is starting') }
  registerDrainRoute(http, { self: { id: transport.id, name }, drainTimeoutMs: config.drainTimeoutMs, begin: () => { beginDrain() } })
  http.addHook('preClose', async () => { events.stop() })
  try {
    await http.listen({ host: config.httpHost, port: config.httpPort })
  } catch (err) {
    await transport.stop()
    await pool.close()
    store.close()
    limitStore.close()
    scheduleStore.close()
    deliveryStore.close()
    throw new Error(`cannot listen for HTTP on ${config.httpHost}:${config.httpPort}: ${(err as Error).message}`)
  }
  const address = http.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.httpPort
  const host = config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost
  const httpUrl = `http://${host}:${port}`

  const terms = fileTermStore(config.dataDir)
  runtime = new ClusterRuntime({
    name,
    http: httpUrl,
    capacity: config.capacity,
    types: pool.types(),
    labels: config.labels,
    load: () => tasks?.load() ?? { running: 0, queued: 0 },
    terms,
    timings: coreTimings(config),
    transport,
    clock,
    log
  }, await terms.read(), await terms.readGrant())
  tasks = new TaskRuntime({
    store,
    pool,
    transport,
    cluster: runtime,
    clock,
    log: log.child({ component: 'tasks' }),
    capacity: config.capacity,
    maxPayloadBytes: config.maxPayloadBytes,
    maxFrameBytes: config.maxRpcFrameBytes,
    defaultTimeoutMs: config.defaultTimeoutMs,
    defaultMaxAttempts: config.defaultMaxAttempts,
    maxQueuedTasksPerNode: config.maxQueuedTasksPerNode,
    retention: { retainFinishedMs: config.retainFinishedMs, retainFinishedCount: config.retainFinishedCount },
    minCopies: config.minCopies,
    scheduler: { maxQueuedTasks: config.maxQueuedTasks, retryBaseMs: config.retryBaseMs, retryMaxMs: config.retryMaxMs, resultGraceMs: config.resultGraceMs, outstandingPerSlot: config.outstandingPerSlot, placement: config.placement },
    typeLimits: { config: config.types, store: limitStore },
    schedules: scheduleStore,
    callbacks: {
      store: deliveryStore,
      webhooks: config.webhooks,
      secret: config.webhookSecret,
      policy: { maxAttempts: config.callbackMaxAttempts, retryBaseMs: config.callbackRetryBaseMs, retryMaxMs: config.callbackRetryMaxMs },
      timeoutMs: config.callbackTimeoutMs,
      retainMs: config.retainFinishedMs
    }
  })
  runtime.onEvent(e => {
    observed.onCoreEvent(e)
    events.onCoreEvent(e)
  })
  runtime.start()
  tasks.start()
  events.start()
  const started = runtime
  const startedTasks = tasks
  // How long the process took to get here and the CPU it used (all threads): what a start costs.
  const cpu = process.cpuUsage()
  log.info({ id: transport.id, http: httpUrl, cluster: config.cluster, addresses: transport.addresses(), capacity: config.capacity, startupMs: Math.round(process.uptime() * 1000), startupCpuMs: Math.round((cpu.user + cpu.system) / 1000) }, 'node started')

  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      await http.close()
      await startedTasks.stop()
      await started.stop()
      await transport.stop()
      await pool.close()
      store.close()
      limitStore.close()
      scheduleStore.close()
      deliveryStore.close()
      log.info('node stopped')
    })()
    return stopping
  }
  const drain = new Drain({ cluster: started, tasks: startedTasks, stopNode: stop, drainTimeoutMs: config.drainTimeoutMs, clock, log })
  let drained!: (outcome: DrainOutcome) => void
  let drainFailed!: (err: unknown) => void
  const drainedPromise = new Promise<DrainOutcome>((resolve, reject) => { drained = resolve; drainFailed = reject })
  drainedPromise.catch(() => {}) // a caller that never looks at it is not an unhandled rejection
  const runDrain = async (): Promise<DrainOutcome> => {
    try {
      const outcome = await drain.begin()
      drained(outcome)
      return outcome
    } catch (err) {
      drainFailed(err)
      throw err
    }
  }
  beginDrain = () => {
    runDrain().catch((err: Error) => { log.error({ err: err.message }, 'drain failed') })
  }
  return {
    id: transport.id,
    name,
    httpUrl,
    addresses: transport.addresses(),
    runtime: started,
    tasks: startedTasks,
    http,
    log,
    stop,
    drain: runDrain,
    interruptDrain: () => { drain.interrupt() },
    drained: drainedPromise
  }
}

/** Start-up warnings about how exposed the node is. */
function warnAboutSecurity (config: ResolvedConfig, log: Logger): void {
  if (config.clusterKeyFile === null) {
    log.warn('no cluster key (clusterKeyFile): any host on this LAN can join the cluster, run tasks on it and read them; create one with `taskmesh init`')
  } else if (readableByOthers(resolve(config.baseDir, config.clusterKeyFile))) {
    log.warn({ file: config.clusterKeyFile }, 'the cluster key file can be read by other users of this machine; chmod 600 it')
  }
  if (config.webhooks.length > 0 && config.webhookSecret === null) log.warn('webhooks are configured without webhookSecret: their deliveries are not signed')
  if (config.token === null) log.info({ httpHost: config.httpHost }, 'HTTP API without a token, on loopback only')
}
