import { describe, expect, it } from 'vitest'
import { Value } from '@sinclair/typebox/value'
import { RpcRequestSchema, decodeReply, decodeRequest, encodeFrame } from '../../src/protocol/rpc.ts'

const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))
const update = { id: 't1', status: 'succeeded', attempts: 1, worker: 'w1', progress: null, result: { n: 1 }, error: null, startedAt: 1, finishedAt: 2 }
const spec = { id: 't1', type: 'echo', payload: { n: 1 }, priority: 0, timeoutMs: 1000, maxAttempts: 3, idempotencyKey: null, createdAt: 1, origin: 'n1', replicas: ['n2'] }

describe('RPC frame decoding (a compiled check per message kind)', () => {
  it('accepts well-formed requests and replies of several kinds', () => {
    const requests = [{ kind: 'updates', updates: [update] }, { kind: 'submit', tasks: [spec] }, { kind: 'assign', term: 3, leader: 'n1', tasks: [{ spec, attempt: 1 }] }]
    for (const r of requests) expect(decodeRequest(bytes(r))).toEqual(r)
    expect(decodeReply(encodeFrame({ kind: 'ok' }))).toEqual({ kind: 'ok' })
  })

  it('refuses what the schema refuses, naming where, as Value.Check of the whole union would', () => {
    const bad: unknown[] = [
      null, 7, 'updates', [], {}, { kind: 'nope' }, { kind: 7 },
      { kind: 'updates', updates: [{ ...update, status: 'done' }] },
      { kind: 'updates', updates: [{ ...update, extra: 1 }] },
      { kind: 'updates', updates: [update], extra: true },
      { kind: 'submit', tasks: [{ ...spec, priority: 1.5 }] },
      { kind: 'toString' }, { kind: '__proto__' }
    ]
    for (const b of bad) {
      expect(Value.Check(RpcRequestSchema, b)).toBe(false)
      expect(() => decodeRequest(bytes(b))).toThrow(/rpc request invalid at/)
    }
    expect(() => decodeRequest(new TextEncoder().encode('{'))).toThrow(/not UTF-8 JSON/)
  })
})
