/**
 * The membership side of the libp2p transport: direct probes (a dial) and
 * the joining state sync over `/taskmesh/members/1.0.0` (one request and
 * one reply per stream, size-limited and schema-checked, a timeout on every
 * exchange; see src/protocol/member-sync.ts).
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import type { Heartbeat } from '../core/types.ts'
import { MAX_ADDR_LENGTH, MAX_HEARTBEAT_ADDRS, MAX_SYNC_FRAME_BYTES, SYNC_TIMEOUT_MS } from '../protocol/constants.ts'
import { MEMBER_SYNC_PROTOCOL, decodeSyncReply, decodeSyncRequest, encodeSyncReply, encodeSyncRequest } from '../protocol/member-sync.ts'
import { DecodeError } from '../protocol/messages.ts'
import type { MembershipTransport } from '../runtime/transport.ts'

/** it-length-prefixed's errors for a frame that is too long, malformed or cut short. */
const FRAME_ERRORS = new Set(['InvalidMessageLengthError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'UnexpectedEOFError'])

/** State-sync streams open at once on one connection, each way. */
const MAX_SYNC_STREAMS = 8

/** A probe whose dial was reset is tried again after this long. */
const PROBE_RETRY_MS = 50

/** True when `err`, or an error it wraps (libp2p aggregates one per address: then every one), has this errno code. */
function errorCode (err: unknown, code: string, depth = 0): boolean {
  if (depth > 4 || typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown, message?: unknown, errors?: unknown, cause?: unknown }
  if (Array.isArray(e.errors) && e.errors.length > 0) return e.errors.every(x => errorCode(x, code, depth + 1))
  if (e.code === code || (typeof e.message === 'string' && e.message.includes(code))) return true
  return errorCode(e.cause, code, depth + 1)
}

export interface MemberProtocolHooks {
  /** A peer sent garbage: score it down. */
  fault: (peer: string) => void
  /** Logs a peer's fault (throttled by the caller). */
  warn: (msg: string, peer: string, detail: Record<string, unknown>) => void
  /** The listen addresses known for a member (this node's own for its id), sent along in a sync. */
  addressesOf: (id: string) => string[]
  /** Addresses of a member learned from a sync, so that it is dialled directly (see member-dialer.ts). */
  learn: (id: string, addrs: readonly string[]) => void
}

export class MemberProtocol implements MembershipTransport {
  readonly #node: Libp2p
  readonly #cluster: string
  readonly #hooks: MemberProtocolHooks
  #handler: ((self: Heartbeat, from: string) => Heartbeat[]) | undefined

  constructor (node: Libp2p, cluster: string, hooks: MemberProtocolHooks) {
    this.#node = node
    this.#cluster = cluster
    this.#hooks = hooks
  }

  async start (): Promise<void> {
    await this.#node.handle(MEMBER_SYNC_PROTOCOL, ({ stream, connection }) => {
      void this.#serve(stream, connection.remotePeer.toString())
    }, { maxInboundStreams: MAX_SYNC_STREAMS, maxOutboundStreams: MAX_SYNC_STREAMS, runOnLimitedConnection: false })
  }

  /**
   * Only a refused TCP connection counts as 'refused' (nothing listens: the
   * process is gone). A connection reset while the dial was under way (the
   * process was dying as it was dialled) is retried after a moment. Any
   * other failure (a handshake a stalled or overloaded peer did not finish,
   * no address, a timeout) proves nothing and is reported as 'timeout', so
   * the hint's own deadline decides.
   */
  async probe (id: string, timeoutMs: number): Promise<'answered' | 'refused' | 'timeout'> {
    const signal = AbortSignal.timeout(timeoutMs)
    for (;;) {
      try {
        await this.#node.dial(peerIdFromString(id), { signal })
        return 'answered'
      } catch (err) {
        if (signal.aborted) return 'timeout'
        if (errorCode(err, 'ECONNREFUSED')) return 'refused'
        if (!errorCode(err, 'ECONNRESET')) return 'timeout'
        await new Promise(resolve => setTimeout(resolve, PROBE_RETRY_MS))
      }
    }
  }

  connectedPeers (): string[] {
    return this.#node.getPeers().map(p => p.toString())
  }

  onPeerConnected (handler: (id: string) => void): void {
    this.#node.addEventListener('peer:connect', evt => { handler(evt.detail.toString()) })
  }

  onPeerDiscovered (handler: (id: string) => void): void {
    this.#node.addEventListener('peer:discovery', evt => { handler(evt.detail.id.toString()) })
  }

  /** A member's addresses as a heartbeat may carry them (bounded in number and length). */
  #addrs (id: string): string[] {
    return this.#hooks.addressesOf(id).filter(a => a.length > 0 && a.length <= MAX_ADDR_LENGTH).slice(0, MAX_HEARTBEAT_ADDRS)
  }

  async requestMembers (to: string, self: Heartbeat, timeoutMs: number): Promise<Heartbeat[]> {
    const signal = AbortSignal.timeout(timeoutMs)
    const stream = await this.#node.dialProtocol(peerIdFromString(to), MEMBER_SYNC_PROTOCOL, { signal })
    try {
      const frames = lpStream(stream, { maxDataLength: MAX_SYNC_FRAME_BYTES })
      await frames.write(encodeSyncRequest(this.#cluster, { ...self, addrs: this.#addrs(self.id) }), { signal })
      const reply = decodeSyncReply((await frames.read({ signal })).subarray())
      await stream.close({ signal })
      return reply.members.map(({ addrs, ...hb }) => {
        if (addrs !== undefined) this.#hooks.learn(hb.id, addrs)
        return hb
      })
    } catch (err) {
      stream.abort(err as Error)
      if (signal.aborted) throw new Error(`member sync with ${to} timed out after ${timeoutMs} ms`)
      throw err
    }
  }

  onMembersRequest (handler: (self: Heartbeat, from: string) => Heartbeat[]): void {
    this.#handler = handler
  }

  /** Answers one state-sync request on `stream`, then closes it. */
  async #serve (stream: Stream, from: string): Promise<void> {
    const signal = AbortSignal.timeout(SYNC_TIMEOUT_MS)
    try {
      const frames = lpStream(stream, { maxDataLength: MAX_SYNC_FRAME_BYTES })
      const req = decodeSyncRequest((await frames.read({ signal })).subarray())
      if (req.cluster !== this.#cluster) throw new Error(`member sync from cluster ${JSON.stringify(req.cluster)}, not ours`)
      if (req.self.id !== from) throw new DecodeError(`member sync request claims id ${req.self.id}, sent by ${from}`)
      if (this.#handler === undefined) throw new Error('node is starting')
      const { addrs, ...self } = req.self
      if (addrs !== undefined) this.#hooks.learn(self.id, addrs)
      const view = this.#handler(self, from).map(hb => ({ ...hb, addrs: this.#addrs(hb.id) }))
      await frames.write(encodeSyncReply(view), { signal })
      await stream.close({ signal })
    } catch (err) {
      if (err instanceof DecodeError || FRAME_ERRORS.has((err as Error).name)) this.#hooks.fault(from)
      this.#hooks.warn('member sync stream reset', from, { from, err: (err as Error).message })
      stream.abort(err as Error)
    }
  }
}
