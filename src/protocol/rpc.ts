/**
 * The direct request/response protocol between nodes (`/taskmesh/rpc/1.0.0`):
 * a request frame and its reply frame, each a length-prefixed JSON document
 * checked against the schemas below before use. Streams are persistent: each
 * carries one request and its reply at a time, then the next request
 * (src/net/libp2p-transport.ts keeps idle streams per peer for reuse).
 */
import { Type } from '@sinclair/typebox'
import type { Static, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { TypeCheck } from '@sinclair/typebox/compiler'
import { TASK_STATUSES } from '../core/tasks.ts'
import { KeysReply, KeysRequest, SchedulesReply, SchedulesRequest, TickStampSchema } from './schedule-messages.ts'
import { DecodeError, RequireSchema } from './messages.ts'
import { MAX_PARENTS } from '../core/dependencies.ts'
import { MAX_ATTEMPTS, MAX_ERROR_MESSAGE_LENGTH, MAX_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_LIST_PAGE, MAX_PRIORITY, MAX_RETAIN_MS, MAX_TASKS_PER_MESSAGE, MAX_TASK_TIMEOUT_MS, MAX_TYPE_LENGTH, MAX_WAIT_MS, MAX_LIMITED_TYPES, MAX_CALLBACK_URL_LENGTH, CALLBACK_HEADER_PATTERN } from './constants.ts'

export const RPC_PROTOCOL = '/taskmesh/rpc/1.0.0'

const Id = Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH })
/** Unix milliseconds (bounded: a stored value must stay a safe JavaScript number). */
const Ms = Type.Integer({ minimum: 0, maximum: 2 ** 47 })
const Attempt = Type.Integer({ minimum: 0, maximum: MAX_ATTEMPTS })
const Term = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
const NullableMs = Type.Union([Ms, Type.Null()])

/** A completion callback asked for on submit (see src/core/callbacks.ts). */
export const CallbackSchema = Type.Object({
  url: Type.String({ minLength: 8, maxLength: MAX_CALLBACK_URL_LENGTH, pattern: '^https?://' }),
  headers: Type.Optional(Type.Record(Type.String({ pattern: CALLBACK_HEADER_PATTERN }), Type.String({ maxLength: 4096 }), { maxProperties: 32, additionalProperties: false }))
}, { additionalProperties: false })

/** One delivery of an ending, as holders tell each other (src/core/callbacks.ts). */
const DeliveryStateSchema = Type.Object({
  id: Id,
  task: Id,
  url: Type.String({ maxLength: MAX_CALLBACK_URL_LENGTH }),
  source: Type.Union([Type.Literal('callback'), Type.Literal('webhook')]),
  event: Type.String({ maxLength: 64 }),
  state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  nextAtMs: Ms,
  lastStatus: Type.Union([Type.Integer({ minimum: 0, maximum: 999 }), Type.Null()]),
  lastError: Type.Union([Type.String({ maxLength: MAX_ERROR_MESSAGE_LENGTH }), Type.Null()]),
  deliveredAt: NullableMs
}, { additionalProperties: false })
const DeliveryStates = Type.Array(DeliveryStateSchema, { maxItems: MAX_TASKS_PER_MESSAGE })

export const TaskSpecSchema = Type.Object({
  id: Id,
  type: Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH }),
  payload: Type.Unknown(),
  priority: Type.Integer({ minimum: -MAX_PRIORITY, maximum: MAX_PRIORITY }),
  timeoutMs: Type.Integer({ minimum: 1, maximum: MAX_TASK_TIMEOUT_MS }),
  maxAttempts: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS }),
  idempotencyKey: Type.Union([Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }), Type.Null()]),
  createdAt: Ms,
  origin: Id,
  replicas: Type.Array(Id, { maxItems: 8 }),
  /** How long the record is kept once the task ended (absent: each holder's retainFinishedMs). */
  retainMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RETAIN_MS })),
  /** Durable copies stored before the task was accepted. */
  copies: Type.Optional(Type.Integer({ minimum: 1, maximum: 9 })),
  /** A delayed task: not dispatched before this Unix ms. */
  runAt: Type.Optional(Ms),
  /** Times a user retried the task (its generation). */
  retries: Type.Optional(Attempt),
  /** A task fired by a recurring schedule: which, its tick, how late. */
  schedule: Type.Optional(TickStampSchema),
  /** Labels a worker must have to run the task. */
  require: Type.Optional(RequireSchema),
  /** Where its final record is POSTed once it ends. */
  callback: Type.Optional(CallbackSchema),
  /** Its parents (src/core/dependencies.ts). */
  dependsOn: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: MAX_PARENTS })),
  /** The parents' results, set by the leader that released it (in an assignment, or a worker's inventory). */
  parents: Type.Optional(Type.Record(Type.String(), Type.Unknown()))
}, { additionalProperties: false })

