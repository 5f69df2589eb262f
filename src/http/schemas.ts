/**
 * The HTTP API's shapes, once: the routes validate, document and serialize
 * with these schemas (unknown fields are dropped), the event feed types what
 * it sends with them, and the client library (src/client) takes its types
 * from them (`Static<typeof ...>`). Imports nothing but TypeBox and the pure
 * task states, so the client can ship it.
 */
import { Type } from '@sinclair/typebox'
import { TASK_STATUSES } from '../core/tasks.ts'
import { MAX_PARENTS } from '../core/dependencies.ts'
import { CALLBACK_HEADER_PATTERN, LABEL_KEY_PATTERN, LABEL_REQUIRE_PATTERN, LABEL_VALUE_PATTERN, MAX_CALLBACK_URL_LENGTH, MAX_LABELS, MAX_ATTEMPTS, MAX_DELAY_MS, MAX_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PRIORITY, MAX_RETAIN_MS, MAX_TASK_TIMEOUT_MS, MAX_TYPE_LENGTH } from '../protocol/constants.ts'

export const ErrorReply = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() })
})

/** `draining`: finishing its work before it leaves (no new work, never leader); `left`: announced it is gone. */
const MemberStatus = Type.Union([Type.Literal('alive'), Type.Literal('suspect'), Type.Literal('draining'), Type.Literal('left'), Type.Literal('dead')])
const Leader = Type.Object({ id: Type.String(), name: Type.String(), term: Type.Integer() })

const Labels = Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ pattern: LABEL_VALUE_PATTERN }), { maxProperties: MAX_LABELS, additionalProperties: false, description: 'the member\'s labels from its config (absent: none)' })
/** A task's required labels: `*` matches any value of the key. */
const Require = Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ pattern: LABEL_REQUIRE_PATTERN }), {
  minProperties: 1,
  maxProperties: MAX_LABELS,
  additionalProperties: false,
  description: 'labels the worker must have, e.g. {"gpu": "*", "zone": "rack2"}: "*" is any value of the key, anything else an exact match. A task no live member (running its type) matches is refused with 422 REQUIREMENT_UNMET; one whose matching members all died later waits, queued, until one is back'
})

const CallbackUrl = Type.String({ minLength: 8, maxLength: MAX_CALLBACK_URL_LENGTH, pattern: '^https?://', description: 'http(s) URL the final record is POSTed to' })
/** A completion callback asked for on submit. */
const Callback = Type.Object({
  url: CallbackUrl,
  headers: Type.Optional(Type.Record(Type.String({ pattern: CALLBACK_HEADER_PATTERN }), Type.String({ maxLength: 4096 }), { maxProperties: 32, additionalProperties: false, description: 'sent with every delivery (e.g. an Authorization header of the receiver); never shown by GET' }))
}, { additionalProperties: false, description: 'once the task ends, its final record is POSTed here by one of its holders: signed (X-Taskmesh-Signature, with the nodes\' webhookSecret), retried with backoff, at least once with the same X-Taskmesh-Delivery id (deduplicate on it)' })

/** One delivery of a task's ending (its callback, or a configured webhook), as GET /v1/tasks/:id shows it. */
const Delivery = Type.Object({
  deliveryId: Type.String({ description: 'the X-Taskmesh-Delivery header: the same on every try and from every holder' }),
  url: Type.String(),
  source: Type.Union([Type.Literal('callback'), Type.Literal('webhook')]),
  event: Type.String({ description: 'task.succeeded, task.failed or task.cancelled' }),
  state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')], { description: 'pending: not delivered yet (tried again at nextAttemptAt); delivered: a 2xx answer; failed: callbackMaxAttempts tries spent' }),
  attempts: Type.Integer(),
  nextAttemptAt: Type.Optional(Type.Integer({ description: 'pending: when the next try is due (Unix ms)' })),
  lastStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last failed try (null: no answer)' }),
  lastError: Type.Union([Type.String(), Type.Null()]),
  deliveredAt: Type.Union([Type.Integer(), Type.Null()])
})

export const MemberReply = Type.Object({
  id: Type.String(),
  name: Type.String(),
  http: Type.String(),
  status: MemberStatus,
  capacity: Type.Integer(),
  running: Type.Integer(),
  queued: Type.Integer(),
  load: Type.Object({ cpu: Type.Number(), memory: Type.Number() }),
  lastSeenMs: Type.Integer(),
  labels: Type.Optional(Labels)
})

