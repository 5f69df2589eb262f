/**
 * What every part of the task runtime shares: its settings, the node's
 * store, executor, transport, clock and log, and the membership port. The
 * parts (one file per role) reach one another only through what `TaskRoles`
 * lists, wired once by the TaskRuntime facade.
 */
import type { Logger } from 'pino'
import type { RetentionPolicy } from '../../core/retention.ts'
import type { SchedulerConfig } from '../../core/scheduler.ts'
import type { TaskExecutor } from '../../exec/handler-pool.ts'
import type { TaskStore } from '../../store/task-store.ts'
import type { TypeLimitStore } from '../../store/type-limit-store.ts'
import type { ScheduleStore } from '../../store/schedule-store.ts'
import type { TickStamp } from '../../core/schedules.ts'
import type { TypeLimit } from '../../core/type-limits.ts'
import type { VersionedLimit } from '../../core/type-limits.ts'
import type { Clock } from '../clock.ts'
import type { MembershipPort } from '../membership-port.ts'
import type { ClusterTransport } from '../transport.ts'
import type { TaskRecord, TaskSpec, TaskUpdate } from '../../core/tasks.ts'
import type { RpcReply, RpcRequest } from '../../protocol/rpc.ts'
import type { CallbackSettings } from './callbacks.ts'

export interface SubmitInput {
  type: string
  payload: unknown
  priority?: number
  timeoutMs?: number
  maxAttempts?: number
  idempotencyKey?: string
  /** How long the record is kept once the task ended (default: each holder's retainFinishedMs). */
  retainMs?: number
  /** A delayed task: not dispatched before this Unix ms (or `delayMs` after the submit; never both). */
  runAt?: number
  delayMs?: number
  /** A task fired by a recurring schedule (the leader's own submits only; not on the HTTP API). */
  schedule?: TickStamp
  /** Labels the worker must have (`*`: any value of the key). */
  require?: Record<string, string>
  /** Where the final record is POSTed once the task ends. */
  callback?: { url: string, headers?: Record<string, string> }
  /** Parents: ids of existing tasks, or (in a batch) refs of other items of the batch. */
  dependsOn?: string[]
  /** A batch item's name for the other items' dependsOn (never stored). */
  ref?: string
}

export interface TaskRuntimeInit {
  store: TaskStore
  pool: TaskExecutor
  transport: ClusterTransport
  cluster: MembershipPort
  clock: Clock
  log: Logger
  capacity: number
  maxPayloadBytes: number
  /** Largest RPC frame; batches are split to stay well under it. */
  maxFrameBytes: number
  defaultTimeoutMs: number
  defaultMaxAttempts: number
  /** Tasks accepted here that may wait for a leader to take them (default: no limit). */
  maxQueuedTasksPerNode?: number
  scheduler: SchedulerConfig
  /** When finished records expire (absent: they never expire, as in the simulation). */
  retention?: RetentionPolicy
  /** Copies a task must be stored in before it is accepted (default 1: two when another live member exists, else one). */
  minCopies?: number
  /** Called when this node, as leader of `term`, has gathered and begins to dispatch (tests and metrics). */
  onDispatching?: (term: number) => void
  /** New task ids (default: UUIDv7, see task-ids.ts). */
  newId?: () => string
  /** Completion callbacks and webhooks (absent: none are delivered, as in the simulation). */
  callbacks?: CallbackSettings
  /** Per-type limits: the config's, and where those set at runtime are kept (absent: no limits, as in the simulation). */
  typeLimits?: { config: Readonly<Record<string, TypeLimit>>, store: TypeLimitStore }
  /** Where recurring schedules are kept (absent: none, as in the simulation). */
  schedules?: ScheduleStore
}

/**
 * Protocol timings of the task path. Not user settings: they bound how long
 * one exchange may take and how much a node keeps for others, and changing
 * them changes no guarantee, only how fast a lost message is noticed.
 */
export const TASK_PATH = {
  /** Time allowed for one RPC exchange on the task path. */
  rpcTimeoutMs: 10_000,
  /** Time a new leader waits for one member's inventory (and grant) before asking again. */
  inventoryTimeoutMs: 3_000,
  /** Extra time a read allows a holder that already has a copy here to compare with. */
  holderReadTimeoutMs: 2_000,
  /** How many ended tasks a leader remembers, to answer late hand-overs. */
  endedMemory: 100_000,
  /** Undeliverable endings kept for one member until it is back. */
  maxParkedPerMember: 100_000,
  /** Endings a holder keeps for copies of its own that are not stored yet (HolderSync). */
  maxOrphanEndings: 10_000,
  /**
   * How long a node remembers that a member has a task's ending (it sent it,
   * or was sent it from here), so as not to send it that ending again: one
   * to two of these (HolderSync). Only duplicates within it are left out.
   */
  knownEndingsMs: 1_000,
  /** Nodes an origin tries, one after another, to store a second copy on. */
  maxStoreTargets: 4,
  /**
   * A leader's state change that is not an ending (assigned, running,
   * retrying) waits this long before it goes to the task's holders, and is
   * dropped when the task's ending comes first: a short task's holders hear
   * of it once. A read on a holder may show such a change this much later.
   */
  settleMs: 250,
  /** Progress of one task is sent to its holders at most this often. */
  progressEveryMs: 200,
  /** How often the runtime retries hand-overs, reports and leader timeouts. */
  tickMs: 100,
  /** How long a worker remembers an abort that came before its assignment. */
  abortMemoryMs: 60_000,
  /** Reports sent to the leader in one batch at most. */
  maxReportBatch: 2_000,
  /**
   * A bulk wait asks the members holding its tasks to wait at most this long
   * per request, then asks again: a request left behind when the wait
   * answered for another reason holds a waiter there no longer than this.
   */
  bulkWaitSliceMs: 1_000
} as const

