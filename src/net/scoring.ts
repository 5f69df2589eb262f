/**
 * Gossipsub peer scoring for the heartbeat topic: a peer that delivers
 * messages the topic validator rejects (malformed, forged, unsigned) loses
 * score fast, and one that sends garbage on the RPC protocol is penalised
 * through the application score. Below the graylist threshold everything
 * the peer sends over gossipsub is ignored unread; the penalty decays, so a
 * peer that stops misbehaving is heard again.
 *
 * Honest members never lose score: mesh-delivery penalties (which punish
 * quiet peers, and heartbeats are sparse) and the IP colocation penalty
 * (many test and demo nodes share one address) are off.
 */
import type { GossipsubOpts } from '@chainsafe/libp2p-gossipsub'
import { MAX_TRACKED_PEERS, makeRoom } from './rate-limit.ts'

/** Gossipsub's score thresholds, as configured below. */
export const SCORE_THRESHOLDS = {
  /** No gossip to or from a peer below this. */
  gossipThreshold: -10,
  /** Own messages not published to a peer below this. */
  publishThreshold: -50,
  /** Everything from a peer below this is ignored. */
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
}

/**
 * n recent invalid messages cost 20 x n^2 points; n decays by 1 % a second,
 * so three put a peer below the graylist threshold for about 40 s.
 */
const INVALID_MESSAGE_WEIGHT = -20

/**
 * Penalties for garbage on the RPC protocol: each bad frame costs
 * `RPC_FAULT_PENALTY` of application score, halving every 30 s.
 */
const RPC_FAULT_PENALTY = 30
const RPC_FAULT_HALF_LIFE_MS = 30_000

export class RpcFaults {
  readonly #now: () => number
  readonly #faults = new Map<string, { value: number, atMs: number }>()

  constructor (now: () => number = Date.now) {
    this.#now = now
  }

  /** Records one bad frame (or stream) from `peer`. */
  add (peer: string): void {
    const value = this.penalty(peer) + RPC_FAULT_PENALTY
    this.#faults.delete(peer)
    // Bounded: the oldest records go first.
    makeRoom(this.#faults, MAX_TRACKED_PEERS, () => false)
    this.#faults.set(peer, { value, atMs: this.#now() })
  }

  /** The current (decayed) penalty of `peer`, >= 0. */
  penalty (peer: string): number {
    const f = this.#faults.get(peer)
    if (f === undefined) return 0
    const value = f.value * 0.5 ** ((this.#now() - f.atMs) / RPC_FAULT_HALF_LIFE_MS)
    if (value < 0.5) { this.#faults.delete(peer); return 0 }
    return value
  }
}

/** The scoring options of the cluster's gossipsub, for `gossipsub({...heartbeatScoring(topic, faults)})`. */
export function heartbeatScoring (topic: string, faults: RpcFaults): Pick<GossipsubOpts, 'scoreParams' | 'scoreThresholds'> {
  return {
    scoreParams: {
      IPColocationFactorWeight: 0,
      appSpecificScore: peer => -faults.penalty(peer),
      appSpecificWeight: 1,
      topics: {
        [topic]: {
          topicWeight: 1,
          timeInMeshWeight: 0.01,
          timeInMeshQuantum: 1_000,
          timeInMeshCap: 100,
          firstMessageDeliveriesWeight: 0.1,
          firstMessageDeliveriesDecay: 0.5,
          firstMessageDeliveriesCap: 10,
          meshMessageDeliveriesWeight: 0,
          meshMessageDeliveriesDecay: 0.5,
          meshMessageDeliveriesCap: 100,
          meshMessageDeliveriesThreshold: 1,
          meshMessageDeliveriesWindow: 10,
          meshMessageDeliveriesActivation: 5_000,
          meshFailurePenaltyWeight: 0,
          meshFailurePenaltyDecay: 0.5,
          invalidMessageDeliveriesWeight: INVALID_MESSAGE_WEIGHT,
          invalidMessageDeliveriesDecay: 0.99
        }
      }
    },
    scoreThresholds: SCORE_THRESHOLDS
  }
}
