/**
 * What the runtime needs from the network. src/net implements it with
 * libp2p; nothing outside src/net knows libp2p exists.
 */
import type { Heartbeat } from '../core/types.ts'

export interface ClusterTransport {
  /** This node's member id (its libp2p peer id). */
  readonly id: string
  /** Addresses other nodes can dial, as multiaddr strings. */
  addresses (): string[]
  /** Publishes a heartbeat to the cluster's topic. */
  publishHeartbeat (hb: Heartbeat): Promise<void>
  /** Called with each valid heartbeat whose claimed id is its signer. */
  onHeartbeat (handler: (hb: Heartbeat) => void): void
  /** Called when the last connection to a peer closes (a hint, not proof, of its death). */
  onPeerDisconnected (handler: (id: string) => void): void
  /** Marks a peer as a cluster member: its connection is kept and re-dialled. */
  keepConnected (id: string): void
  stop (): Promise<void>
}