export const ClusterReply = Type.Object({
  self: Type.Object({ id: Type.String(), name: Type.String() }),
  leader: Type.Union([Leader, Type.Null()]),
  members: Type.Array(MemberReply)
})

/** POST /v1/drain: the node drains (then leaves and stops); the drain ends within drainTimeoutMs. */
export const DrainReply = Type.Object({ id: Type.String(), name: Type.String(), status: Type.Literal('draining'), drainTimeoutMs: Type.Integer() })

export const HealthReply = Type.Object({
  status: Type.Literal('ok'),
  id: Type.String(),
  name: Type.String(),
  uptimeMs: Type.Integer()
})

// ---- tasks ------------------------------------------------------------------

/** One task as submitted (POST /v1/tasks, and each item of a batch). */
export const SubmitBody = Type.Object({
  type: Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH }),
  payload: Type.Optional(Type.Unknown()),
  priority: Type.Optional(Type.Integer({ minimum: -MAX_PRIORITY, maximum: MAX_PRIORITY })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TASK_TIMEOUT_MS })),
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS })),
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH })),
  retainMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RETAIN_MS, description: 'how long the record is kept after the task ended, instead of each holder\'s retainFinishedMs (retainFinishedCount still applies)' })),
  runAt: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 47, description: 'a delayed task: Unix ms before which it is not dispatched (status scheduled until then; a time already past runs at once). Not with delayMs' })),
  delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS, description: `a delayed task: dispatched this many ms after the submit is accepted (at most ${MAX_DELAY_MS}, 366 days). Not with runAt` })),
  require: Type.Optional(Require),
  callback: Type.Optional(Callback),
  dependsOn: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }), {
    minItems: 1,
    maxItems: MAX_PARENTS,
    description: 'parents: ids of existing tasks (in a batch, also refs of other items of the batch). The task is waiting until every parent succeeded, then runs with their results (the handler\'s ctx.parents); it fails, naming the parent, when one fails or is cancelled. An unknown id or a cycle: 422'
  }))
}, { additionalProperties: false })

/** One item of POST /v1/tasks/batch: a task as submitted, and a name the batch's other items' dependsOn may use. */
export const BatchItemBody = Type.Composite([SubmitBody, Type.Object({
  ref: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH, description: 'a name for this task, unique within the batch, that other items\' dependsOn may give instead of its id' }))
})], { additionalProperties: false })

/** POST /v1/tasks/:id/retry. */
export const RetryBody = Type.Object({
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS, description: 'the task\'s new total of attempts, counting those already used (must exceed them); default: attempts used + the task\'s maxAttempts' }))
}, { additionalProperties: false })

export const RetryReply = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('scheduled'), Type.Literal('waiting')], { description: 'scheduled: a delayed task retried before its runAt waits for it again; waiting: a task with parents waits for them again' }),
  attempts: Type.Integer({ description: 'attempts used so far: the next one is attempts + 1' }),
  maxAttempts: Type.Integer({ description: 'the task\'s total of attempts from now on' }),
  retries: Type.Integer({ description: 'times the task has been retried by a user, this one included' }),
  copies: Type.Integer({ description: 'holders that stored the retry before this answer' })
})

/**
 * A task's status as a string `enum`, and a nullable field of a task as a
 * type list (`["string", "null"]`), instead of TypeBox's `anyOf` of literals
 * or of a type and null: the same values valid, the same OpenAPI (3.1) meaning,
 * but fast-json-stringify serializes them with a typeof check, where an
 * `anyOf` runs an Ajv validator per field of every task in a reply (compiled
 * on a node's first replies: a few hundred ms of CPU each).
 */
export const TaskStatusSchema = Type.Unsafe<typeof TASK_STATUSES[number]>({ type: 'string', enum: [...TASK_STATUSES] })
const NullableInt = Type.Unsafe<number | null>({ type: ['integer', 'null'] })
const NullableString = Type.Unsafe<string | null>({ type: ['string', 'null'] })

