import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { DecodeError, decodeHeartbeat, decodeHeartbeatFrame, encodeHeartbeat } from '../../src/protocol/messages.ts'
import { MAX_ADDR_LENGTH, MAX_HEARTBEAT_ADDRS, MAX_HEARTBEAT_BYTES } from '../../src/protocol/constants.ts'
import type { Heartbeat } from '../../src/core/types.ts'

const hb: Heartbeat = {
  id: '12D3KooWtest', name: 'a1', incarnation: 1, seq: 3, http: 'http://127.0.0.1:7420', capacity: 2, running: 0, queued: 0,
  load: { cpu: 0.1, memory: 0.5 }, types: ['echo'], leader: null, term: 0, dead: [{ id: 'x', incarnation: 1 }], joining: false
}

describe('heartbeat wire format', () => {
  it('round-trips', () => {
    expect(decodeHeartbeat(encodeHeartbeat(hb))).toEqual(hb)
  })

  it('carries the sender\'s listen addresses on the wire only, bounded in count and length', () => {
    const addrs = ['/ip4/198.18.0.11/tcp/7001/p2p/12D3KooWtest', '/ip4/127.0.0.1/tcp/7001/p2p/12D3KooWtest']
    expect(decodeHeartbeatFrame(encodeHeartbeat(hb, addrs))).toEqual({ hb, addrs })
    expect(decodeHeartbeat(encodeHeartbeat(hb, addrs))).toEqual(hb)
    expect(decodeHeartbeatFrame(encodeHeartbeat(hb))).toEqual({ hb, addrs: [] })
    // The encoder keeps what fits: the first MAX_HEARTBEAT_ADDRS, none longer than MAX_ADDR_LENGTH.
    const many = Array.from({ length: MAX_HEARTBEAT_ADDRS + 3 }, (_, i) => `/ip4/198.18.0.${i + 1}/tcp/1`)
    expect(decodeHeartbeatFrame(encodeHeartbeat(hb, ['/' + 'x'.repeat(MAX_ADDR_LENGTH), ...many])).addrs).toEqual(many.slice(0, MAX_HEARTBEAT_ADDRS))
    // The decoder refuses a sender that does not.
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
    expect(() => decodeHeartbeat(enc({ v: 1, ...hb, addrs: many }))).toThrow(/heartbeat invalid at \/addrs/)
    expect(() => decodeHeartbeat(enc({ v: 1, ...hb, addrs: ['/' + 'x'.repeat(MAX_ADDR_LENGTH)] }))).toThrow(/\/addrs\/0/)
    expect(() => decodeHeartbeat(enc({ v: 1, ...hb, addrs: [''] }))).toThrow(/\/addrs\/0/)
  })

  it('rejects garbage, wrong versions, extra fields and oversized messages with a DecodeError', () => {
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
    expect(() => decodeHeartbeat(new Uint8Array([0xff, 0xfe, 0x00]))).toThrow(DecodeError)
    expect(() => decodeHeartbeat(enc({ ...hb, v: 2 }))).toThrow(/heartbeat invalid at \/v/)
    expect(() => decodeHeartbeat(enc({ v: 1, ...hb, evil: true }))).toThrow(DecodeError)
    expect(() => decodeHeartbeat(enc({ v: 1, ...hb, capacity: -1 }))).toThrow(/\/capacity/)
    expect(() => decodeHeartbeat(new Uint8Array(MAX_HEARTBEAT_BYTES + 1))).toThrow(/exceeds/)
  })

  it('never throws anything but a DecodeError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), bytes => {
      try {
        decodeHeartbeat(bytes)
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError)
      }
    }), { numRuns: 2000 })
  })
})
