import { describe, expect, it } from 'vitest'
// dns-packet: the encoder/decoder multicast-dns (under @libp2p/mdns) uses, so the fixtures are what the socket gives.
import dnsPacket from 'dns-packet'
import { answeringPeer, skipConnectedAnswers } from '../../src/net/mdns-answers.ts'
import type { MdnsResponse } from '../../src/net/mdns-answers.ts'

const TAG = 'taskmesh-test.local'
const PEER = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
const OTHER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'

/**
 * An answer as @libp2p/mdns sends it (gotQuery: a PTR record, then one TXT
 * record per address, each `dnsaddr=<multiaddr with /p2p/>`), encoded to
 * the wire and decoded again as multicast-dns does.
 */
function answer (peer: string, ports: number[], where: 'answers' | 'additionals' = 'answers', tag = TAG): MdnsResponse {
  const name = `randomname.${tag}`
  const txt = ports.map(port => ({ name, type: 'TXT' as const, class: 'IN' as const, ttl: 120, data: `dnsaddr=/ip4/198.18.0.${port % 250}/tcp/${port}/p2p/${peer}` }))
  const ptr = { name: tag, type: 'PTR' as const, class: 'IN' as const, ttl: 120, data: name }
  const packet = dnsPacket.encode({ type: 'response', answers: where === 'answers' ? [ptr, ...txt] : [ptr], additionals: where === 'additionals' ? txt : [] })
  return dnsPacket.decode(packet) as MdnsResponse
}

describe('mDNS answers of connected peers (mdns-answers.ts)', () => {
  it('reads the peer id of an answer as @libp2p/mdns does: its first dnsaddr, in the answers or the additional records', () => {
    expect(answeringPeer(answer(PEER, [4001, 4002]), TAG)).toBe(PEER)
    expect(answeringPeer(answer(OTHER, [4001], 'additionals'), TAG)).toBe(OTHER)
  })

  it('an answer of another service, or one without an address, names nobody', () => {
    expect(answeringPeer(answer(PEER, [4001], 'answers', 'other-service.local'), TAG)).toBeNull()
    expect(answeringPeer(answer(PEER, []), TAG)).toBeNull()
    expect(answeringPeer({ answers: [{ name: TAG, type: 'PTR', data: 'x' }, { name: 'x', type: 'TXT', data: [Buffer.from('dnsaddr=/ip4/198.18.0.1/tcp/1')] }] }, TAG)).toBeNull()
    expect(answeringPeer({}, TAG)).toBeNull()
  })

  it('passes the library only the answers of peers this node is not connected to, and those it cannot read', () => {
    const parsed: MdnsResponse[] = []
    const connected = new Set([OTHER])
    const handle = skipConnectedAnswers(rsp => { parsed.push(rsp) }, TAG, 'self-id', id => connected.has(id))
    const ofPeer = answer(PEER, [4001])
    const ofConnected = answer(OTHER, [4002])
    const ofSelf = answer('self-id', [4003])
    const foreign = answer(OTHER, [4004], 'answers', 'other-service.local')
    for (const rsp of [ofPeer, ofConnected, ofSelf, foreign]) handle(rsp)
    expect(parsed).toEqual([ofPeer, foreign])
    // Once the peer has disconnected, its answers are parsed again.
    connected.delete(OTHER)
    handle(ofConnected)
    expect(parsed).toEqual([ofPeer, foreign, ofConnected])
  })
})