/** A task record as GET /v1/tasks/:id answers it (never the payload). */
export const TaskReply = Type.Object({
  id: Type.String(),
  type: Type.String(),
  status: TaskStatusSchema,
  attempts: Type.Integer(),
  worker: NullableString,
  progress: Type.Unknown(),
  result: Type.Unknown(),
  error: NullableString,
  createdAt: Type.Integer(),
  startedAt: NullableInt,
  finishedAt: NullableInt,
  maxAttempts: Type.Optional(Type.Integer({ description: 'attempts the task may use in all (a retry may raise it)' })),
  runAt: Type.Optional(Type.Integer({ description: 'a delayed task: Unix ms before which it was not dispatched' })),
  retries: Type.Optional(Type.Integer({ description: 'times a user retried the task (POST /v1/tasks/:id/retry); absent: never' })),
  require: Type.Optional(Require),
  callback: Type.Optional(Type.Object({ url: Type.String() }, { description: 'the callback asked for on submit (its headers are not shown)' })),
  callbacks: Type.Optional(Type.Array(Delivery, { description: 'GET /v1/tasks/:id: the deliveries of the task\'s ending to its callback and the configured webhooks' })),
  unplaceable: Type.Optional(Type.String({ description: 'a task waiting to be placed whose required labels no live member (running its type) has, as the answering node sees the cluster: it waits until such a member is back' })),
  dependsOn: Type.Optional(Type.Array(Type.String(), { description: 'the task\'s parents (ids): it was waiting until all succeeded' })),
  parents: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'a task with dependsOn, once its parents all succeeded: each parent\'s result by id, as its handler got them in ctx.parents' })),
  /** Durable copies stored before the task was accepted (1 on a lone node, else 2). */
  copies: Type.Integer({ minimum: 1, description: 'durable copies stored before the task was accepted: 2 when another live member took one, 1 on a lone node' }),
  schedule: Type.Optional(Type.Object({
    name: Type.String({ description: 'the recurring schedule that fired the task' }),
    tick: Type.Integer({ description: 'Unix ms of the tick the task stands for (one task per tick)' }),
    firedAt: Type.Integer({ description: 'Unix ms when the leader fired it' }),
    lateMs: Type.Integer({ description: 'firedAt - tick' }),
    late: Type.Boolean({ description: `fired more than ${1000} ms after its tick: a tick missed while no leader fired it (a failover, a cluster restart) fires once, late` })
  }, { description: 'a task fired by a recurring schedule (PUT /v1/schedules/:name)' }))
})

/** POST /v1/tasks without `?wait=`. */
const Copies = Type.Integer({ minimum: 1, description: 'durable copies stored before the 202 (the fewest of the batch\'s tasks): 2 when another live member took one, 1 on a lone node (refused instead with minCopies 2)' })
export const SubmittedReply = Type.Object({ id: Type.String(), status: TaskStatusSchema, copies: Copies })
export const BatchReply = Type.Object({
  ids: Type.Array(Type.String()),
  copies: Copies,
  refs: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'each ref given in the batch, and the id of its task' }))
})
/** POST /v1/tasks/batch?wait=MS: 200 once all ended, 202 when the wait expired first. */
export const BatchWaitedReply = Type.Object({
  /** Every task's id, in the order submitted. */
  ids: Type.Array(Type.String()),
  /** The tasks that ended, in the order submitted (with their results). */
  tasks: Type.Array(TaskReply),
  /** Ids of the tasks that had not ended when the wait expired. */
  pending: Type.Array(Type.String())
})

/** POST /v1/tasks/wait: the tasks to wait for (ids bounded by maxBatchTasks). */
export function bulkWaitBody (maxIds: number) {
  return Type.Object({
    ids: Type.Array(Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }), { minItems: 1, maxItems: maxIds, description: `task ids, at most maxBatchTasks (${maxIds} here)` }),
    waitMs: Type.Optional(Type.Integer({ minimum: 0, description: 'longest wait for one of them to end (cut to the server\'s longest wait); 0 or absent: answer at once' }))
  }, { additionalProperties: false })
}

/** POST /v1/tasks/wait: answered once one asked task has ended (or the wait expired). */
export const BulkWaitReply = Type.Object({
  /** Asked tasks that have ended, in the order asked (with their results). */
  tasks: Type.Array(TaskReply),
  /** Asked ids held by a live node that have not ended yet: ask again for these. */
  pending: Type.Array(Type.String()),
  /** Asked ids no live node knows (never submitted, expired, or every holder gone). */
  missing: Type.Array(Type.String())
})

