/** Response schemas of the HTTP API: they validate, document and serialize (unknown fields are dropped). */
import { Type } from '@sinclair/typebox'

export const ErrorReply = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String() })
})

export const MemberReply = Type.Object({
  id: Type.String(),
  name: Type.String(),
  http: Type.String(),
  status: Type.Union([Type.Literal('alive'), Type.Literal('suspect'), Type.Literal('dead')]),
  capacity: Type.Integer(),
  running: Type.Integer(),
  queued: Type.Integer(),
  load: Type.Object({ cpu: Type.Number(), memory: Type.Number() }),
  lastSeenMs: Type.Integer()
})

export const ClusterReply = Type.Object({
  self: Type.Object({ id: Type.String(), name: Type.String() }),
  leader: Type.Union([Type.Object({ id: Type.String(), name: Type.String(), term: Type.Integer() }), Type.Null()]),
  members: Type.Array(MemberReply)
})

export const HealthReply = Type.Object({
  status: Type.Literal('ok'),
  id: Type.String(),
  name: Type.String(),
  uptimeMs: Type.Integer()
})
