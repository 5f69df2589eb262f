/**
 * The libp2p side of a node: TCP, Noise, Yamux, identify, mDNS, bootstrap (and
 * direct dials of members, see member-dialer.ts) and
 * gossipsub (heartbeats signed in their payload, see heartbeat-signing.ts). This folder is the only one that imports
 * libp2p, so a move to another libp2p major stays contained here.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import type { GossipSub, GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { TopicValidatorResult } from '@libp2p/interface'
import type { Libp2p, Message, PeerId, PrivateKey, PubSub, Stream } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { lpStream } from 'it-length-prefixed-stream'
import { createLibp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { DEFAULTS } from '../config.ts'
import { privateNetwork } from './private-network.ts'
import { LogThrottle, PeerRateLimiter } from './rate-limit.ts'
import { RpcFaults, heartbeatScoring } from './scoring.ts'
import { decodeHeartbeatFrame, encodeHeartbeat } from '../protocol/messages.ts'
import { parseBootstrapEntry } from '../bootstrap-entry.ts'
import { MemberDialer } from './member-dialer.ts'
import { OwnAddresses } from './own-addresses.ts'
import { logFormation } from './formation-log.ts'
import './yamux-window.ts'
import { MDNS_LIBRARY_INTERVAL_MS, MdnsSearch } from './mdns-search.ts'
import type { MdnsService } from './mdns-search.ts'
import type { Heartbeat } from '../core/types.ts'
import { DecodeError } from '../protocol/messages.ts'
import { MAX_ERROR_MESSAGE_LENGTH, MAX_GOSSIP_FRAME_BYTES, MAX_HEARTBEAT_BYTES, MAX_RPC_STREAMS, REQUEST_READ_TIMEOUT_MS, SERVE_IDLE_MS } from '../protocol/constants.ts'
import { RPC_PROTOCOL, decodeRequest, encodeFrame } from '../protocol/rpc.ts'
import { frameTaskId, trace, tracing } from '../trace.ts'
import { refusal, replyOfError } from '../protocol/rpc-errors.ts'
import type { RpcReply, RpcRequest } from '../protocol/rpc.ts'
import type { ClusterTransport, MembershipTransport } from '../runtime/transport.ts'
import { MemberProtocol } from './member-protocol.ts'
import { RpcLanes } from './rpc-lanes.ts'
import { HEARTBEAT_MESH, heartbeatMsgId, heartbeatMsgIdToString } from './gossip-options.ts'
import { HeartbeatSigner, HeartbeatVerifier } from './heartbeat-signing.ts'

export interface Libp2pTransportInit {
  cluster: string
  listen: string[]
  /** `host:port` entries and multiaddrs with /p2p/<id> (see src/bootstrap-entry.ts). */
  bootstrap: string[]
  /** How often `host:port` entries are resolved and dialled again while no member is connected; the config's default when absent. */
  bootstrapRetryMs?: number
  mdns: boolean
  /** How often the cluster as a whole asks by mDNS (with `mdns` on; see mdns-search.ts); the config's default when absent. */
  mdnsIntervalMs?: number
  /** Folder holding the node's identity key (created when missing). */
  dataDir: string
  /** Largest RPC frame accepted or sent; a larger one resets the stream. */
  maxFrameBytes: number
  /** RPC frames one peer may send per second; one over the rate resets its stream. */
  maxFramesPerSecond: number
  /** The cluster key (swarm.key text): only nodes holding it can connect. null: anyone can. */
  clusterKey: Uint8Array | null
  /** Told about every RPC frame sent or received (its message kind and size), for the metrics. */
  onFrame?: (direction: 'sent' | 'received', kind: string, bytes: number) => void
  /** Told about rejected messages and dial failures. */
  warn?: (msg: string, detail?: Record<string, unknown>) => void
  debug?: (msg: string, detail?: Record<string, unknown>) => void
}

