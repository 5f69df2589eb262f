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
  /** Direct probes and the joining state sync; a transport without them leaves membership to heartbeats alone. */
  readonly membership?: MembershipTransport
}

/**
 * What membership needs beyond heartbeats (src/net implements it with
 * libp2p dials and the `/taskmesh/members/1.0.0` protocol).
 */
export interface MembershipTransport {
  /**
   * Dials the member directly: 'answered' when a connection is (or already
   * was) open, 'refused' when every address refused it (the process is
   * gone), 'timeout' when nothing answered in time (paused or cut off:
   * proves nothing).
   */
  probe (id: string, timeoutMs: number): Promise<'answered' | 'refused' | 'timeout'>
  /** Peers connected now. */
  connectedPeers (): string[]
  /** Called when a first connection to a peer opens. */
  onPeerConnected (handler: (id: string) => void): void
  /** Called when a peer is discovered (an mDNS answer, a bootstrap entry), before any connection to it. */
  onPeerDiscovered (handler: (id: string) => void): void
  /** Sends this node's heartbeat to a member and returns that member's view (see src/protocol/member-sync.ts). */
  requestMembers (to: string, self: Heartbeat, timeoutMs: number): Promise<Heartbeat[]>
  /** Answers state-sync requests: `self` is the asker's heartbeat, its id already checked against the connection. */
  onMembersRequest (handler: (self: Heartbeat, from: string) => Heartbeat[]): void
}
