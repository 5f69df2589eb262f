/**
 * The two forms of a `bootstrap` entry: a full multiaddr ending /p2p/<peer id>
 * (dialled through libp2p's bootstrap discovery), or `host:port` with a DNS
 * name or an IP and no peer id (resolved by this node, each address dialled;
 * the peer id comes out of the Noise handshake). Pure string parsing: shared
 * by the config check and the transport.
 */

export type BootstrapEntry =
  | { kind: 'multiaddr', addr: string }
  | { kind: 'host', host: string, port: number }

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

function isDnsName (host: string): boolean {
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  return name.length > 0 && name.length <= 253 && name.split('.').every(l => LABEL.test(l)) && !/^[\d.]+$/.test(name)
}

/** Parses one entry; null when it is neither form. */
export function parseBootstrapEntry (entry: string): BootstrapEntry | null {
  if (entry.startsWith('/')) {
    return /^(\/[^/]+)+\/p2p\/[A-Za-z0-9]+$/.test(entry) && entry.length <= 1024 ? { kind: 'multiaddr', addr: entry } : null
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(entry)
  if (m === null) return null
  const port = Number(m[3])
  if (port < 1 || port > 65535) return null
  if (m[1] !== undefined) return m[1].includes(':') ? { kind: 'host', host: m[1], port } : null
  const host = m[2]!
  if (!IPV4.test(host) && !isDnsName(host)) return null
  return { kind: 'host', host, port }
}

/** Why an entry is refused, for the config error. */
export const BOOTSTRAP_FORMS = 'host:port (a DNS name, an IPv4 address or [IPv6], and a port 1-65535) or a multiaddr ending /p2p/<peer id>'
