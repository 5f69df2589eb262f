import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { HeartbeatSigner, HeartbeatVerifier } from '../../src/net/heartbeat-signing.ts'

const TOPIC = '/taskmesh/c/heartbeat/2'

async function member (): Promise<{ id: string, signer: HeartbeatSigner }> {
  const key = await generateKeyPair('Ed25519')
  return { id: peerIdFromPrivateKey(key).toString(), signer: new HeartbeatSigner(key, TOPIC) }
}

describe('heartbeats signed in their payload', () => {
  it('verifies under the key of the member it names, and under no other', async () => {
    const a = await member()
    const b = await member()
    const verifier = new HeartbeatVerifier(TOPIC)
    const body = new TextEncoder().encode('{"id":"a"}')
    const frame = a.signer.frame(body)
    expect(Buffer.from(verifier.body(frame))).toEqual(Buffer.from(body))
    expect(verifier.signedBy(a.id, frame)).toBe(true)
    // Again, now with a1's key object cached.
    expect(verifier.signedBy(a.id, frame)).toBe(true)
    // The same frame claimed for another member (a relaying member, a stranger) does not verify.
    expect(verifier.signedBy(b.id, frame)).toBe(false)
    expect(verifier.signedBy('not-a-peer-id', frame)).toBe(false)
  })

  it('rejects an altered body or signature, and a frame signed for another cluster', async () => {
    const a = await member()
    const verifier = new HeartbeatVerifier(TOPIC)
    const frame = a.signer.frame(new TextEncoder().encode('{"term":1}'))
    const altered = Uint8Array.from(frame)
    altered[altered.length - 2] = altered[altered.length - 2]! ^ 1
    expect(verifier.signedBy(a.id, altered)).toBe(false)
    const badSig = Uint8Array.from(frame)
    badSig[5] = badSig[5]! ^ 1
    expect(verifier.signedBy(a.id, badSig)).toBe(false)
    expect(new HeartbeatVerifier('/taskmesh/other/heartbeat/2').signedBy(a.id, frame)).toBe(false)
  })

  it('refuses frames of the wrong shape before anything is decoded', () => {
    const verifier = new HeartbeatVerifier(TOPIC)
    expect(() => verifier.body(new Uint8Array([1, 2, 3]))).toThrow(/not a signed heartbeat frame/)
    expect(() => verifier.body(new Uint8Array(100).fill(2))).toThrow(/version 2/)
    expect(() => verifier.body(new TextEncoder().encode(JSON.stringify({ v: 1, id: 'x', padding: 'x'.repeat(80) })))).toThrow(/not a signed heartbeat frame/)
  })
})