export const TaskUpdateSchema = Type.Object({
  id: Id,
  status: Type.Union(TASK_STATUSES.map(s => Type.Literal(s))),
  attempts: Attempt,
  worker: Type.Union([Id, Type.Null()]),
  progress: Type.Unknown(),
  result: Type.Unknown(),
  error: Type.Union([Type.String(), Type.Null()]),
  startedAt: NullableMs,
  finishedAt: NullableMs,
  /** A retried task's generation, and that generation's maxAttempts (absent until a user retried it). */
  retries: Type.Optional(Attempt),
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS })),
  /** A released task's parents' results (src/core/dependencies.ts). */
  parents: Type.Optional(Type.Record(Type.String(), Type.Unknown()))
}, { additionalProperties: false })

export const TaskRecordSchema = Type.Composite([TaskSpecSchema, Type.Omit(TaskUpdateSchema, ['id', 'retries', 'maxAttempts', 'parents'])])

const Outcome = Type.Union([
  Type.Object({ ok: Type.Literal(true), result: Type.Unknown() }, { additionalProperties: false }),
  Type.Object({ ok: Type.Literal(false), error: Type.String(), cancelled: Type.Optional(Type.Boolean()) }, { additionalProperties: false })
])

const Tasks = Type.Array(TaskSpecSchema, { maxItems: MAX_TASKS_PER_MESSAGE })

const TypeName = Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH })
export const MaxConcurrent = Type.Integer({ minimum: 1, maximum: 1_000_000 })
export const PerSecond = Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 })
/** A per-type limit as set at runtime: no field means no limit; `version` (Unix ms) and `by` (the setter) order settings. */
const LimitSetting = Type.Object({
  type: TypeName,
  maxConcurrent: Type.Optional(MaxConcurrent),
  perSecond: Type.Optional(PerSecond),
  version: Ms,
  by: Id
}, { additionalProperties: false })

/**
 * Every code an error reply may carry: a closed set, so a receiver can act
 * on each (see errorOfReply in rpc-errors.ts, the one place they map to errors).
 */
export const RPC_ERROR_CODES = [
  /** The receiver does not lead (a submit, report or cancel meant for the leader). */
  'NOT_LEADER',
  /** The leader's queue is full (maxQueuedTasks). */
  'QUEUE_FULL',
  /** The receiver granted this term to another leader (a refused inventory request). */
  'TERM_TAKEN',
  /** The assignment's term is below one the receiver knows, or was granted to another leader. */
  'STALE_TERM',
  /** An assignment that names a leader other than its sender. */
  'FORGED',
  /** The receiver has not finished starting. */
  'STARTING',
  /** The receiver is draining before it stops: it keeps no new copy (a replicate meant for a member that stays). */
  'DRAINING',
  /** The receiver held the asked task once, and forgot its record (retention, or a purge): a `get` of it. */
  'TASK_EXPIRED',
  /**
   * A replicate or submit whose idempotency key names a task here that is not
   * known to be accepted yet (still being stored, or a copy its origin may
   * have refused): the origin stores its own task on another node.
   */
  'KEY_UNSETTLED',
  /** The receiver failed while handling the request. */
  'INTERNAL'
] as const
export type RpcErrorCode = typeof RPC_ERROR_CODES[number]

