/**
 * Direct connections between members, without multicast:
 * - `host:port` bootstrap entries: each name is resolved (it may give several
 *   addresses) and every address dialled without a peer id (Noise tells who
 *   answered); again every retry interval while no member is connected.
 * - Members heard of through a third node: their heartbeats carry their
 *   listen addresses, and a member the runtime keeps is dialled at them
 *   whenever libp2p has no connection to it, so the loss of whoever
 *   introduced two members does not cut them apart.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { KEEP_ALIVE } from '@libp2p/interface'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { PAIR_YIELD_MS } from './pair-dial.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface MemberDialerInit {
  /** `host:port` bootstrap entries, already parsed. */
  hosts: ReadonlyArray<{ host: string, port: number }>
  /** Interval of bootstrap rounds while no member is connected, and least gap between dials of one member. */
  retryMs: number
  /** Every address of a name (default: the system resolver, so /etc/hosts counts). */
  resolve?: (host: string) => Promise<string[]>
  debug?: (msg: string, detail?: Record<string, unknown>) => void
}

/** Peers whose advertised addresses are remembered; the oldest is forgotten beyond this. */
const MAX_KNOWN_PEERS = 1024

async function resolveAll (host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host]
  return (await lookup(host, { all: true })).map(a => a.address)
}

/** The multiaddr string without a trailing /p2p/<id>. */
function bare (addr: string): string {
  return addr.replace(/\/p2p\/[^/]+$/, '')
}

export class MemberDialer {
  readonly #node: Libp2p
  readonly #init: MemberDialerInit
  /** Each peer's advertised TCP addresses (without /p2p/), as last heard in its heartbeat. */
  readonly #known = new Map<string, string[]>()
  /** Each peer's addresses exactly as its last heartbeat carried them. */
  readonly #raw = new Map<string, string>()
  readonly #kept = new Set<string>()
  readonly #lastDialMs = new Map<string, number>()
  /** The parsed peer id of each kept member: #reach runs for every heartbeat of one, and parsing the id cost more than the rest. */
  readonly #peerIds = new Map<string, PeerId>()
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (node: Libp2p, init: MemberDialerInit) {
    this.#node = node
    this.#init = init
  }

  start (): void {
    if (this.#init.hosts.length > 0) void this.#bootstrapRound()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  #connected (id: PeerId): boolean {
    return this.#node.getConnections(id).length > 0
  }

  /** True while some kept member has a live connection. */
  #hasMember (): boolean {
    for (const id of this.#kept) if (this.#connected(peerIdFromString(id))) return true
    return false
  }

  async #bootstrapRound (): Promise<void> {
    if (this.#stopped) return
    if (!this.#hasMember()) {
      const own = new Set(this.#node.getMultiaddrs().map(a => bare(a.toString())))
      const open = new Set(this.#node.getConnections().map(c => bare(c.remoteAddr.toString())))
      await Promise.all(this.#init.hosts.map(async ({ host, port }) => {
        let ips: string[]
        try {
          ips = await (this.#init.resolve ?? resolveAll)(host)
        } catch (err) {
          this.#init.debug?.('bootstrap name did not resolve', { host, err: (err as Error).message })
          return
        }
        for (const ip of ips) {
          const addr = `/${isIP(ip) === 6 ? 'ip6' : 'ip4'}/${ip}/tcp/${port}`
          if (own.has(addr) || open.has(addr)) continue
          this.#init.debug?.('dialling bootstrap address', { host, addr })
          this.#node.dial(multiaddr(addr)).then(c => {
            this.#init.debug?.('bootstrap address answered', { host, addr, peer: c.remotePeer.toString() })
          }, (err: Error) => {
            this.#init.debug?.('bootstrap dial failed', { host, addr, err: err.message })
          })
        }
      }))
    }
    if (this.#stopped) return
    this.#timer = setTimeout(() => { void this.#bootstrapRound() }, this.#init.retryMs)
    this.#timer.unref()
  }

  /**
   * Remembers the addresses a peer's signed heartbeat carries (TCP ones whose
   * /p2p/ part, if any, is that peer) and dials it if it is a kept member
   * without a connection.
   */
  learn (id: string, addrs: readonly string[]): void {
    // Called for every heartbeat: unchanged addresses are not parsed again.
    const raw = addrs.join(' ')
    if (this.#raw.get(id) === raw) {
      if (this.#kept.has(id) && this.#known.has(id)) this.#reach(id, false)
      return
    }
    this.#raw.delete(id)
    if (this.#raw.size >= MAX_KNOWN_PEERS) this.#raw.delete(this.#raw.keys().next().value!)
    this.#raw.set(id, raw)
    const usable: string[] = []
    for (const a of addrs) {
      try {
        const ma = multiaddr(a)
        const p2p = ma.getPeerId()
        if ((p2p === null || p2p === id) && ma.protoNames().includes('tcp')) usable.push(bare(a))
      } catch { /* not a multiaddr: ignored */ }
    }
    if (usable.length === 0) return
    const before = this.#known.get(id)
    this.#known.delete(id)
    if (this.#known.size >= MAX_KNOWN_PEERS) this.#known.delete(this.#known.keys().next().value!)
    this.#known.set(id, usable)
    const changed = before === undefined || before.join(' ') !== usable.join(' ')
    if (this.#kept.has(id)) this.#reach(id, changed)
  }

  /** A member's advertised TCP addresses, as last learned (empty when none). */
  addressesOf (id: string): string[] {
    return this.#known.get(id) ?? []
  }

  /**
   * Marks a member: tagged keep-alive (libp2p redials it), and dialled at its
   * advertised addresses if not connected: now by the member with the smaller
   * peer id, PAIR_YIELD_MS later by the other (both hear of each other at
   * about the same time; see pair-dial.ts).
   */
  keep (id: string): void {
    if (this.#kept.has(id)) return
    this.#kept.add(id)
    if (this.#node.peerId.toString() > id && !this.#lastDialMs.has(id)) this.#lastDialMs.set(id, Date.now() - this.#init.retryMs + PAIR_YIELD_MS)
    this.#reach(id, true)
  }

  #reach (id: string, updateStore: boolean): void {
    let peer = this.#peerIds.get(id)
    if (peer === undefined) {
      try { peer = peerIdFromString(id) } catch { return }
      this.#peerIds.set(id, peer)
    }
    const addrs = this.#known.get(id) ?? []
    const connected = this.#connected(peer)
    const now = Date.now()
    const due = !connected && addrs.length > 0 && now - (this.#lastDialMs.get(id) ?? -Infinity) >= this.#init.retryMs
    if (!updateStore && !due) return
    if (due) this.#lastDialMs.set(id, now)
    const multiaddrs: Multiaddr[] = []
    for (const a of addrs) {
      try { multiaddrs.push(multiaddr(a)) } catch { /* checked in learn */ }
    }
    this.#node.peerStore.merge(peer, { multiaddrs, tags: { [KEEP_ALIVE]: { value: 1 } } }).then(async () => {
      if (!due || this.#stopped || this.#connected(peer)) return
      this.#init.debug?.('dialling member at its advertised addresses', { peer: id, addresses: addrs })
      await this.#node.dial(peer)
    }).catch((err: Error) => {
      this.#init.debug?.('could not reach member directly', { peer: id, err: err.message })
    })
  }
}
