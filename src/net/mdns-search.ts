/**
 * mDNS discovery whose cost per node stays flat as the cluster grows, on top
 * of @libp2p/mdns (which answers queries and reports every answer it hears).
 *
 * @libp2p/mdns alone makes every member query every `interval`, and every
 * member answers every query to the whole multicast group: each node then
 * receives N x N / interval answers a second (120 a second at 25 nodes and
 * 5 s, 490 at 50), and libp2p merges each into its peer store. Here:
 * - The library queries once, when the node starts (a new node finds the
 *   members at once); its own periodic query is set to an hour and the
 *   periodic queries are sent from here.
 * - While the node is connected to no peer it asks again after 2 s, 4 s, ...
 *   up to `intervalMs` (a node whose first answers came before the others
 *   listened, or whose dials failed).
 * - Once connected, the members share the queries: each asks every
 *   `intervalMs` x (connected peers + 1), so the cluster as a whole asks
 *   about once per `intervalMs` (islands that never met still find each
 *   other within about that long) and a node receives about N answers per
 *   `intervalMs` instead of N x N.
 * - Every answer heard (to anyone's query) for a peer this node is not
 *   connected to is dialled, at most once per DIAL_AGAIN_MS per peer, never
 *   while a dial of it is under way, and at most MAX_DIALS_UNDER_WAY at once
 *   (the others wait their turn): on a starved host a handshake takes
 *   seconds, and re-dialling every 2 s, 24 peers at once, multiplied the
 *   handshakes until dials timed out (481 of 2,204 in a 25-node start);
 *   libp2p's own `peer:discovery` fires only the first time a peer enters
 *   the peer store, so a failed first dial was never retried. Of a pair
 *   that hear of each other, only the one with the smaller peer id dials at
 *   once (pair-dial.ts): one connection per pair, not two.
 * Members already known are re-dialled by member-dialer.ts, not by mDNS.
 */