export const RpcRequestSchema = Type.Union([
  /** Origin -> leader: store these tasks (as a holder) and queue them. */
  Type.Object({
    kind: Type.Literal('submit'),
    tasks: Tasks,
    /** Attempts each task has used (a hand-over of unfinished tasks); 0 when absent. */
    attempts: Type.Optional(Type.Array(Attempt, { maxItems: MAX_TASKS_PER_MESSAGE })),
    /** Tasks the leader said had ended, but whose every live holder still has unfinished: to run again. */
    rerun: Type.Optional(Type.Array(Id, { maxItems: MAX_TASKS_PER_MESSAGE })),
    /**
     * A holder's hand-over of tasks already accepted (answered 202): each is
     * queued under its own id, never folded into another task by its
     * idempotency key. Absent: an origin storing a submit it has not answered yet.
     */
    accepted: Type.Optional(Type.Literal(true))
  }, { additionalProperties: false }),
  /** Origin -> another node: store these tasks as a replica. */
  Type.Object({ kind: Type.Literal('replicate'), tasks: Tasks }, { additionalProperties: false }),
  /** Leader -> worker: run these attempts. */
  Type.Object({
    kind: Type.Literal('assign'),
    term: Term,
    leader: Id,
    tasks: Type.Array(Type.Object({ spec: TaskSpecSchema, attempt: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS }) }, { additionalProperties: false }), { maxItems: MAX_TASKS_PER_MESSAGE })
  }, { additionalProperties: false }),
  /** Worker -> leader: attempts started and ended, and (`returned`) attempts a draining worker gives back unbegun. */
  Type.Object({
    kind: Type.Literal('report'),
    reports: Type.Array(Type.Object({
      id: Id,
      attempt: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS }),
      event: Type.Union([Type.Literal('started'), Type.Literal('result'), Type.Literal('returned')]),
      /** When it happened, on the worker's clock (so every holder records the same times). */
      atMs: Ms,
      outcome: Type.Optional(Outcome),
      /** The last progress reported by the handler, with a result. */
      progress: Type.Optional(Type.Unknown()),
      /** When the attempt began on the worker's clock (null: it never began), with a result. */
      startedAt: Type.Optional(NullableMs)
    }, { additionalProperties: false }), { maxItems: MAX_TASKS_PER_MESSAGE })
  }, { additionalProperties: false }),
  /** Leader or worker -> holders: newer task states to merge. */
  Type.Object({ kind: Type.Literal('updates'), updates: Type.Array(TaskUpdateSchema, { maxItems: MAX_TASKS_PER_MESSAGE }) }, { additionalProperties: false }),
  /** Anyone -> a node: the task's record if held, waiting up to waitMs for it to end. */
  Type.Object({ kind: Type.Literal('get'), id: Id, waitMs: Type.Integer({ minimum: 0, maximum: MAX_WAIT_MS }) }, { additionalProperties: false }),
  /**
   * Anyone -> a node: of these tasks, the records held here that have ended,
   * waiting up to waitMs for one of them to end (a bulk wait; answered at once
   * when one already has, or when none is held here). Reply: `tasks`.
   */
  Type.Object({ kind: Type.Literal('wait'), ids: Type.Array(Id, { minItems: 1, maxItems: MAX_TASKS_PER_MESSAGE }), waitMs: Type.Integer({ minimum: 0, maximum: MAX_WAIT_MS }) }, { additionalProperties: false }),
  /** Anyone -> leader: cancel a task. Leader -> worker: abort the running attempts of these tasks. */
  Type.Object({ kind: Type.Literal('cancel'), id: Id }, { additionalProperties: false }),
  Type.Object({
    kind: Type.Literal('abort'),
    ids: Type.Array(Id, { maxItems: MAX_TASKS_PER_MESSAGE }),
    /**
     * 'cancel' (the default): a user cancelled the task; an attempt assigned
     * after this abort arrived is cancelled too. 'superseded': another
     * attempt of the task succeeded; only a running attempt stops, and it
     * ends as a plain failure, so a leader that has not heard of that
     * success runs the task again rather than ending it as cancelled.
     */
    reason: Type.Optional(Type.Union([Type.Literal('cancel'), Type.Literal('superseded')]))
  }, { additionalProperties: false }),
  /** New leader -> every member: what do you run, and what unfinished tasks do you hold? */
  Type.Object({ kind: Type.Literal('inventory'), term: Term }, { additionalProperties: false }),
  /**
   * Anyone -> leader: retry this failed or cancelled task (its record as the
   * sender read it), with a new maxAttempts when given. Reply: `retry`.
   */
  Type.Object({ kind: Type.Literal('retry'), task: TaskRecordSchema, maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS })) }, { additionalProperties: false }),
  /**
   * Anyone -> every member: per-type limits set at runtime (each with its
   * version; the newest wins), stored on disk before the reply. The leader
   * also sends its limits to a member that joins. Reply: `ok`.
   */
  Type.Object({ kind: Type.Literal('limits'), limits: Type.Array(LimitSetting, { maxItems: MAX_LIMITED_TYPES }) }, { additionalProperties: false }),
  /** Anyone -> leader: each type's limit and its queued, running and limited counts. Reply: `types`. */
  Type.Object({ kind: Type.Literal('types') }, { additionalProperties: false }),
  /** Recurring schedules (see schedule-messages.ts). */
  SchedulesRequest,
  KeysRequest,
  /** Anyone -> a node: one page of the records it holds, newest submit first, after `before` (a cluster-wide listing). Reply: `page`. */
  Type.Object({
    kind: Type.Literal('list'),
    status: Type.Optional(Type.Union(TASK_STATUSES.map(s => Type.Literal(s)))),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH })),
    before: Type.Optional(Type.Object({ createdAt: Ms, id: Id }, { additionalProperties: false })),
    limit: Type.Integer({ minimum: 1, maximum: MAX_LIST_PAGE })
  }, { additionalProperties: false }),
  /**
   * A task's holder -> its other holders: the states of deliveries of its
   * endings after a try (merged, see mergeDelivery); and anyone -> a holder:
   * the deliveries of `task` held there. Reply: `deliveries` (of `task`).
   */
  Type.Object({ kind: Type.Literal('deliveries'), states: Type.Optional(DeliveryStates), task: Type.Optional(Id) }, { additionalProperties: false }),
  /** Anyone -> every member: forget the finished records (of this status) that ended before `before` (a purge). Reply: `purged`. */
  Type.Object({ kind: Type.Literal('purge'), status: Type.Optional(Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')])), before: Ms }, { additionalProperties: false })
])

export const RpcReplySchema = Type.Union([
  Type.Object({ kind: Type.Literal('ok') }, { additionalProperties: false }),
  /** For submit/replicate: the id each task is stored under (another id when its idempotency key was taken). */
  /** `ended`: handed-over tasks the leader knows have ended (their holders have the record). */
  Type.Object({ kind: Type.Literal('stored'), canonical: Type.Array(Type.Tuple([Id, Id]), { maxItems: MAX_TASKS_PER_MESSAGE }), ended: Type.Optional(Type.Array(Id, { maxItems: MAX_TASKS_PER_MESSAGE })) }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('task'), task: Type.Union([TaskRecordSchema, Type.Null()]) }, { additionalProperties: false }),
  /**
   * For wait: `ended`, records held here that have ended; `held`, the other
   * asked ids held here (unfinished, or ended but left out to keep the
   * reply within a quarter of the frame limit: the asker asks again).
   */
  Type.Object({
    kind: Type.Literal('tasks'),
    ended: Type.Array(TaskRecordSchema, { maxItems: MAX_TASKS_PER_MESSAGE }),
    held: Type.Array(Id, { maxItems: MAX_TASKS_PER_MESSAGE })
  }, { additionalProperties: false }),
  /** For list: records in the asked order; `more`: this node holds more after the last one (or left some out to fit one frame). */
  Type.Object({ kind: Type.Literal('page'), tasks: Type.Array(TaskRecordSchema, { maxItems: MAX_LIST_PAGE }), more: Type.Boolean() }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('cancel'), outcome: Type.Union([Type.Literal('cancelled'), Type.Literal('aborting'), Type.Literal('unknown')]) }, { additionalProperties: false }),
  Type.Object({
    kind: Type.Literal('inventory'),
    /** Attempts assigned to this node and not yet ended. */
    running: Type.Array(Type.Object({ spec: TaskSpecSchema, attempt: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS }), startedAt: Type.Union([Ms, Type.Null()]) }, { additionalProperties: false }), { maxItems: 100_000 }),
    /** Unfinished tasks this node holds, with the attempts they have used. */
    held: Type.Array(Type.Object({ spec: TaskSpecSchema, attempts: Attempt }, { additionalProperties: false }), { maxItems: 1_000_000 })
  }, { additionalProperties: false }),
  /**
   * For retry: `retried` (stored on `copies` holders and queued), or why not:
   * `not-retryable` (it has not ended as failed or cancelled, or was retried
   * already), `bad-max-attempts` (the new maxAttempts leaves no attempt).
   */
  Type.Object({
    kind: Type.Literal('retry'),
    outcome: Type.Union([Type.Literal('retried'), Type.Literal('not-retryable'), Type.Literal('bad-max-attempts')]),
    /** With `retried`: `scheduled` when a delayed task retried before its runAt waits for it again. */
    status: Type.Optional(Type.Union([Type.Literal('queued'), Type.Literal('scheduled'), Type.Literal('waiting')])),
    message: Type.String({ maxLength: MAX_ERROR_MESSAGE_LENGTH }),
    copies: Type.Integer({ minimum: 0, maximum: 9 }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS })
  }, { additionalProperties: false }),
  /** For types: the leader's view, a row per type that has a limit or tasks. */
  Type.Object({
    kind: Type.Literal('types'),
    types: Type.Array(Type.Object({
      type: TypeName,
      maxConcurrent: Type.Optional(MaxConcurrent),
      perSecond: Type.Optional(PerSecond),
      queued: Type.Integer({ minimum: 0 }),
      running: Type.Integer({ minimum: 0 }),
      limited: Type.Integer({ minimum: 0 })
    }, { additionalProperties: false }), { maxItems: 100_000 })
  }, { additionalProperties: false }),
  SchedulesReply,
  KeysReply,
  /** For deliveries: the states of the asked task's deliveries held by the receiver. */
  Type.Object({ kind: Type.Literal('deliveries'), states: DeliveryStates }, { additionalProperties: false }),
  /** For purge: how many records the receiver forgot. */
  Type.Object({ kind: Type.Literal('purged'), count: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('error'), code: Type.Union(RPC_ERROR_CODES.map(c => Type.Literal(c))), message: Type.String({ maxLength: MAX_ERROR_MESSAGE_LENGTH }) }, { additionalProperties: false })
])

