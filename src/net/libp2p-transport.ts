/**
 * The libp2p side of a node: TCP, Noise, Yamux, identify, mDNS, bootstrap and
 * gossipsub with strict signing. This folder is the only one that imports
 * libp2p, so a move to another libp2p major stays contained here.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { KEEP_ALIVE, TopicValidatorResult } from '@libp2p/interface'
import type { Libp2p, Message, PeerId, PrivateKey, PubSub, Stream } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { peerIdFromString } from '@libp2p/peer-id'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { createLibp2p } from 'libp2p'
import { decodeHeartbeat, encodeHeartbeat } from '../protocol/messages.ts'
import type { Heartbeat } from '../core/types.ts'
import { DecodeError } from '../protocol/messages.ts'
import { RPC_PROTOCOL, decodeReply, decodeRequest, encodeFrame } from '../protocol/rpc.ts'
import type { RpcReply, RpcRequest } from '../protocol/rpc.ts'
import type { ClusterTransport } from '../runtime/transport.ts'

export interface Libp2pTransportInit {
  cluster: string
  listen: string[]
  bootstrap: string[]
  mdns: boolean
  /** Folder holding the node's identity key (created when missing). */
  dataDir: string
  /** Largest RPC frame accepted or sent; a larger one resets the stream. */
  maxFrameBytes: number
  /** Told about every RPC frame sent or received (its message kind and size), for the metrics. */
  onFrame?: (direction: 'sent' | 'received', kind: string, bytes: number) => void
  /** Told about rejected messages and dial failures. */
  warn?: (msg: string, detail?: Record<string, unknown>) => void
  debug?: (msg: string, detail?: Record<string, unknown>) => void
}

/** Gossip topic of a cluster's heartbeats; the version is the protocol's. */
export function heartbeatTopic (cluster: string): string {
  return `/taskmesh/${cluster}/heartbeat/1`
}

/**
 * mDNS service tag of a cluster: clusters on one LAN answer different
 * queries and never discover each other. DNS labels stay short, so the
 * cluster name is hashed.
 */
export function mdnsServiceTag (cluster: string): string {
  const digest = createHash('sha256').update(cluster).digest('hex').slice(0, 10)
  return `_tm-${digest}._udp.local`
}

