/**
 * The settings that shape tasks rather than the node: user handlers, limits
 * per task type, this node's labels and the leader's placement, webhooks and
 * callback delivery. One table, merged into ConfigSchema (src/config.ts,
 * where precedence, validation and the other settings live).
 */
import { Type } from '@sinclair/typebox'
import { PLACEMENT_STRATEGIES } from './core/placement.ts'
import { CALLBACK_HEADER_PATTERN, LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, MAX_CALLBACK_URL_LENGTH, MAX_LABELS, MAX_TYPE_LENGTH } from './protocol/constants.ts'

export const TASK_OPTION_FIELDS = {
  /** User task handlers: task type -> module path (relative to the config file's folder), a default-exported async (payload, ctx) => result. */
  handlers: Type.Record(Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_TYPE_LENGTH - 1}}$` }), Type.String({ minLength: 1 }), { default: {}, additionalProperties: false }),
  /**
   * Cluster-wide limits per task type, enforced by the leader: at most
   * `maxConcurrent` attempts of the type assigned or running across the
   * cluster, at most `perSecond` begun per second (bursts of one second's
   * worth). `PUT /v1/types/:type` changes them at runtime (the newest setting
   * wins, kept on every node). Default: no limits.
   */
  types: Type.Record(Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_TYPE_LENGTH - 1}}$` }), Type.Object({
    maxConcurrent: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    perSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 }))
  }, { additionalProperties: false }), { default: {}, additionalProperties: false }),
  /**
   * This node's labels, gossiped with its heartbeats (`{"gpu": "a100",
   * "zone": "rack2"}`): a task that requires labels (`"require": {"gpu":
   * "*"}`) runs only on a member that has them. Keys and values are short
   * words (letters, digits, `._/-`; values also `:`). Default: none.
   */
  labels: Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ pattern: LABEL_VALUE_PATTERN }), { default: {}, maxProperties: MAX_LABELS, additionalProperties: false }),
  /**
   * How the leader chooses among the members that can take a task (they run
   * its type, meet its required labels and have room): `least-loaded` (the
   * task's origin when it has a slot free, else the smallest share of slots
   * in use), `round-robin` (each in turn, by member id, whatever their load)
   * or `most-free-slots` (the most slots not in use: large nodes fill first).
   */
  placement: Type.Union(PLACEMENT_STRATEGIES.map(p => Type.Literal(p)), { default: 'least-loaded' }),
  /**
   * Webhooks: every task ending whose status is in `events` (default all
   * three) is POSTed to `url` with `headers`, by the task's first live
   * holder, like a submit's `callback` (signed with webhookSecret, retried,
   * at least once with a delivery id). Set the same list on every node.
   */
  webhooks: Type.Array(Type.Object({
    url: Type.String({ minLength: 8, maxLength: MAX_CALLBACK_URL_LENGTH, pattern: '^https?://' }),
    events: Type.Optional(Type.Array(Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]), { minItems: 1, maxItems: 3 })),
    headers: Type.Optional(Type.Record(Type.String({ pattern: CALLBACK_HEADER_PATTERN }), Type.String({ maxLength: 4096 }), { maxProperties: 32, additionalProperties: false }))
  }, { additionalProperties: false }), { default: [], maxItems: 16 }),
  /**
   * Key of the HMAC-SHA256 signature every callback and webhook delivery
   * carries (`X-Taskmesh-Signature: sha256=<hex of HMAC(key, timestamp + "."
   * + body)>`); null sends them unsigned (and the node warns once a task asks
   * for one). Set the same on every node; prefer TASKMESH_WEBHOOK_SECRET.
   */
  webhookSecret: Type.Union([Type.String({ minLength: 16, maxLength: 1024 }), Type.Null()], { default: null }),
  /** Tries of one delivery before it is given up as failed (backoff from callbackRetryBaseMs, doubling, at most callbackRetryMaxMs). */
  callbackMaxAttempts: Type.Integer({ minimum: 1, maximum: 1000, default: 12 }),
  callbackRetryBaseMs: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 1_000 }),
  callbackRetryMaxMs: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 300_000 }),
  /** Time one delivery POST may take before it counts as failed (and is tried again). */
  callbackTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 })
}
