/**
 * Debug log of how a cluster forms, for scripts/bench/scale-timeline.ts:
 * each new peer connection, identify, and gossip mesh graft (with
 * TASKMESH_LAN_LOG_LEVEL=debug in a bench run, or `--log-level debug`).
 */
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import type { Libp2p, PubSub } from '@libp2p/interface'

export function logFormation (node: Libp2p<{ pubsub: PubSub<GossipsubEvents> }>, debug: (msg: string, detail?: Record<string, unknown>) => void): void {
  node.addEventListener('peer:connect', evt => { debug('peer connected', { peer: evt.detail.toString(), peers: node.getPeers().length }) })
  node.addEventListener('peer:identify', evt => { debug('peer identified', { peer: evt.detail.peerId.toString() }) })
  node.services.pubsub.addEventListener('gossipsub:graft', evt => { debug('gossip mesh: grafted', { peer: evt.detail.peerId }) })
}