/** Loads the node's identity from the data directory, or creates and stores one. */
export async function loadOrCreateKey (dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, 'peer.key')
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read identity key ${path}: ${(err as Error).message}`)
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600 })
  return key
}

/** Time a peer has to send its request frame after opening an RPC stream. */
const REQUEST_READ_TIMEOUT_MS = 10_000

type Node = Libp2p<{ pubsub: PubSub<GossipsubEvents>, identify: unknown }>

export class Libp2pTransport implements ClusterTransport {
  readonly #node: Node
  readonly #topic: string
  readonly #validated = new WeakMap<Message, Heartbeat>()
  readonly #kept = new Set<string>()
  readonly #init: Libp2pTransportInit

  private constructor (node: Node, init: Libp2pTransportInit) {
    this.#node = node
    this.#init = init
    this.#topic = heartbeatTopic(init.cluster)
  }

  static async create (init: Libp2pTransportInit): Promise<Libp2pTransport> {
    const privateKey = await loadOrCreateKey(init.dataDir)
    const peerDiscovery = []
    if (init.mdns) peerDiscovery.push(mdns({ serviceTag: mdnsServiceTag(init.cluster), interval: 5_000 }))
    if (init.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: init.bootstrap }))
    const node: Node = await createLibp2p({
      privateKey,
      addresses: { listen: init.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery,
      services: {
        identify: identify(),
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictSign',
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
          floodPublish: true
        })
      }
    })
    const transport = new Libp2pTransport(node, init)
    transport.#wire()
    await node.start()
    node.services.pubsub.subscribe(transport.#topic)
    return transport
  }

  #wire (): void {
    const node = this.#node
    node.services.pubsub.topicValidators.set(this.#topic, (from: PeerId, msg: Message) => this.#validate(from, msg))
    void node.handle(RPC_PROTOCOL, ({ stream, connection }) => {
      void this.#serve(stream, connection.remotePeer.toString())
    }, { maxInboundStreams: 512, maxOutboundStreams: 512, runOnLimitedConnection: false })
    node.addEventListener('peer:discovery', evt => {
      const peer = evt.detail
      this.#init.debug?.('peer discovered', { peer: peer.id.toString(), addresses: peer.multiaddrs.map(String) })
      if (node.getConnections(peer.id).length > 0) return
      node.dial(peer.id).catch((err: Error) => {
        this.#init.debug?.('dial of discovered peer failed', { peer: peer.id.toString(), err: err.message })
      })
    })
  }

  #validate (from: PeerId, msg: Message): TopicValidatorResult {
    if (msg.type !== 'signed') {
      this.#init.warn?.('rejected unsigned heartbeat', { from: from.toString() })
      return TopicValidatorResult.Reject
    }
    let hb: Heartbeat
    try {
      hb = decodeHeartbeat(msg.data)
    } catch (err) {
      this.#init.warn?.('rejected malformed heartbeat', { from: from.toString(), author: msg.from.toString(), err: (err as Error).message })
      return TopicValidatorResult.Reject
    }
    if (hb.id !== msg.from.toString()) {
      this.#init.warn?.('rejected heartbeat whose claimed id is not its signer', { claimed: hb.id, signer: msg.from.toString() })
      return TopicValidatorResult.Reject
    }
    this.#validated.set(msg, hb)
    return TopicValidatorResult.Accept
  }

  get id (): string {
    return this.#node.peerId.toString()
  }

  addresses (): string[] {
    return this.#node.getMultiaddrs().map(a => a.toString())
  }

  async publishHeartbeat (hb: Heartbeat): Promise<void> {
    await this.#node.services.pubsub.publish(this.#topic, encodeHeartbeat(hb))
  }

  onHeartbeat (handler: (hb: Heartbeat) => void): void {
    this.#node.services.pubsub.addEventListener('message', evt => {
      const msg = evt.detail
      if (msg.topic !== this.#topic) return
      const hb = this.#validated.get(msg)
      if (hb !== undefined) handler(hb)
    })
  }

  onPeerDisconnected (handler: (id: string) => void): void {
    this.#node.addEventListener('peer:disconnect', evt => { handler(evt.detail.toString()) })
  }

  keepConnected (id: string): void {
    if (this.#kept.has(id)) return
    this.#kept.add(id)
    const peer = this.#node.getPeers().find(p => p.toString() === id)
    if (peer === undefined) return
    this.#node.peerStore.merge(peer, { tags: { [KEEP_ALIVE]: { value: 1 } } }).catch((err: Error) => {
      this.#init.debug?.('could not tag member keep-alive', { peer: id, err: err.message })
    })
  }

  async request (to: string, msg: RpcRequest, timeoutMs: number): Promise<RpcReply> {
    const signal = AbortSignal.timeout(timeoutMs)
    const frame = encodeFrame(msg)
    if (frame.byteLength > this.#init.maxFrameBytes) throw new Error(`rpc ${msg.kind} of ${frame.byteLength} bytes exceeds maxFrameBytes ${this.#init.maxFrameBytes}`)
    const stream = await this.#node.dialProtocol(peerIdFromString(to), RPC_PROTOCOL, { signal })
    this.#init.onFrame?.('sent', msg.kind, frame.byteLength)
    const onAbort = (): void => { stream.abort(new Error(`rpc ${msg.kind} to ${to} timed out after ${timeoutMs} ms`)) }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    try {
      const reply = await pipe(
        [frame],
        src => lp.encode(src),
        stream,
        src => lp.decode(src, { maxDataLength: this.#init.maxFrameBytes }),
        async src => {
          for await (const chunk of src) return chunk.subarray()
          return undefined
        }
      )
      if (reply === undefined) throw new Error(`rpc ${msg.kind} to ${to}: stream closed without a reply`)
      const decoded = decodeReply(reply)
      this.#init.onFrame?.('received', decoded.kind, reply.byteLength)
      return decoded
    } catch (err) {
      stream.abort(err as Error)
      if (signal.aborted) throw new Error(`rpc ${msg.kind} to ${to} timed out after ${timeoutMs} ms`)
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  onRequest (handler: (msg: RpcRequest, from: string) => Promise<RpcReply>): void {
    this.#requestHandler = handler
  }

  #requestHandler: ((msg: RpcRequest, from: string) => Promise<RpcReply>) | undefined

  async #serve (stream: Stream, from: string): Promise<void> {
    const handler = this.#requestHandler
    const maxDataLength = this.#init.maxFrameBytes
    const onFrame = this.#init.onFrame
    // A peer gets a bounded time to send its request frame.
    let received = false
    const deadline = setTimeout(() => { if (!received) stream.abort(new Error('no request frame in time')) }, REQUEST_READ_TIMEOUT_MS)
    try {
      await pipe(
        stream,
        src => lp.decode(src, { maxDataLength }),
        async function * (src) {
          for await (const chunk of src) {
            received = true
            let reply: RpcReply
            try {
              const msg = decodeRequest(chunk.subarray())
              onFrame?.('received', msg.kind, chunk.byteLength)
              reply = handler === undefined ? { kind: 'error', code: 'STARTING', message: 'node is starting' } : await handler(msg, from)
            } catch (err) {
              const code = err instanceof DecodeError ? 'BAD_FRAME' : ((err as { code?: string }).code ?? 'INTERNAL')
              reply = { kind: 'error', code: code.slice(0, 64), message: (err as Error).message.slice(0, 4096) }
            }
            const frame = encodeFrame(reply)
            onFrame?.('sent', reply.kind, frame.byteLength)
            yield frame
            return
          }
        },
        src => lp.encode(src),
        stream
      )
    } catch (err) {
      this.#init.warn?.('rpc stream reset', { from, err: (err as Error).message })
      stream.abort(err as Error)
    } finally {
      clearTimeout(deadline)
    }
  }

  async stop (): Promise<void> {
    await this.#node.stop()
  }
}
