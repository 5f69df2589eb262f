/**
 * What the runtime needs from the network. src/net implements it with
 * libp2p; nothing outside src/net knows libp2p exists.
 */
import type { Heartbeat } from '../core/types.ts'
import type { RpcReply, RpcRequest } from '../protocol/rpc.ts'

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
  /** Marks a peer as a cluster member: its connection is kept, and it is dialled directly (at the addresses its heartbeats carry) whenever there is none. */
  keepConnected (id: string): void
  /** Sends one request to a member over a direct stream and waits for its reply (rejects on timeout or a bad reply). */
  request (to: string, msg: RpcRequest, timeoutMs: number): Promise<RpcReply>
  /** Serves requests from other members; the handler's reply (or error) goes back on the same stream. */
  onRequest (handler: (msg: RpcRequest, from: string) => Promise<RpcReply>): void
  stop (): Promise<void>
}