import type { Libp2p, PeerDiscovery, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { PairDialer } from './pair-dial.ts'
import { skipConnectedAnswers } from './mdns-answers.ts'
import type { MdnsResponse } from './mdns-answers.ts'

/**
 * The parts of @libp2p/mdns's MulticastDNS this module uses: its
 * multicast-dns socket (public, set while started), and its answer handler
 * (bound in its constructor, registered on the socket by start()), which is
 * wrapped here before the node starts (mdns-answers.ts).
 */
export interface MdnsService extends PeerDiscovery {
  mdns?: { query: (q: { questions: Array<{ name: string, type: 'PTR' }> }) => void }
  _onMdnsResponse?: (rsp: MdnsResponse) => void
}

/** The library's own periodic query: effectively off (it still queries once at start). */
export const MDNS_LIBRARY_INTERVAL_MS = 3_600_000

/** First repeat of the query while connected to nobody; doubles up to intervalMs. */
const SEARCH_FIRST_MS = 2_000

/** Least gap between two dials of one peer found by mDNS. */
const DIAL_AGAIN_MS = 2_000

/** mDNS dials under way at once; the others queue (a starved host finishes a few handshakes sooner than many). */
export const MAX_DIALS_UNDER_WAY = 4

/** Peers whose last dial time is remembered; the oldest is forgotten beyond this. */
const MAX_DIALLED = 1024

/**
 * When a node asks next (before jitter), given how many peers it is
 * connected to and its current search step: connected to nobody, after the
 * search step, which doubles (from SEARCH_FIRST_MS) up to `intervalMs`;
 * connected, after `intervalMs` x (peers + 1), and the search starts over
 * at SEARCH_FIRST_MS the next time the node is alone.
 */
export function mdnsQueryDelayMs (peers: number, searchMs: number, intervalMs: number): { delayMs: number, searchMs: number } {
  if (peers === 0) return { delayMs: Math.min(searchMs, intervalMs), searchMs: Math.min(intervalMs, 2 * searchMs) }
  return { delayMs: intervalMs * (peers + 1), searchMs: SEARCH_FIRST_MS }
}

export interface MdnsSearchInit {
  serviceTag: string
  /** Once connected: how often the cluster as a whole asks (see above). */
  intervalMs: number
  debug?: (msg: string, detail?: Record<string, unknown>) => void
}

export class MdnsSearch {
  readonly #node: Libp2p
  readonly #service: MdnsService
  readonly #init: MdnsSearchInit
  readonly #lastDialMs = new Map<string, number>()
  /** The addresses of each peer's last answer (dialled with its /p2p/ part). */
  readonly #addrs = new Map<string, Multiaddr[]>()
  readonly #pairs: PairDialer
  /** Peers being dialled now. */
  readonly #underWay = new Set<string>()
  /** Peers waiting for a dial slot, in the order they were found. */
  readonly #queued = new Set<string>()
  /** Peers this node has an open connection to (libp2p's peer:connect and peer:disconnect). */
  readonly #peers = new Set<string>()
  #searchMs = SEARCH_FIRST_MS
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor (node: Libp2p, service: MdnsService, init: MdnsSearchInit) {
    this.#node = node
    this.#service = service
    this.#init = init
    const self = node.peerId.toString()
    node.addEventListener('peer:connect', evt => { this.#peers.add(evt.detail.toString()) })
    node.addEventListener('peer:disconnect', evt => { this.#peers.delete(evt.detail.toString()) })
    const parse = service._onMdnsResponse
    if (typeof parse === 'function') service._onMdnsResponse = skipConnectedAnswers(parse, init.serviceTag, self, id => this.#peers.has(id))
    else init.debug?.('mDNS answers of connected peers are parsed too: @libp2p/mdns has no _onMdnsResponse to wrap')
    this.#pairs = new PairDialer({
      self,
      connectedPeers: () => node.getPeers().length,
      connected: peer => this.#connected(peer),
      dial: async peer => { await this.#dial(peer) }
    })
    // Registered before the node starts: the answers to the library's first query count.
    service.addEventListener('peer', evt => { this.#found(evt.detail) })
  }

  start (): void {
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#pairs.stop()
    this.#queued.clear()
  }

  /** The delay before this node's next query (see mdnsQueryDelayMs), with +-25 % jitter so members do not ask together. */
  nextQueryMs (): number {
    const { delayMs, searchMs } = mdnsQueryDelayMs(this.#node.getPeers().length, this.#searchMs, this.#init.intervalMs)
    this.#searchMs = searchMs
    return Math.min(MDNS_LIBRARY_INTERVAL_MS, Math.round(delayMs * (0.75 + Math.random() / 2)))
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#query()
      this.#schedule()
    }, this.nextQueryMs())
    this.#timer.unref()
  }

  #query (): void {
    try {
      this.#service.mdns?.query({ questions: [{ name: this.#init.serviceTag, type: 'PTR' }] })
    } catch (err) {
      this.#init.debug?.('mdns query failed', { err: (err as Error).message })
    }
  }

  /** An answer heard on the group: dial its peer (now or, see pair-dial.ts, later) unless connected. */
  #found (peer: PeerInfo): void {
    if (this.#stopped || peer.multiaddrs.length === 0) return
    const id = peer.id.toString()
    if (id === this.#node.peerId.toString() || this.#connected(id)) return
    this.#addrs.delete(id)
    if (this.#addrs.size >= MAX_DIALLED) this.#addrs.delete(this.#addrs.keys().next().value!)
    this.#addrs.set(id, peer.multiaddrs.map(a => a.getPeerId() === null ? a.encapsulate(`/p2p/${id}`) : a))
    this.#pairs.offer(id)
  }

  /** Dials a peer at its last answer's addresses, unless dialled moments ago or being dialled; queued while MAX_DIALS_UNDER_WAY are. */
  async #dial (id: string): Promise<void> {
    if (this.#stopped || this.#underWay.has(id) || !this.#addrs.has(id)) return
    if (this.#underWay.size >= MAX_DIALS_UNDER_WAY) {
      if (this.#queued.size < MAX_DIALLED) this.#queued.add(id)
      return
    }
    const addrs = this.#addrs.get(id)!
    const now = Date.now()
    if (now - (this.#lastDialMs.get(id) ?? -Infinity) < DIAL_AGAIN_MS) return
    this.#lastDialMs.delete(id)
    if (this.#lastDialMs.size >= MAX_DIALLED) this.#lastDialMs.delete(this.#lastDialMs.keys().next().value!)
    this.#lastDialMs.set(id, now)
    this.#underWay.add(id)
    this.#init.debug?.('dialling peer found by mDNS', { peer: id, addresses: addrs.map(String) })
    await this.#node.dial(addrs).then(() => {}, (err: Error) => {
      this.#init.debug?.('dial of peer found by mDNS failed', { peer: id, err: err.message })
    })
    this.#underWay.delete(id)
    this.#next()
  }

  #connected (id: string): boolean {
    return this.#peers.has(id)
  }

  /** Starts the next queued dial of a peer still unconnected. */
  #next (): void {
    for (const id of this.#queued) {
      if (this.#underWay.size >= MAX_DIALS_UNDER_WAY) return
      this.#queued.delete(id)
      if (this.#connected(id)) continue
      void this.#dial(id)
    }
  }
}
