/**
 * The HTTP shapes of recurring schedules (PUT/GET/DELETE /v1/schedules/...),
 * once: the routes validate, document and serialize with them, and the
 * client takes its types from them. Pure TypeBox, like schemas.ts.
 */
import { Type } from '@sinclair/typebox'
import { MAX_CRON_LENGTH, MAX_TIMEZONE_LENGTH } from '../protocol/constants.ts'
import { SCHEDULE_NAME_PATTERN, ScheduledTaskSchema } from '../protocol/schedule-messages.ts'

export const ScheduleNameParams = Type.Object({ name: Type.String({ pattern: SCHEDULE_NAME_PATTERN, description: 'letters, digits, ".", "_", "-" (at most 100, starting with a letter or digit)' }) })

const Trigger = {
  cron: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_CRON_LENGTH, description: 'a cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; e.g. "*/5 * * * *". Not with everyMs' })),
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_TIMEZONE_LENGTH, description: 'IANA time zone the cron expression is read in (default UTC), e.g. "Europe/Berlin"' })),
  everyMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 2 ** 47, description: 'a tick every this many ms from the PUT (the first one everyMs after it). Not with cron' }))
}
const Task = Type.Composite([ScheduledTaskSchema], { additionalProperties: false, description: 'the task fired at each tick: a submit body without idempotencyKey, runAt or delayMs (each tick\'s task gets the key schedule:<name>:<tick>)' })

export const ScheduleBody = Type.Object({
  ...Trigger,
  task: Task,
  paused: Type.Optional(Type.Boolean({ description: 'create or replace it paused (default false)' }))
}, { additionalProperties: false, description: 'exactly one of cron and everyMs' })

export const ScheduleReply = Type.Object({
  name: Type.String(),
  ...Trigger,
  task: Task,
  paused: Type.Boolean(),
  createdAt: Type.Integer({ description: 'Unix ms when this trigger was set (everyMs ticks count from it)' }),
  updatedAt: Type.Integer({ description: 'Unix ms of the latest change (the version: the newest wins on every node)' }),
  lastTick: Type.Union([Type.Integer(), Type.Null()], { description: 'Unix ms of the latest tick fired, as this node last heard from the leader; null: none yet' }),
  nextTick: Type.Union([Type.Integer(), Type.Null()], { description: 'Unix ms of the next tick (null: paused, or a cron date that never comes again)' }),
  skippedTicks: Type.Integer({ description: 'ticks never fired because more than 100 were missed at once (a cluster down for long): the newest 100 fire late, older ones are skipped and counted here' })
})

export const ScheduleChangeReply = Type.Composite([ScheduleReply, Type.Object({
  stored: Type.Integer({ description: 'members that stored the change before this answer (this node included)' }),
  members: Type.Integer({ description: 'reachable members (this node included); one that missed it gets it from the leader when it joins again' })
})])

export const SchedulesReply = Type.Object({ schedules: Type.Array(ScheduleReply) })

export const ScheduleDeletedReply = Type.Object({
  name: Type.String(),
  deleted: Type.Literal(true),
  stored: Type.Integer(),
  members: Type.Integer()
})
