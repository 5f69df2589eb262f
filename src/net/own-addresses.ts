/**
 * This node's listen addresses as its heartbeats carry them (loopback last,
 * so members heard through a third node dial a routable one first).
 *
 * libp2p builds the list anew on every call (a `getsockname` per listener,
 * and the interface list for a wildcard listen address), and a leader
 * publishes every heartbeat interval, so the list is kept for TTL_MS: an
 * address that appears or goes away (an interface up or down) reaches the
 * heartbeats that much later. Members already connected do not use them.
 */
import type { Libp2p } from '@libp2p/interface'

/** How long the list is reused before libp2p is asked again. */
export const OWN_ADDRESSES_TTL_MS = 5_000

const LOOPBACK = /^\/(ip4\/127\.|ip6\/::1\/)/

export class OwnAddresses {
  readonly #node: Pick<Libp2p, 'getMultiaddrs'>
  readonly #now: () => number
  #cached: { at: number, addrs: string[] } | undefined

  constructor (node: Pick<Libp2p, 'getMultiaddrs'>, now: () => number = Date.now) {
    this.#node = node
    this.#now = now
  }

  /** Every listen address, loopback ones last. */
  list (): string[] {
    const now = this.#now()
    const c = this.#cached
    if (c !== undefined && now >= c.at && now - c.at < OWN_ADDRESSES_TTL_MS) return c.addrs
    const addrs = this.#node.getMultiaddrs().map(a => a.toString())
    const ordered = [...addrs.filter(a => !LOOPBACK.test(a)), ...addrs.filter(a => LOOPBACK.test(a))]
    // Not listening yet: nothing kept, the next call asks again.
    this.#cached = ordered.length === 0 ? undefined : { at: now, addrs: ordered }
    return ordered
  }
}
