/**
 * Gossipsub options of the heartbeat topic that keep a heartbeat's cost per
 * node flat as the cluster grows (see docs/failover.md).
 */
import { hash } from 'node:crypto'

/**
 * Gossipsub's message id under StrictNoSign: a hash of the payload (the
 * signed heartbeat frame, see heartbeat-signing.ts), computed synchronously
 * with node:crypto. Gossipsub records it in its seen-cache before it calls
 * the topic validator, so the copies of one heartbeat that arrive from
 * several mesh peers are dropped as duplicates and its signature is checked
 * once. A forged or altered copy hashes differently: it cannot shadow the
 * real one. (node:crypto's one-shot `hash`: no Hash object per copy.)
 */
export function heartbeatMsgId (msg: { data: Uint8Array }): Uint8Array {
  return hash('sha256', msg.data, 'buffer')
}

/** The message id as gossipsub keys its caches (base64, as its default does, without its generic encoder). */
export function heartbeatMsgIdToString (id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('base64')
}

/**
 * A small gossipsub mesh: each node relays a heartbeat to D = 3 peers (not
 * 6, growing to 12, as by default), so it receives each heartbeat about 3
 * times, not up to 12. Heartbeats are small and on a LAN one hop is well
 * under a millisecond; lost ones are repaired by gossip (IHAVE/IWANT) and the
 * failure detector tolerates several in a row. Dout < Dlo and Dout <= D / 2,
 * Dscore <= D, as gossipsub requires.
 *
 * Dhi (gossipsub 14: a mesh larger than Dhi is pruned back to D at the next
 * gossipsub heartbeat, and a GRAFT from a peer we did not dial is refused
 * once the mesh has Dhi peers) is D = 3 (it was 5, then 4): every node
 * grafts D peers and accepts grafts from others, so meshes grew past D, and
 * every mesh peer sends a copy of each heartbeat and gets one. With Dhi 4
 * instead of 5 an idle node at 10 members made about 9 % fewer socket reads
 * and writes; with 3 instead of 4 about 15 % fewer, and 0.79-0.97x the CPU
 * (bench/README.md, issue 15, "Idle node, heartbeat budget"). A mesh still
 * never falls below Dlo = 2 peers without grafting back up to D; a peer we
 * dialled may still graft past Dhi and is pruned at the next heartbeat.
 *
 * Gossip (IHAVE, the ids of the last mcacheGossip = 3 gossipsub heartbeats'
 * messages, about 1.2-1.9 KB at 10 members) goes to Dlazy = 1 peer outside
 * the mesh each gossipsub heartbeat (1 s), with gossipFactor 0 (it was Dlazy
 * 3 with gossipsub's gossipFactor 0.25: max(3, 0.25 x the peers outside the
 * mesh), 3 peers at 10 members and 5 at 25), each an RPC sent, read and checked id by id against the
 * seen-cache, whose count does not shrink with fewer heartbeats (at 10
 * members with the followers' budget of 8, about an eighth of an idle
 * node's socket writes). On connections that do not lose messages the mesh
 * delivers every heartbeat; gossip repairs what a mesh change dropped, now
 * from one peer a second instead of three to five. At 10 idle members:
 * 0.87-0.95x the CPU in three pairs (bench/README.md, "Idle node, heartbeat
 * budget").
 */
export const HEARTBEAT_MESH = { D: 3, Dlo: 2, Dhi: 3, Dout: 1, Dscore: 1, Dlazy: 1, gossipFactor: 0 }
