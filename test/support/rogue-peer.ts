/**
 * A hostile peer for tests: a bare libp2p node that discovers the cluster by
 * mDNS like a member would, then publishes whatever bytes it likes on the
 * cluster's heartbeat topic (test code; product code imports libp2p only in src/net).
 */
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Libp2p, PubSub } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { heartbeatTopic, mdnsServiceTag } from '../../src/net/libp2p-transport.ts'

export interface RoguePeer {
  id: string
  connectedPeers: () => number
  publish: (bytes: Uint8Array) => Promise<void>
  stop: () => Promise<void>
}

export async function startRoguePeer (cluster: string): Promise<RoguePeer> {
  const node: Libp2p<{ pubsub: PubSub<GossipsubEvents>, identify: unknown }> = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [mdns({ serviceTag: mdnsServiceTag(cluster), interval: 1_000 })],
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, floodPublish: true }) }
  })
  node.addEventListener('peer:discovery', evt => { node.dial(evt.detail.id).catch(() => {}) })
  await node.start()
  const topic = heartbeatTopic(cluster)
  node.services.pubsub.subscribe(topic)
  return {
    id: node.peerId.toString(),
    connectedPeers: () => node.services.pubsub.getSubscribers(topic).length,
    publish: async bytes => { await node.services.pubsub.publish(topic, bytes) },
    stop: async () => { await node.stop() }
  }
}
