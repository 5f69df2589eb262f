/**
 * The client side of the node-to-node RPC protocol: one request at a time
 * per stream, streams kept open and reused per peer (at most MAX_IDLE_LANES
 * idle ones, each closed after IDLE_LANE_MS unused), so a request rarely
 * pays for a new stream. The serving side is Libp2pTransport's #serve.
 */
import type { Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import type { LengthPrefixedStream } from 'it-length-prefixed-stream'
import { IDLE_LANE_MS, MAX_IDLE_LANES } from '../protocol/constants.ts'
import { RPC_PROTOCOL, decodeReply, encodeFrame } from '../protocol/rpc.ts'
import type { RpcReply, RpcRequest } from '../protocol/rpc.ts'
import { frameTaskId, trace, tracing } from '../trace.ts'

/** An open RPC stream to one peer, idle or carrying one request. */
interface Lane {
  stream: Stream
  frames: LengthPrefixedStream<Stream>
  idleTimer?: NodeJS.Timeout
}

export interface RpcLanesInit {
  maxFrameBytes: number
  /** Called for every frame sent or received (metrics). */
  onFrame?: (dir: 'sent' | 'received', kind: string, bytes: number) => void
}

export class RpcLanes {
  readonly #node: Libp2p
  readonly #init: RpcLanesInit
  readonly #idle = new Map<string, Lane[]>()
  /** Requests sent, and RPC streams opened for them: streams are reused, so opened stays far below requests. */
  readonly stats = { requests: 0, streamsOpened: 0 }

  constructor (node: Libp2p, init: RpcLanesInit) {
    this.#node = node
    this.#init = init
  }

  async request (to: string, msg: RpcRequest, timeoutMs: number): Promise<RpcReply> {
    const signal = AbortSignal.timeout(timeoutMs)
    const frame = encodeFrame(msg)
    if (frame.byteLength > this.#init.maxFrameBytes) throw new Error(`rpc ${msg.kind} of ${frame.byteLength} bytes exceeds maxFrameBytes ${this.#init.maxFrameBytes}`)
    let lane: Lane | undefined
    this.stats.requests++
    try {
      lane = this.#idleLane(to) ?? await this.#openLane(to, signal)
      const tid = tracing ? frameTaskId(msg) : ''
      trace('rpc.send', tid, msg.kind)
      await lane.frames.write(frame, { signal })
      trace('rpc.written', tid, msg.kind)
      this.#init.onFrame?.('sent', msg.kind, frame.byteLength)
      const reply = await lane.frames.read({ signal })
      this.#release(to, lane)
      const decoded = decodeReply(reply.subarray())
      trace('rpc.reply', tid, msg.kind, decoded.kind)
      this.#init.onFrame?.('received', decoded.kind, reply.byteLength)
      return decoded
    } catch (err) {
      lane?.stream.abort(err as Error)
      if (signal.aborted) throw new Error(`rpc ${msg.kind} to ${to} timed out after ${timeoutMs} ms`)
      if ((err as Error).name === 'UnexpectedEOFError') throw new Error(`rpc ${msg.kind} to ${to}: stream closed without a reply`)
      throw err
    }
  }

  /** Stops the idle timers and forgets the idle streams (the node's stop closes them). */
  stop (): void {
    for (const lanes of this.#idle.values()) for (const lane of lanes) clearTimeout(lane.idleTimer)
    this.#idle.clear()
  }

  /** An idle stream to this peer that is still open both ways, if any. */
  #idleLane (to: string): Lane | undefined {
    const lanes = this.#idle.get(to)
    while (lanes !== undefined && lanes.length > 0) {
      const lane = lanes.pop()!
      clearTimeout(lane.idleTimer)
      if (lane.stream.status === 'open' && lane.stream.readStatus === 'ready' && (lane.stream.writeStatus === 'writing' || lane.stream.writeStatus === 'ready')) return lane
      lane.stream.abort(new Error('stale idle rpc stream'))
    }
    return undefined
  }

  async #openLane (to: string, signal: AbortSignal): Promise<Lane> {
    const stream = await this.#node.dialProtocol(peerIdFromString(to), RPC_PROTOCOL, { signal })
    this.stats.streamsOpened++
    return { stream, frames: lpStream(stream, { maxDataLength: this.#init.maxFrameBytes }) }
  }

  #release (to: string, lane: Lane): void {
    let lanes = this.#idle.get(to)
    if (lanes === undefined) this.#idle.set(to, lanes = [])
    if (lanes.length >= MAX_IDLE_LANES) {
      lane.stream.close().catch(() => {})
      return
    }
    lanes.push(lane)
    lane.idleTimer = setTimeout(() => {
      const i = lanes.indexOf(lane)
      if (i >= 0) lanes.splice(i, 1)
      lane.stream.close().catch(() => {})
    }, IDLE_LANE_MS)
    lane.idleTimer.unref()
  }
}
