/**
 * A hostile peer for tests: a bare libp2p node that discovers the cluster by
 * mDNS like a member would, then publishes whatever bytes it likes on the
 * cluster's heartbeat topic, or writes whatever bytes it likes on the
 * taskmesh RPC protocol (test code; product code imports libp2p only in src/net).
 */
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { TopicValidatorResult } from '@libp2p/interface'
import type { Libp2p, PubSub } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { peerIdFromString } from '@libp2p/peer-id'
import { createLibp2p } from 'libp2p'
import { heartbeatTopic, mdnsServiceTag } from '../../src/net/libp2p-transport.ts'
import { heartbeatMsgId, heartbeatMsgIdToString } from '../../src/net/gossip-options.ts'
import { HeartbeatSigner, HeartbeatVerifier } from '../../src/net/heartbeat-signing.ts'
import { RPC_PROTOCOL } from '../../src/protocol/rpc.ts'

/** What became of raw bytes written on an RPC stream. */
export interface RawExchange {
  /** Bytes the node sent back before the stream ended. */
  reply: Uint8Array
  /** `closed`: the node ended the stream; `reset`: it reset it (or the dial failed); `timeout`: neither in time. */
  outcome: 'closed' | 'reset' | 'timeout'
  error?: string
}

export interface RoguePeer {
  id: string
  connectedPeers: () => number
  publish: (bytes: Uint8Array) => Promise<void>
  /** `body` (an encoded heartbeat) in a heartbeat frame signed with this peer's own key, as a member signs its heartbeats. */
  signed: (body: Uint8Array) => Uint8Array
  /**
   * Opens an RPC stream to `peer`, writes `chunks` as they are (no framing
   * added: the caller frames, or does not), closes its writing side unless
   * `keepOpen`, and reads until the node ends or resets the stream.
   */
  sendRaw: (peer: string, chunks: Uint8Array[], opts?: { keepOpen?: boolean, timeoutMs?: number }) => Promise<RawExchange>
  stop: () => Promise<void>
}

/** `relay: false` makes the peer pass on no one's messages but its own (so a test knows who delivered what). */
export async function startRoguePeer (cluster: string, opts: { relay?: boolean } = {}): Promise<RoguePeer> {
  const privateKey = await generateKeyPair('Ed25519')
  const topic = heartbeatTopic(cluster)
  const node: Libp2p<{ pubsub: PubSub<GossipsubEvents>, identify: unknown }> = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [mdns({ serviceTag: mdnsServiceTag(cluster), interval: 1_000 })],
    // Gossipsub as the members run it (no gossipsub signature; heartbeats carry their own), so what it publishes reaches their topic validator.
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, floodPublish: true, globalSignaturePolicy: 'StrictNoSign', msgIdFn: heartbeatMsgId, msgIdToStrFn: heartbeatMsgIdToString }) }
  })
  node.addEventListener('peer:discovery', evt => { node.dial(evt.detail.id).catch(() => {}) })
  await node.start()
  const self = node.peerId.toString()
  const signer = new HeartbeatSigner(privateKey, topic)
  if (opts.relay === false) {
    const verifier = new HeartbeatVerifier(topic)
    node.services.pubsub.topicValidators.set(topic, (_from, msg) => verifier.signedBy(self, msg.data) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore)
  }
  node.services.pubsub.subscribe(topic)
  return {
    id: node.peerId.toString(),
    connectedPeers: () => node.services.pubsub.getSubscribers(topic).length,
    publish: async bytes => { await node.services.pubsub.publish(topic, bytes) },
    signed: body => signer.frame(body),
    sendRaw: async (peer, chunks, opts = {}) => {
      const signal = AbortSignal.timeout(opts.timeoutMs ?? 15_000)
      let stream
      try {
        stream = await node.dialProtocol(peerIdFromString(peer), RPC_PROTOCOL, { signal })
      } catch (err) {
        return { reply: new Uint8Array(), outcome: 'reset', error: (err as Error).message }
      }
      const open = stream
      const onAbort = (): void => { open.abort(new Error('timeout')) }
      signal.addEventListener('abort', onAbort, { once: true })
      const received: Uint8Array[] = []
      const keepOpen = opts.keepOpen === true
      const writing = open.sink((async function * () {
        yield * chunks
        if (keepOpen) await new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })
      })()).catch(() => {})
      let outcome: RawExchange['outcome'] = 'closed'
      let error: string | undefined
      try {
        for await (const c of open.source) received.push(c.subarray())
      } catch (err) {
        outcome = signal.aborted ? 'timeout' : 'reset'
        error = (err as Error).message
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
      await writing
      open.abort(new Error('done'))
      return { reply: Buffer.concat(received), outcome, error }
    },
    stop: async () => { await node.stop() }
  }
}
