/**
 * The membership state sync (`/taskmesh/members/1.0.0`): a node that joins
 * sends its own heartbeat to the first member it reaches and gets that
 * member's whole view back in the same round trip (as memberlist's
 * push-pull), instead of waiting to hear every member's heartbeat.
 *
 * One request and one reply per stream, each a length-prefixed JSON
 * document checked against the schemas below; the heartbeats inside are
 * the heartbeat topic's schema (src/protocol/messages.ts).
 */
import { Type } from '@sinclair/typebox'
import type { Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { Heartbeat } from '../core/types.ts'
import { DecodeError, HeartbeatSchema, PROTOCOL_VERSION } from './messages.ts'
import { MAX_SYNC_MEMBERS } from './constants.ts'

export const MEMBER_SYNC_PROTOCOL = '/taskmesh/members/1.0.0'

/** A heartbeat as in the topic, with the member's listen addresses (so that the joiner dials it directly). */
const WireHeartbeat = Type.Omit(HeartbeatSchema, ['v'])
type WireHeartbeat = Heartbeat & { addrs?: string[] }

export const SyncRequestSchema = Type.Object({
  v: Type.Literal(PROTOCOL_VERSION),
  /** The cluster the asker belongs to: a member of another cluster refuses. */
  cluster: Type.String({ minLength: 1, maxLength: 256 }),
  /** The asker's own heartbeat (its id must be the authenticated peer's). */
  self: WireHeartbeat
}, { additionalProperties: false })

export const SyncReplySchema = Type.Object({
  v: Type.Literal(PROTOCOL_VERSION),
  /** The answering member's heartbeat first, then every member it holds alive. */
  members: Type.Array(WireHeartbeat, { maxItems: MAX_SYNC_MEMBERS })
}, { additionalProperties: false })

export type SyncRequest = Static<typeof SyncRequestSchema>
export type SyncReply = Static<typeof SyncReplySchema>

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeSyncRequest (cluster: string, self: WireHeartbeat): Uint8Array {
  return encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, cluster, self } satisfies SyncRequest))
}

export function encodeSyncReply (members: readonly WireHeartbeat[]): Uint8Array {
  return encoder.encode(JSON.stringify({ v: PROTOCOL_VERSION, members: members.slice(0, MAX_SYNC_MEMBERS) } satisfies SyncReply))
}

function decodeWith<T> (check: (x: unknown) => x is T, errors: (x: unknown) => string, bytes: Uint8Array, what: string): T {
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new DecodeError(`${what} is not UTF-8 JSON: ${(err as Error).message}`)
  }
  if (!check(parsed)) throw new DecodeError(`${what} invalid ${errors(parsed)}`)
  return parsed
}

function firstError (schema: typeof SyncRequestSchema | typeof SyncReplySchema, x: unknown): string {
  const first = Value.Errors(schema, x).First()
  return `at ${first?.path === '' ? '/' : first?.path}: ${first?.message ?? 'schema mismatch'}`
}

export function decodeSyncRequest (bytes: Uint8Array): SyncRequest {
  return decodeWith((x): x is SyncRequest => Value.Check(SyncRequestSchema, x), x => firstError(SyncRequestSchema, x), bytes, 'member sync request')
}

export function decodeSyncReply (bytes: Uint8Array): SyncReply {
  return decodeWith((x): x is SyncReply => Value.Check(SyncReplySchema, x), x => firstError(SyncReplySchema, x), bytes, 'member sync reply')
}
