/**
 * Built-in handlers, for trying and testing a cluster:
 * - echo: the result is the payload.
 * - sleep: `{ms}`; waits, reporting progress, and honours cancellation.
 * - hash: `{data, rounds}`; CPU-bound sha256 applied `rounds` times, result `{hex}`.
 * - fail: `{message}`; always throws.
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Handler } from './handler.ts'

function field<T> (payload: unknown, name: string, check: (v: unknown) => v is T, fallback?: T): T {
  const v = (payload !== null && typeof payload === 'object') ? (payload as Record<string, unknown>)[name] : undefined
  if (v === undefined && fallback !== undefined) return fallback
  if (!check(v)) throw new TypeError(`payload.${name} is missing or has the wrong type`)
  return v
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0
const isString = (v: unknown): v is string => typeof v === 'string'

export const builtins: Record<string, Handler> = {
  echo: payload => payload,

  sleep: async (payload, ctx) => {
    const ms = field(payload, 'ms', isCount)
    const steps = Math.max(1, Math.min(10, Math.floor(ms / 100)))
    for (let i = 1; i <= steps; i++) {
      await sleep(ms / steps, undefined, { signal: ctx.signal })
      ctx.progress(i / steps)
    }
    return { sleptMs: ms }
  },

  hash: (payload, ctx) => {
    const data = field(payload, 'data', isString)
    const rounds = field(payload, 'rounds', isCount, 1)
    let digest = Buffer.from(data)
    const every = Math.max(1, Math.floor(rounds / 10))
    for (let i = 1; i <= rounds; i++) {
      digest = createHash('sha256').update(digest).digest()
      if (i % every === 0) {
        if (ctx.signal.aborted) throw ctx.signal.reason
        ctx.progress(i / rounds)
      }
    }
    return { hex: digest.toString('hex') }
  },

  fail: payload => {
    const message = field(payload, 'message', isString, 'failed on purpose')
    throw new Error(message)
  }
}
