/** Recurring schedules: PUT/GET/DELETE /v1/schedules/:name, GET /v1/schedules, POST .../pause and .../resume. */
import type { FastifyInstance } from 'fastify'
import type { TaskRuntime } from '../runtime/task-runtime.ts'
import type { ScheduleChange, ScheduleInput } from '../runtime/tasks/schedules.ts'
import { ErrorReply } from './schemas.ts'
import { ScheduleBody, ScheduleChangeReply, ScheduleDeletedReply, ScheduleNameParams, ScheduleReply, SchedulesReply } from './schedule-schemas.ts'

const errors = { '4xx': ErrorReply, '5xx': ErrorReply }
const flat = (c: ScheduleChange): Record<string, unknown> => ({ ...c.schedule, stored: c.stored, members: c.members })

export function registerScheduleRoutes (app: FastifyInstance, runtime: () => TaskRuntime): void {
  app.put('/v1/schedules/:name', {
    schema: {
      summary: 'Create or replace a recurring schedule (cron with an optional time zone, or everyMs) that fires its task at each tick: stored on every reachable member (answered once two hold it), fired by the leader, one task per tick under the idempotency key schedule:<name>:<tick>; a tick missed while no leader fired it fires once, late (the task\'s schedule.late)',
      params: ScheduleNameParams,
      body: ScheduleBody,
      response: { 200: ScheduleChangeReply, ...errors }
    }
  }, async req => flat(await runtime().schedules.put((req.params as { name: string }).name, req.body as ScheduleInput)))

  app.get('/v1/schedules', {
    schema: { summary: 'Every recurring schedule (from this node\'s copy), with its latest and next tick', response: { 200: SchedulesReply, ...errors } }
  }, async () => ({ schedules: runtime().schedules.list() }))

  app.get('/v1/schedules/:name', {
    schema: { summary: 'One recurring schedule, with its latest and next tick', params: ScheduleNameParams, response: { 200: ScheduleReply, ...errors } }
  }, async req => runtime().schedules.get((req.params as { name: string }).name))

  app.delete('/v1/schedules/:name', {
    schema: { summary: 'Delete a recurring schedule: it fires no more ticks (tasks already fired go on)', params: ScheduleNameParams, response: { 200: ScheduleDeletedReply, ...errors } }
  }, async req => await runtime().schedules.delete((req.params as { name: string }).name))

  app.post('/v1/schedules/:name/pause', {
    schema: { summary: 'Pause a recurring schedule: no tick fires until it is resumed', params: ScheduleNameParams, response: { 200: ScheduleChangeReply, ...errors } }
  }, async req => flat(await runtime().schedules.pause((req.params as { name: string }).name)))

  app.post('/v1/schedules/:name/resume', {
    schema: { summary: 'Resume a paused schedule: ticks count from now (the ticks of the pause are not caught up)', params: ScheduleNameParams, response: { 200: ScheduleChangeReply, ...errors } }
  }, async req => flat(await runtime().schedules.resume((req.params as { name: string }).name)))
}