export type RpcRequest = Static<typeof RpcRequestSchema>
export type RpcReply = Static<typeof RpcReplySchema>
export type WireTaskSpec = Static<typeof TaskSpecSchema>

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame (msg: RpcRequest | RpcReply): Uint8Array {
  return encoder.encode(JSON.stringify(msg))
}

/**
 * The check of a union of messages told apart by their `kind`: each kind's
 * schema compiled (TypeBox's TypeCompiler) on the first message of that kind,
 * then run on every one. Accepts exactly what `Value.Check` of the union
 * accepts, several times faster on a frame of a thousand tasks, and compiles
 * only the kinds a node receives.
 */
function checkByKind (union: TSchema & { anyOf: Array<TSchema & { properties: { kind: { const: string } } }> }): (x: unknown) => boolean {
  const variants = new Map(union.anyOf.map(v => [v.properties.kind.const, v]))
  const compiled = new Map<string, TypeCheck<TSchema>>()
  return x => {
    const kind = typeof x === 'object' && x !== null ? (x as { kind?: unknown }).kind : undefined
    if (typeof kind !== 'string') return false
    let check = compiled.get(kind)
    if (check === undefined) {
      const variant = variants.get(kind)
      if (variant === undefined) return false
      compiled.set(kind, check = TypeCompiler.Compile(variant))
    }
    return check.Check(x)
  }
}

const checkRequest = checkByKind(RpcRequestSchema)
const checkReply = checkByKind(RpcReplySchema)

function decodeWith<T extends TSchema> (schema: T, check: (x: unknown) => boolean, bytes: Uint8Array, what: string): Static<T> {
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new DecodeError(`${what} is not UTF-8 JSON: ${(err as Error).message}`)
  }
  if (!check(parsed)) {
    const first = Value.Errors(schema, parsed).First()
    throw new DecodeError(`${what} invalid at ${first?.path === '' ? '/' : first?.path}: ${first?.message ?? 'schema mismatch'}`)
  }
  return parsed as Static<T>
}

export function decodeRequest (bytes: Uint8Array): RpcRequest {
  return decodeWith(RpcRequestSchema, checkRequest, bytes, 'rpc request')
}

export function decodeReply (bytes: Uint8Array): RpcReply {
  return decodeWith(RpcReplySchema, checkReply, bytes, 'rpc reply')
}