/** What each part offers the others (see the file of each for what it means). */
export interface TaskRoles {
  intake: {
    keyConflict (specs: readonly TaskSpec[]): string | null
    clusterTypes (): Set<string>
  }
  handOver: {
    readonly waiting: number
    offer (ids: Iterable<string>): void
    offerLater (ids: Iterable<string>): void
    offerRerun (ids: Iterable<string>): void
    offerAll (): void
    ended (id: string): void
    forward (): void
    beginStoring (ids: readonly string[]): void
    endStoring (ids: readonly string[]): void
    isStoring (id: string): boolean
    isStale (id: string): boolean
    catchUpEnded (ids: readonly string[]): Promise<void>
  }
  dispatcher: {
    readonly waiting: number
    readonly gathering: boolean
    forgetEnded (id: string): void
    enqueue (records: ReadonlyArray<TaskSpec & { attempts?: number }>, dispatchNow?: boolean): void
    takeHandOver (msg: Extract<RpcRequest, { kind: 'submit' }>): Promise<RpcReply>
    tracks (id: string): boolean
    onReports (reports: Extract<RpcRequest, { kind: 'report' }>['reports'], from: string): Promise<RpcReply>
    cancel (id: string): Promise<RpcReply>
    retry (rec: TaskRecord, maxAttempts: number | undefined): Promise<RpcReply>
    applyLimit (type: string, limit: TypeLimit): void
    typeRows (): Promise<RpcReply>
  }
  schedules: {
    take (msg: Extract<RpcRequest, { kind: 'schedules' }>): RpcReply
  }
  limits: {
    current (): Map<string, VersionedLimit>
    take (settings: ReadonlyArray<{ type: string } & VersionedLimit>): void
  }
  worker: {
    accept (msg: Extract<RpcRequest, { kind: 'assign' }>, from: string): RpcReply
    abort (ids: readonly string[], reason: 'cancel' | 'superseded'): void
    inventory (term: number, leader: string): RpcReply
  }
  holders: {
    send (updates: TaskUpdate[], holders: readonly string[]): void
    sendSettled (updates: readonly TaskUpdate[], holders: readonly string[]): void
    apply (updates: readonly TaskUpdate[], from?: string): void
    passOnEndings (ended: readonly TaskRecord[], except?: string): void
    afterLocal (fn: () => void): void
  }
  callbacks: {
    ended (recs: readonly TaskRecord[]): void
    receive (msg: Extract<RpcRequest, { kind: 'deliveries' }>): RpcReply
  }
  retention: {
    purgeHere (filter: { status?: 'succeeded' | 'failed' | 'cancelled', before: number }): Promise<number>
  }
  reads: {
    changed (rec: TaskRecord): void
    get (id: string, waitMs?: number): Promise<TaskRecord>
    getLocal (id: string, waitMs: number): Promise<TaskRecord | undefined>
    watchHeld (ids: readonly string[], waitMs: number, mode: 'any' | 'all'): { done: Promise<void>, cancel: () => void }
    serveWait (ids: readonly string[], waitMs: number): Promise<Extract<RpcReply, { kind: 'tasks' }>>
  }
}

export class TaskContext {
  readonly init: TaskRuntimeInit
  readonly self: string
  readonly cluster: MembershipPort
  readonly store: TaskStore
  readonly transport: ClusterTransport
  readonly clock: Clock
  readonly log: Logger
  /** Set once by the facade, before anything runs. */
  roles!: TaskRoles
  /** The node is draining: no new submits here, no new attempts begin (see Worker.beginDrain). */
  draining = false

  constructor (init: TaskRuntimeInit) {
    this.init = init
    this.self = init.transport.id
    this.cluster = init.cluster
    this.store = init.store
    this.transport = init.transport
    this.clock = init.clock
    this.log = init.log
  }

  /** Batches stay at a quarter of the frame limit: room for the envelope and for growth. */
  get batchBytes (): number {
    return Math.floor(this.init.maxFrameBytes / 4)
  }
}
