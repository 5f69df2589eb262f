/**
 * The cluster key: a libp2p private network (pnet). Every connection is
 * wrapped in XSalsa20 under the pre-shared key before anything else is said,
 * so a host without the key cannot complete a connection (Noise, which runs
 * inside, still authenticates each peer and encrypts the link).
 *
 * A host with another key (or none) sees only noise, and its connection
 * fails during the upgrade. libp2p reports that only to its debug log, so
 * the protector also watches each connection it wraps: one aborted before
 * its upgrade completed is reported as refused.
 */
import { preSharedKey } from '@libp2p/pnet'
import type { ComponentLogger, ConnectionProtector, MultiaddrConnection } from '@libp2p/interface'

export interface RefusedConnection {
  /** The remote multiaddr, e.g. /ip4/10.0.0.7/tcp/4001. */
  remoteAddr: string
  reason: string
}

/**
 * A connection protector for `createLibp2p({ connectionProtector })` that
 * requires `key` (swarm.key text) and calls `onRefused` for each connection
 * that never got past the upgrade.
 */
export function privateNetwork (key: Uint8Array, onRefused: (c: RefusedConnection) => void): (components: { logger: ComponentLogger }) => ConnectionProtector {
  const factory = preSharedKey({ psk: key })
  return components => {
    const inner = factory(components)
    return {
      async protect (conn: MultiaddrConnection): Promise<MultiaddrConnection> {
        const abort = conn.abort.bind(conn)
        conn.abort = (err: Error) => {
          if (conn.timeline.upgraded === undefined) {
            onRefused({ remoteAddr: conn.remoteAddr.toString(), reason: err.message })
          }
          abort(err)
        }
        return await inner.protect(conn)
      }
    }
  }
}
