/**
 * The wire shapes of recurring schedules (src/core/schedules.ts), used by
 * the RPC messages `schedules` and `keys` (src/protocol/rpc.ts) and by a
 * task's `schedule` stamp. Pure TypeBox, like rpc.ts.
 */
import { Type } from '@sinclair/typebox'
import { MAX_ATTEMPTS, MAX_CRON_LENGTH, MAX_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PRIORITY, MAX_RETAIN_MS, MAX_SCHEDULES, MAX_SCHEDULE_NAME_LENGTH, MAX_TASK_TIMEOUT_MS, MAX_TIMEZONE_LENGTH, MAX_TYPE_LENGTH } from './constants.ts'

const Ms = Type.Integer({ minimum: 0, maximum: 2 ** 47 })
/** Schedules a member holds: the live ones and as many deleted ones (see ScheduleStore). */
export const HELD_SCHEDULES = 2 * MAX_SCHEDULES
export const SCHEDULE_NAME_PATTERN = `^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_SCHEDULE_NAME_LENGTH - 1}}$`
export const ScheduleName = Type.String({ pattern: SCHEDULE_NAME_PATTERN })

/** The task a schedule fires (a submit body without idempotencyKey, runAt, delayMs: each tick decides those). */
export const ScheduledTaskSchema = Type.Object({
  type: Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH }),
  payload: Type.Optional(Type.Unknown()),
  priority: Type.Optional(Type.Integer({ minimum: -MAX_PRIORITY, maximum: MAX_PRIORITY })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TASK_TIMEOUT_MS })),
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS })),
  retainMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RETAIN_MS }))
}, { additionalProperties: false })

export const ScheduleDefSchema = Type.Object({
  name: ScheduleName,
  cron: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_CRON_LENGTH })),
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_TIMEZONE_LENGTH })),
  everyMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 47 })),
  task: ScheduledTaskSchema,
  paused: Type.Boolean(),
  deleted: Type.Optional(Type.Boolean()),
  anchor: Ms,
  from: Ms,
  version: Ms,
  by: Type.String({ maxLength: MAX_ID_LENGTH })
}, { additionalProperties: false })

export const ScheduleProgressSchema = Type.Object({
  name: ScheduleName,
  lastTick: Ms,
  skipped: Type.Integer({ minimum: 0 })
}, { additionalProperties: false })

/** A task fired by a schedule says so: which schedule, its tick's time, when it was fired and how late. */
export const TickStampSchema = Type.Object({
  name: ScheduleName,
  tick: Ms,
  firedAt: Ms,
  lateMs: Type.Integer({ minimum: 0 }),
  late: Type.Boolean()
}, { additionalProperties: false })

/**
 * Anyone -> members: schedule definitions and progress (each kept when newer
 * than the one held, on disk before the reply). `want`: the receiver answers
 * with every definition and progress it holds (reply `schedules`), else `ok`.
 */
export const SchedulesRequest = Type.Object({
  kind: Type.Literal('schedules'),
  defs: Type.Array(ScheduleDefSchema, { maxItems: HELD_SCHEDULES }),
  progress: Type.Array(ScheduleProgressSchema, { maxItems: HELD_SCHEDULES }),
  want: Type.Optional(Type.Literal(true))
}, { additionalProperties: false })
export const SchedulesReply = Type.Object({
  kind: Type.Literal('schedules'),
  defs: Type.Array(ScheduleDefSchema, { maxItems: HELD_SCHEDULES }),
  progress: Type.Array(ScheduleProgressSchema, { maxItems: HELD_SCHEDULES })
}, { additionalProperties: false })

/** New leader -> members: which of these idempotency keys name a task you hold? (a schedule's ticks the last leader may have fired). Reply `keys`. */
export const KeysRequest = Type.Object({
  kind: Type.Literal('keys'),
  keys: Type.Array(Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }), { maxItems: 10_000 })
}, { additionalProperties: false })
export const KeysReply = Type.Object({
  kind: Type.Literal('keys'),
  held: Type.Array(Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }), { maxItems: 10_000 })
}, { additionalProperties: false })
