/**
 * mDNS answers of peers this node is already connected to, dropped before
 * @libp2p/mdns parses them.
 *
 * Every member answers every query to the whole multicast group, so each
 * node hears every member's answer to every query (about N answers per
 * mdnsIntervalMs, see mdns-search.ts), almost all of them from members it is
 * connected to. @libp2p/mdns parses each one in full (every address a
 * multiaddr, the peer id decoded from base58 into a key) and hands it to the
 * peer store, which re-encodes and rewrites the peer's record: at 25 idle
 * nodes that was about a quarter of a member's main-thread time, for answers
 * that change nothing (mdns-search.ts, the only listener that acts on them,
 * skips connected peers anyway). Here the answer's peer id is read as text
 * from its first `dnsaddr=` record, and the library parses only the answers
 * of peers this node is not connected to (and those it cannot read this
 * way, unchanged). A connected peer's new addresses still arrive in its
 * heartbeats (member-dialer.ts), and once it disconnects its answers are
 * parsed again.
 */

/** A decoded mDNS record as multicast-dns gives it (a TXT record's data is a list of strings). */
export interface MdnsRecord {
  name?: string
  type?: string
  data?: unknown
}

/** A decoded mDNS response as multicast-dns gives it. */
export interface MdnsResponse {
  answers?: MdnsRecord[]
  additionals?: MdnsRecord[]
}

const DNSADDR = 'dnsaddr='
const P2P = '/p2p/'

/**
 * The peer id an answer of this service names, read as @libp2p/mdns reads it
 * (the `/p2p/` part of its first `dnsaddr=` TXT string, in the answers then
 * the additional records); null when it is no answer of this service or
 * names none.
 */
export function answeringPeer (rsp: MdnsResponse, serviceTag: string): string | null {
  if (!(rsp.answers ?? []).some(a => a.type === 'PTR' && a.name === serviceTag)) return null
  for (const list of [rsp.answers ?? [], rsp.additionals ?? []]) {
    for (const record of list) {
      if (record.type !== 'TXT') continue
      for (const item of Array.isArray(record.data) ? record.data : [record.data]) {
        const text = String(item)
        if (!text.startsWith(DNSADDR)) continue
        const at = text.lastIndexOf(P2P)
        return at < 0 ? null : text.slice(at + P2P.length)
      }
    }
  }
  return null
}

/**
 * Wraps the library's answer handler: an answer naming this node or a peer
 * `connected` reports is dropped; every other one goes to `parse` as it was.
 */
export function skipConnectedAnswers (parse: (rsp: MdnsResponse) => void, serviceTag: string, self: string, connected: (peer: string) => boolean): (rsp: MdnsResponse) => void {
  return rsp => {
    const peer = answeringPeer(rsp, serviceTag)
    if (peer !== null && (peer === self || connected(peer))) return
    parse(rsp)
  }
}
