import { describe, expect, it } from 'vitest'
import { QueueFullError } from '../../src/errors.ts'
import { RpcRefusedError, errorOfReply, refusal, refusesTerm, replyOfError } from '../../src/protocol/rpc-errors.ts'
import { RPC_ERROR_CODES, decodeReply, encodeFrame } from '../../src/protocol/rpc.ts'

describe('RPC error codes', () => {
  it('decodes every code of the closed set, and refuses a reply with any other code', () => {
    for (const code of RPC_ERROR_CODES) expect(decodeReply(encodeFrame(refusal(code, 'x')))).toEqual({ kind: 'error', code, message: 'x' })
    const bytes = new TextEncoder().encode(JSON.stringify({ kind: 'error', code: 'WHATEVER', message: 'x' }))
    expect(() => decodeReply(bytes)).toThrow(/rpc reply invalid/)
  })

  it('turns a handler failure into INTERNAL, and a deliberate refusal into its own code', () => {
    expect(replyOfError(new Error('disk full'))).toEqual({ kind: 'error', code: 'INTERNAL', message: 'disk full' })
    expect(replyOfError(Object.assign(new Error('duck'), { code: 'NOT_LEADER' }))).toMatchObject({ code: 'INTERNAL' })
    expect(replyOfError(new RpcRefusedError('NOT_LEADER', 'no'))).toMatchObject({ code: 'NOT_LEADER' })
  })

  it('maps a full queue to the 429 the client sees, and every other code to a refusal naming it', () => {
    expect(errorOfReply(refusal('QUEUE_FULL', 'queue full'), 50)).toBeInstanceOf(QueueFullError)
    const err = errorOfReply(refusal('NOT_LEADER', 'this node does not lead'), 50)
    expect(err).toBeInstanceOf(RpcRefusedError)
    expect(err.message).toBe('NOT_LEADER: this node does not lead')
  })

  it('reads TERM_TAKEN and STALE_TERM as a refusal of the term', () => {
    expect(refusesTerm(refusal('TERM_TAKEN', ''))).toBe(true)
    expect(refusesTerm(refusal('STALE_TERM', ''))).toBe(true)
    expect(refusesTerm(refusal('NOT_LEADER', ''))).toBe(false)
  })
})