/** Gossip topic of a cluster's heartbeats; the version is the frame's (2: signed in the payload, heartbeat-signing.ts). */
export function heartbeatTopic (cluster: string): string {
  return `/taskmesh/${cluster}/heartbeat/2`
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

/** Inbound connections being set up at once (libp2p's default is 10): members started together dial each other at once. */
const MAX_PENDING_INBOUND = 64

/** Warnings about one peer's fault are logged at most once per this interval. */
const WARN_EVERY_MS = 10_000

/** it-length-prefixed's errors for a frame that is too long, malformed or cut short. */
const FRAME_ERRORS = new Set(['InvalidMessageLengthError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'UnexpectedEOFError'])

type Node = Libp2p<{ pubsub: PubSub<GossipsubEvents>, identify: unknown }>

export class Libp2pTransport implements ClusterTransport {
  readonly #node: Node
  readonly #topic: string
  readonly #signer: HeartbeatSigner
  readonly #verifier: HeartbeatVerifier
  readonly #validated = new WeakMap<Message, Heartbeat>()
  readonly #dialer: MemberDialer
  readonly #own: OwnAddresses
  #mdns: MdnsSearch | undefined
  readonly #members: MemberProtocol
  readonly #init: Libp2pTransportInit
  readonly #frames: PeerRateLimiter
  /** The client side of the RPC protocol (rpc-lanes.ts). */
  readonly #lanes: RpcLanes
  /** One warning per peer and fault every WARN_EVERY_MS. */
  readonly #warnings = new LogThrottle(WARN_EVERY_MS)

  /** Garbage each peer sent on the RPC protocol: scores it down. */
  readonly #faults: RpcFaults

  private constructor (node: Node, init: Libp2pTransportInit, faults: RpcFaults, hosts: Array<{ host: string, port: number }>, privateKey: PrivateKey) {
    this.#node = node
    this.#own = new OwnAddresses(node)
    this.#dialer = new MemberDialer(node, { hosts, retryMs: init.bootstrapRetryMs ?? DEFAULTS.bootstrapRetryMs, debug: init.debug })
    this.#faults = faults
    this.#init = init
    this.#topic = heartbeatTopic(init.cluster)
    this.#signer = new HeartbeatSigner(privateKey, this.#topic)
    this.#verifier = new HeartbeatVerifier(this.#topic)
    this.#frames = new PeerRateLimiter(init.maxFramesPerSecond)
    this.#lanes = new RpcLanes(node, { maxFrameBytes: init.maxFrameBytes, onFrame: init.onFrame })
    this.#members = new MemberProtocol(node, init.cluster, {
      fault: peer => { faults.add(peer) },
      warn: (msg, peer, detail) => { this.#warnOnce(msg, peer, detail) },
      addressesOf: id => id === node.peerId.toString() ? this.#dialable() : this.#dialer.addressesOf(id),
      learn: (id, addrs) => { this.#dialer.learn(id, addrs) }
    })
  }

  /** Warns about a peer's fault, at most once per peer and fault every WARN_EVERY_MS. */
  #warnOnce (msg: string, peer: string, detail: Record<string, unknown>): void {
    const suppressed = this.#warnings.pass(`${msg}|${peer}`)
    if (suppressed !== undefined) this.#init.warn?.(msg, suppressed > 0 ? { ...detail, suppressed } : detail)
  }

  static async create (init: Libp2pTransportInit): Promise<Libp2pTransport> {
    const privateKey = await loadOrCreateKey(init.dataDir)
    const peerDiscovery = []
    const entries = init.bootstrap.map(e => {
      const parsed = parseBootstrapEntry(e)
      if (parsed === null) throw new Error(`bootstrap entry ${JSON.stringify(e)} is neither host:port nor a multiaddr with /p2p/<id>`)
      return parsed
    })
    const list = entries.flatMap(e => e.kind === 'multiaddr' ? [e.addr] : [])
    const hosts = entries.flatMap(e => e.kind === 'host' ? [{ host: e.host, port: e.port }] : [])
    if (list.length > 0) peerDiscovery.push(bootstrap({ list }))
    const topic = heartbeatTopic(init.cluster)
    let refused: (remoteAddr: string, reason: string) => void = () => {}
    const faults = new RpcFaults()
    const node: Node = await createLibp2p({
      // Started below, once every listener is in place (the answers to mDNS's first query count).
      start: false,
      privateKey,
      ...(init.clusterKey === null ? {} : { connectionProtector: privateNetwork(init.clusterKey, c => { refused(c.remoteAddr, c.reason) }) }),
      addresses: { listen: init.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // One redial when a kept member's connection closes, no retries: libp2p 2.x's reconnect queue hands p-retry
      // an undefined backoff factor, which made its 5 retries fire 1 ms apart (TimeoutNaNWarning on every node).
      // member-dialer.ts redials kept members at its own pace.
      connectionManager: { maxIncomingPendingConnections: MAX_PENDING_INBOUND, reconnectRetries: 0 },
      // No connection monitor: a /ipfs/ping/1.0.0 stream (not served) on every connection every 10 s,
      // aborting slow ones: churn on a starved host (docs/failover.md). Heartbeats watch members.
      connectionMonitor: { enabled: false },
      peerDiscovery,
      services: {
        // mDNS as a service, so that mdns-search.ts hears every answer and sends the periodic queries.
        ...(init.mdns ? { mdns: mdns({ serviceTag: mdnsServiceTag(init.cluster), interval: MDNS_LIBRARY_INTERVAL_MS }) } : {}),
        identify: identify(),
        pubsub: gossipsub({
          // Heartbeats carry their own signature (heartbeat-signing.ts); the
          // message id is the payload's hash, so the copies relayed by several
          // mesh peers are dropped before the topic validator checks it once.
          globalSignaturePolicy: 'StrictNoSign',
          msgIdFn: heartbeatMsgId,
          msgIdToStrFn: heartbeatMsgIdToString,
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
          // Published to the mesh (D peers), not to every member: a
          // publish costs the same at 5 members and at 500.
          floodPublish: false,
          // Heartbeats are small: an IDONTWANT per received heartbeat to each
          // mesh peer would cost more packets than the duplicates it saves.
          idontwantMinDataSize: MAX_HEARTBEAT_BYTES + 1,
          ...HEARTBEAT_MESH,
          allowedTopics: [topic],
          maxInboundDataLength: MAX_GOSSIP_FRAME_BYTES,
          ...heartbeatScoring(topic, faults)
        })
      }
    })
    const transport = new Libp2pTransport(node, init, faults, hosts, privateKey)
    const mdnsService = (node.services as { mdns?: MdnsService }).mdns
    if (mdnsService !== undefined) {
      transport.#mdns = new MdnsSearch(node, mdnsService, { serviceTag: mdnsServiceTag(init.cluster), intervalMs: init.mdnsIntervalMs ?? DEFAULTS.mdnsIntervalMs, debug: init.debug })
    }
    refused = (remoteAddr, reason) => {
      // The address without its port: a stranger redials from new ports.
      transport.#warnOnce('refused a connection without the cluster key', remoteAddr.replace(/\/tcp\/\d+.*$/, ''), { remoteAddr, reason })
    }
    transport.#wire(new Set(list.map(a => multiaddr(a).getPeerId()).filter(id => id !== null)))
    await transport.#members.start()
    await node.start()
    node.services.pubsub.subscribe(transport.#topic)
    transport.#dialer.start()
    transport.#mdns?.start()
    return transport
  }

  /** `bootstrapIds`: the peers of /p2p/ bootstrap entries (dialled when discovered; mDNS answers are mdns-search.ts's). */
  #wire (bootstrapIds: ReadonlySet<string>): void {
    const node = this.#node
    node.services.pubsub.topicValidators.set(this.#topic, (from: PeerId, msg: Message) => this.#validate(from, msg))
    void node.handle(RPC_PROTOCOL, ({ stream, connection }) => {
      void this.#serve(stream, connection.remotePeer.toString())
    }, { maxInboundStreams: MAX_RPC_STREAMS, maxOutboundStreams: MAX_RPC_STREAMS, runOnLimitedConnection: false })
    if (this.#init.debug !== undefined) logFormation(node, this.#init.debug)
    node.addEventListener('peer:discovery', evt => {
      const peer = evt.detail
      this.#init.debug?.('peer discovered', { peer: peer.id.toString(), addresses: peer.multiaddrs.map(String) })
      // A peer found by mDNS is dialled by mdns-search.ts (one side of a pair dials first, see pair-dial.ts).
      if (node.getConnections(peer.id).length > 0 || (this.#mdns !== undefined && !bootstrapIds.has(peer.id.toString()))) return
      node.dial(peer.id).catch((err: Error) => {
        this.#init.debug?.('dial of discovered peer failed', { peer: peer.id.toString(), err: err.message })
      })
    })
  }

  #validate (from: PeerId, msg: Message): TopicValidatorResult {
    // A rejection also scores the sender down (gossipsub peer scoring, see scoring.ts).
    const reject = (why: string, detail: Record<string, unknown>): TopicValidatorResult => {
      const sender = from.toString()
      this.#warnOnce(why, sender, { from: sender, score: this.#score(sender), ...detail })
      return TopicValidatorResult.Reject
    }
    // Gossipsub (StrictNoSign) has already refused messages with a gossipsub signature, author or sequence number.
    let hb: Heartbeat
    let addrs: string[]
    try {
      ({ hb, addrs } = decodeHeartbeatFrame(this.#verifier.body(msg.data)))
    } catch (err) {
      return reject('rejected malformed heartbeat', { err: (err as Error).message })
    }
    if (!this.#verifier.signedBy(hb.id, msg.data)) {
      return reject('rejected heartbeat not signed by the member it names', { claimed: hb.id })
    }
    this.#validated.set(msg, hb)
    this.#dialer.learn(hb.id, addrs)
    return TopicValidatorResult.Accept
  }

  /** A peer's gossipsub score (negative after faults). */
  #score (peer: string): number | undefined {
    const pubsub = this.#node.services.pubsub as PubSub<GossipsubEvents> & Partial<Pick<GossipSub, 'getScore'>>
    return pubsub.getScore?.(peer)
  }

  get id (): string {
    return this.#node.peerId.toString()
  }

  /** Open connections to each connected peer (one per pair is the aim, see pair-dial.ts). */
  connectionsPerPeer (): Map<string, number> {
    const out = new Map<string, number>()
    for (const c of this.#node.getConnections()) {
      const id = c.remotePeer.toString()
      out.set(id, (out.get(id) ?? 0) + 1)
    }
    return out
  }

  /** Connects to a peer at a full multiaddr (with /p2p/<id>), as bootstrap would. */
  async dial (addr: string): Promise<void> {
    await this.#node.dial(multiaddr(addr))
  }

  addresses (): string[] {
    return this.#node.getMultiaddrs().map(a => a.toString())
  }

  async publishHeartbeat (hb: Heartbeat): Promise<void> {
    // Our listen addresses ride along, loopback last, so members heard through a third node can dial us.
    await this.#node.services.pubsub.publish(this.#topic, this.#signer.frame(encodeHeartbeat(hb, this.#dialable())))
  }

  /** This node's listen addresses, loopback last (own-addresses.ts: reused for a few seconds). */
  #dialable (): string[] {
    return this.#own.list()
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
    this.#dialer.keep(id)
  }

  async request (to: string, msg: RpcRequest, timeoutMs: number): Promise<RpcReply> {
    return await this.#lanes.request(to, msg, timeoutMs)
  }

  readonly #served = { count: 0 }

  /** Requests sent, RPC streams opened for them, and requests served: streams are reused, so opened stays far below requests. */
  rpcStats (): { requests: number, streamsOpened: number, served: number } {
    return { ...this.#lanes.stats, served: this.#served.count }
  }

  onRequest (handler: (msg: RpcRequest, from: string) => Promise<RpcReply>): void {
    this.#requestHandler = handler
  }

  #requestHandler: ((msg: RpcRequest, from: string) => Promise<RpcReply>) | undefined

  /** Answers the requests on one stream, one at a time, until the caller closes it. */
  async #serve (stream: Stream, from: string): Promise<void> {
    const frames = lpStream(stream, { maxDataLength: this.#init.maxFrameBytes })
    const limiter = this.#frames
    let served = 0
    try {
      for (;;) {
        let chunk
        try {
          // A peer gets a bounded time to send its first request frame, and a longer one between requests.
          chunk = await frames.read({ signal: AbortSignal.timeout(served === 0 ? REQUEST_READ_TIMEOUT_MS : SERVE_IDLE_MS) })
        } catch (err) {
          if ((err as Error).name === 'UnexpectedEOFError' && served > 0) {
            await stream.close()
            return
          }
          if ((err as Error).name === 'TimeoutError' && served > 0) {
            stream.abort(new Error('rpc stream idle'))
            return
          }
          throw err
        }
        if (!limiter.take(from)) throw new DecodeError(`peer exceeds maxRpcFramesPerSecond (${limiter.rate})`)
        // Garbage (a frame that is not a valid request) resets the stream and scores the peer down.
        const msg = decodeRequest(chunk.subarray())
        const tid = tracing ? frameTaskId(msg) : ''
        trace('serve.recv', tid, msg.kind)
        this.#init.onFrame?.('received', msg.kind, chunk.byteLength)
        const handler = this.#requestHandler
        let reply: RpcReply
        try {
          reply = handler === undefined ? refusal('STARTING', 'node is starting') : await handler(msg, from)
        } catch (err) {
          reply = replyOfError(err)
        }
        const out = encodeFrame(reply)
        this.#init.onFrame?.('sent', reply.kind, out.byteLength)
        trace('serve.reply', tid, msg.kind, reply.kind)
        await frames.write(out)
        served++
        this.#served.count++
      }
    } catch (err) {
      // A peer's garbage scores it down; a stream it aborted (a timeout on its side) does not.
      if (err instanceof DecodeError || FRAME_ERRORS.has((err as Error).name)) this.#faults.add(from)
      this.#warnOnce('rpc stream reset', from, { from, err: (err as Error).message, penalty: Math.round(this.#faults.penalty(from)), score: this.#score(from) })
      stream.abort(err as Error)
    }
  }

  /** Direct probes and the joining state sync (see member-protocol.ts). */
  get membership (): MembershipTransport { return this.#members }

  async stop (): Promise<void> {
    this.#lanes.stop()
    this.#dialer.stop()
    this.#mdns?.stop()
    await this.#node.stop()
  }
}