/** DELETE /v1/tasks?before=TS[&status=S]: finished records forgotten on every node that answered. */
export const PurgeReply = Type.Object({
  purged: Type.Integer({ description: 'records forgotten, summed over the nodes (a task held on two nodes counts twice)' }),
  nodes: Type.Integer({ description: 'nodes that purged (this one included)' }),
  unreachable: Type.Integer({ description: 'live members that did not answer: their copies stay until they expire' })
})

export const CancelReply = Type.Object({ id: Type.String(), status: Type.Union([Type.Literal('cancelled'), Type.Literal('cancelling')]) })
export const TaskListReply = Type.Object({
  tasks: Type.Array(TaskReply),
  cursor: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'scope=cluster: pass as ?cursor= for the next page; null when the listing is complete' })),
  partial: Type.Optional(Type.Boolean({ description: 'scope=cluster: a reachable member did not answer; tasks held only there may be missing from this page' }))
})

// ---- per-type limits (GET /v1/types, PUT /v1/types/:type) ---------------------

const Limit = {
  maxConcurrent: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'attempts of the type assigned or running at once, across the cluster' })),
  perSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, description: 'attempts of the type begun per second, across the cluster (bursts of one second\'s worth)' }))
}

export const TypeLimitBody = Type.Object(Limit, { additionalProperties: false, description: 'the type\'s whole limit: a field left out is no limit of that kind ({} removes both)' })
export const TypeLimitReply = Type.Object({
  type: Type.String(),
  ...Limit,
  stored: Type.Integer({ description: 'members that stored the setting before this answer (this node included)' }),
  members: Type.Integer({ description: 'reachable members (this node included); one that missed it gets it from the leader when it joins again' })
})
export const TypesReply = Type.Object({
  types: Type.Array(Type.Object({
    type: Type.String(),
    ...Limit,
    queued: Type.Integer({ description: 'tasks of the type waiting in the leader\'s queue (queued or retrying)' }),
    running: Type.Integer({ description: 'attempts of the type assigned or running' }),
    limited: Type.Integer({ description: 'of the queued ones, those the type\'s limit holds back now' })
  }))
})

// ---- server-sent events (GET /v1/events) --------------------------------------

/** `task`: a record held by the node changed (no payload; the result only on an ending sent to a stream filtered with ?task=). */
export const TaskEventData = Type.Composite([
  Type.Omit(TaskReply, ['result']),
  Type.Object({
    /** Member id of the node that accepted the task. */
    origin: Type.String(),
    /** The task's result: on a stream filtered with `?task=`, in the events of an ended task only. */
    result: Type.Optional(Type.Unknown())
  })
])

/** The member table as events carry it (GET /v1/cluster's, plus term and each member's task types). */
export const ClusterEventView = Type.Object({
  self: Type.Object({ id: Type.String(), name: Type.String() }),
  leader: Type.Union([Leader, Type.Null()]),
  term: Type.Integer(),
  members: Type.Array(Type.Composite([MemberReply, Type.Object({ types: Type.Array(Type.String()) })]))
})

/** One second of a node's history. */
export const SampleData = Type.Object({
  /** Unix ms at the end of the second. */
  t: Type.Integer(),
  /** Tasks held there that ended in this second, by outcome. */
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
  /** Attempts running across the live members, and tasks waiting in the leader's queue. */
  running: Type.Integer(),
  queued: Type.Integer()
})

/** `hello`: first on every stream. */
export const HelloEventData = Type.Object({
  cluster: Type.Union([ClusterEventView, Type.Null()]),
  history: Type.Array(SampleData),
  tasks: Type.Array(TaskEventData)
})

/** `cluster`: every second. */
export const ClusterEventData = Type.Composite([ClusterEventView, Type.Object({ sample: SampleData })])

/** `member`: joined, changed status, or forgotten. */
export const MemberEventData = Type.Union([
  Type.Object({ change: Type.Literal('joined'), id: Type.String(), name: Type.String(), status: Type.Literal('alive') }),
  Type.Object({ change: Type.Literal('status'), id: Type.String(), name: Type.String(), from: MemberStatus, status: MemberStatus, reason: Type.String() }),
  Type.Object({ change: Type.Literal('removed'), id: Type.String(), name: Type.String() })
])

/** `leader`: a new leader, or none. */
export const LeaderEventData = Type.Object({
  leader: Type.Union([Leader, Type.Null()]),
  /** Member id of the leader before, if any. */
  previous: Type.Union([Type.String(), Type.Null()]),
  term: Type.Union([Type.Integer(), Type.Null()])
})
