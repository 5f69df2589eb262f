/**
 * Every message that crosses the wire, defined once: the TypeBox schema gives
 * both the TypeScript type and the runtime check. Nothing reaches the core
 * without passing `decode*` here.
 */
import { Type } from '@sinclair/typebox'
import type { Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { TypeCheck } from '@sinclair/typebox/compiler'
import type { Heartbeat } from '../core/types.ts'
import { LABEL_KEY_PATTERN, LABEL_REQUIRE_PATTERN, LABEL_VALUE_PATTERN, MAX_LABELS, MAX_ADDR_LENGTH, MAX_DEAD_ACCEPTED, MAX_HEARTBEAT_ADDRS, MAX_HEARTBEAT_INTERVAL_MS, MAX_HEARTBEAT_BYTES, MAX_ID_LENGTH, MAX_NODE_NAME_LENGTH, MAX_TYPE_LENGTH } from './constants.ts'

export const PROTOCOL_VERSION = 1

const Id = Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH })
const Count = Type.Integer({ minimum: 0, maximum: 1_000_000_000 })
const Fraction = Type.Number({ minimum: 0, maximum: 1024 })

/** A node's labels (`{"gpu": "a100"}`), and a task's required labels (`*`: any value of the key). */
export const LabelsSchema = Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ pattern: LABEL_VALUE_PATTERN }), { maxProperties: MAX_LABELS, additionalProperties: false })
export const RequireSchema = Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ pattern: LABEL_REQUIRE_PATTERN }), { minProperties: 1, maxProperties: MAX_LABELS, additionalProperties: false })

export const HeartbeatSchema = Type.Object({
  v: Type.Literal(PROTOCOL_VERSION),
  id: Id,
  name: Type.String({ minLength: 1, maxLength: MAX_NODE_NAME_LENGTH }),
  incarnation: Type.Integer({ minimum: 0 }),
  seq: Type.Integer({ minimum: 0 }),
  http: Type.String({ maxLength: 256 }),
  capacity: Count,
  running: Count,
  queued: Count,
  load: Type.Object({ cpu: Fraction, memory: Fraction }, { additionalProperties: false }),
  types: Type.Array(Type.String({ minLength: 1, maxLength: MAX_TYPE_LENGTH }), { maxItems: 256 }),
  /** The sender's labels (absent: none). */
  labels: Type.Optional(LabelsSchema),
  leader: Type.Union([Id, Type.Null()]),
  term: Count,
  dead: Type.Array(Type.Object({ id: Id, incarnation: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }), { maxItems: MAX_DEAD_ACCEPTED }),
  joining: Type.Boolean(),
  /** The sender is leaving: `draining` (finishing its work) or `left` (gone; no failure timeout to wait for). */
  leaving: Type.Optional(Type.Union([Type.Literal('draining'), Type.Literal('left')])),
  /** How often the sender publishes now (see Heartbeat.intervalMs). */
  intervalMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_HEARTBEAT_INTERVAL_MS })),
  /**
   * The sender's dialable listen multiaddrs, so that members heard through a
   * third node are dialled directly. Wire-only: the transport keeps them, the
   * core never sees them.
   */
  addrs: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: MAX_ADDR_LENGTH }), { maxItems: MAX_HEARTBEAT_ADDRS }))
}, { additionalProperties: false })

export type HeartbeatMessage = Static<typeof HeartbeatSchema>

export class DecodeError extends Error {
  override name = 'DecodeError'
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes a heartbeat with the sender's listen addresses (at most MAX_HEARTBEAT_ADDRS, longer ones left out). */
export function encodeHeartbeat (hb: Heartbeat, addrs: readonly string[] = []): Uint8Array {
  const fit = addrs.filter(a => a.length > 0 && a.length <= MAX_ADDR_LENGTH).slice(0, MAX_HEARTBEAT_ADDRS)
  const msg: HeartbeatMessage = { v: PROTOCOL_VERSION, ...hb, ...(fit.length > 0 ? { addrs: fit } : {}) }
  return encoder.encode(JSON.stringify(msg))
}

/** Decodes and validates a heartbeat; throws DecodeError naming what is wrong. */
export function decodeHeartbeat (bytes: Uint8Array): Heartbeat {
  return decodeHeartbeatFrame(bytes).hb
}

/**
 * The heartbeat schema compiled (TypeBox's TypeCompiler) on the first
 * heartbeat decoded: every node decodes each new heartbeat of every member,
 * and `Value.Check` walks the schema each time. Accepts exactly what
 * `Value.Check` accepts.
 */
let checkHeartbeat: TypeCheck<typeof HeartbeatSchema> | undefined

/** Decodes and validates a heartbeat and the listen addresses it carries. */
export function decodeHeartbeatFrame (bytes: Uint8Array): { hb: Heartbeat, addrs: string[] } {
  if (bytes.byteLength > MAX_HEARTBEAT_BYTES) throw new DecodeError(`heartbeat of ${bytes.byteLength} bytes exceeds ${MAX_HEARTBEAT_BYTES}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new DecodeError(`heartbeat is not UTF-8 JSON: ${(err as Error).message}`)
  }
  if (!(checkHeartbeat ??= TypeCompiler.Compile(HeartbeatSchema)).Check(parsed)) {
    const first = Value.Errors(HeartbeatSchema, parsed).First()
    throw new DecodeError(`heartbeat invalid at ${first?.path === '' ? '/' : first?.path}: ${first?.message ?? 'schema mismatch'}`)
  }
  const { v: _v, addrs, ...hb } = parsed
  return { hb, addrs: addrs ?? [] }
}
