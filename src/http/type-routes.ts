/** Per-type limits: GET /v1/types (the leader's counts), PUT /v1/types/:type (a limit, on every reachable member). */
import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { TaskRuntime } from '../runtime/task-runtime.ts'
import { MAX_TYPE_LENGTH } from '../protocol/constants.ts'
import { ErrorReply, TypeLimitBody, TypeLimitReply, TypesReply } from './schemas.ts'

const errors = { '4xx': ErrorReply, '5xx': ErrorReply }

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
