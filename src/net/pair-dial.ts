/**
 * One connection per pair of members.
 *
 * An mDNS answer is multicast to the whole group, so both members of a pair
 * hear of each other at about the same moment; when both dial at once
 * (before either connection is up, which on a starved host lasts seconds)
 * the pair ends up with two connections, each with its own Noise handshake,
 * identify exchange, gossipsub streams and heartbeat copies: at 25 nodes
 * started together up to 600 handshakes instead of 300, and 36-48
 * connections per node instead of 24. Here only the member with the smaller
 * peer id dials at once; the other waits (PAIR_YIELD_MS, or ALONE_YIELD_MS
 * while it is connected to nobody) and dials then only if still unconnected
 * (the smaller one missed the answer, or its dial failed).
 */

/** How long the member with the larger id waits before it dials a peer itself. */
export const PAIR_YIELD_MS = 4_000

/** The same wait of a node connected to nobody (it needs a first connection, and its state sync, soon). */
export const ALONE_YIELD_MS = 1_000

/**
 * Pure: how long this node waits before it dials a peer it just heard of
 * (and dials then only if still unconnected): 0 when it has the smaller
 * peer id (as strings compare); otherwise `aloneYieldMs` while it is
 * connected to nobody, `pairYieldMs` once it is connected.
 */
export function pairDialDelayMs (self: string, peer: string, connectedPeers: number, pairYieldMs = PAIR_YIELD_MS, aloneYieldMs = ALONE_YIELD_MS): number {
  if (self < peer) return 0
  return connectedPeers === 0 ? aloneYieldMs : pairYieldMs
}

export interface PairDialerInit {
  self: string
  /** Peers this node is connected to now. */
  connectedPeers: () => number
  /** True when this node has a connection to `peer`. */
  connected: (peer: string) => boolean
  /** Dials `peer`; resolves when the dial ended (either way). */
  dial: (peer: string) => Promise<void>
  pairYieldMs?: number
  aloneYieldMs?: number
}

/** Applies pairDialDelayMs with a timer per deferred peer. */
export class PairDialer {
  readonly #init: PairDialerInit
  readonly #later = new Map<string, NodeJS.Timeout>()
  #stopped = false

  constructor (init: PairDialerInit) {
    this.#init = init
  }

  /** This node heard of `peer` (an mDNS answer): dial it now, or later unless it dials us first. */
  offer (peer: string): void {
    if (this.#stopped || peer === this.#init.self || this.#init.connected(peer)) return
    const delayMs = pairDialDelayMs(this.#init.self, peer, this.#init.connectedPeers(), this.#init.pairYieldMs, this.#init.aloneYieldMs)
    if (delayMs === 0) {
      this.#cancel(peer)
      void this.#init.dial(peer)
      return
    }
    if (this.#later.has(peer)) return
    const timer = setTimeout(() => {
      this.#later.delete(peer)
      if (!this.#stopped && !this.#init.connected(peer)) void this.#init.dial(peer)
    }, delayMs)
    timer.unref()
    this.#later.set(peer, timer)
  }

  /** Peers waiting for their deferred dial (for tests and logs). */
  get deferred (): number { return this.#later.size }

  stop (): void {
    this.#stopped = true
    for (const t of this.#later.values()) clearTimeout(t)
    this.#later.clear()
  }

  #cancel (peer: string): void {
    const t = this.#later.get(peer)
    if (t === undefined) return
    clearTimeout(t)
    this.#later.delete(peer)
  }
}
