/** Per-type limits: GET /v1/types (the leader's counts), PUT /v1/types/:type (a limit, on every reachable member). */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { TaskRuntime } from '../runtime/task-runtime.ts'
import { MaxConcurrent, PerSecond } from '../protocol/rpc.ts'
import { MAX_TYPE_LENGTH } from '../protocol/constants.ts'
import { ErrorReply } from './schemas.ts'

const errors = { '4xx': ErrorReply, '5xx': ErrorReply }
const Limit = {
  maxConcurrent: Type.Optional(Type.Integer({ ...MaxConcurrent, description: 'attempts of the type assigned or running at once, across the cluster' })),
  perSecond: Type.Optional(Type.Number({ ...PerSecond, description: 'attempts of the type begun per second, across the cluster (bursts of one second\'s worth)' }))
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

export function registerTypeRoutes (app: FastifyInstance, runtime: () => TaskRuntime): void {
  app.get('/v1/types', {
    schema: {
      summary: 'Each task type with a limit or tasks: its cluster-wide limit, and its queued, running and limited counts (from the leader)',
      response: { 200: TypesReply, ...errors }
    }
  }, async () => ({ types: await runtime().types() }))

  app.put('/v1/types/:type', {
    schema: {
      summary: 'Set a task type\'s cluster-wide limit (maxConcurrent, perSecond) at runtime: stored on every reachable member, enforced by the leader from its next dispatch, kept across failovers and restarts',
      params: Type.Object({ type: Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_TYPE_LENGTH - 1}}$` }) }),
      body: TypeLimitBody,
      response: { 200: TypeLimitReply, ...errors }
    }
  }, async req => {
    const { type } = req.params as { type: string }
    return await runtime().setTypeLimit(type, req.body as { maxConcurrent?: number, perSecond?: number })
  })
}
