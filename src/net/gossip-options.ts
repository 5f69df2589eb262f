/**
 * Gossipsub options of the heartbeat topic that keep a heartbeat's cost per
 * node flat as the cluster grows (see docs/failover.md).
 */
import { createHash } from 'node:crypto'

/**
 * Gossipsub's fast message id: the author and sequence number as they
 * arrive (the default message id under StrictSign, without decoding or
 * verifying the message first). Gossipsub caches it only after the message
 * validated, so a forged copy cannot shadow the real one.
 */
export function fastHeartbeatId (msg: { from?: Uint8Array, seqno?: Uint8Array, data?: Uint8Array }): string {
  if (msg.from === undefined || msg.seqno === undefined) return createHash('sha256').update(msg.data ?? new Uint8Array()).digest('base64')
  return Buffer.from(msg.from).toString('base64') + Buffer.from(msg.seqno).toString('base64')
}

/**
 * A small gossipsub mesh: each node relays a heartbeat to D = 3 peers (not
 * 6, growing to 12, as by default), so it receives each heartbeat about 3
 * times, not up to 12. Heartbeats are small and on a LAN one hop is well
 * under a millisecond; lost ones are repaired by gossip (IHAVE/IWANT) and the
 * failure detector tolerates several in a row. Dout < Dlo and Dout <= D / 2,
 * Dscore <= D, as gossipsub requires.
 */
export const HEARTBEAT_MESH = { D: 3, Dlo: 2, Dhi: 5, Dout: 1, Dscore: 1, Dlazy: 3 }
