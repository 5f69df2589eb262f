/**
 * Heartbeats signed inside their payload, by the member they name.
 *
 * Gossipsub's StrictSign checked an Ed25519 signature over every copy of a
 * message that arrived before its first copy had validated (each relaying
 * mesh peer's copy), building a key object from JWK text for every check:
 * 17 % of an idle node's CPU at 25 nodes (bench/README.md). Here gossipsub
 * runs StrictNoSign with a message id that is the hash of the payload, so a
 * duplicate is dropped by its seen-cache before anything else, and the topic
 * validator checks the one signature of each new heartbeat with a key object
 * cached per member.
 *
 * A heartbeat frame is one version byte, a 64-byte Ed25519 signature, and
 * the encoded heartbeat. The signature covers a domain tag, the topic (the
 * cluster: a heartbeat of one cluster is none of another's) and the encoded
 * heartbeat, and must verify under the public key of the member id the
 * heartbeat names (a libp2p Ed25519 peer id holds its public key). So a
 * stranger, or a member relaying another's heartbeat, cannot forge or alter
 * one: it would need that member's private key. The Noise connection still
 * authenticates the peer that relayed it (gossipsub scores that peer down for
 * a rejected message).
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'

/** The frame layout's version: the first byte of every heartbeat frame. */
const FRAME_VERSION = 1
const SIGNATURE_BYTES = 64
const HEADER_BYTES = 1 + SIGNATURE_BYTES
/** Separates what these signatures cover from anything else a member's key signs. */
const DOMAIN = Buffer.from('taskmesh-heartbeat\0')
/** DER prefixes that wrap a raw Ed25519 key as SPKI (public) and PKCS#8 (private), as node:crypto reads them. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** Members whose public key object is kept; beyond this the least recently added is dropped (and rebuilt when heard again). */
const MAX_CACHED_KEYS = 4096

export class HeartbeatSignatureError extends Error {
  override name = 'HeartbeatSignatureError'
}

function covered (topic: Buffer, body: Uint8Array): Buffer {
  return Buffer.concat([DOMAIN, topic, Buffer.from([0]), body])
}

/** Signs this node's heartbeats (its libp2p identity key, Ed25519). */
export class HeartbeatSigner {
  readonly #key: KeyObject
  readonly #topic: Buffer

  constructor (privateKey: PrivateKey, topic: string) {
    if (privateKey.type !== 'Ed25519') throw new Error(`heartbeats are signed with an Ed25519 identity key, not ${privateKey.type}`)
    this.#key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey.raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
    this.#topic = Buffer.from(topic)
  }

  /** The frame to publish: version, signature, then `body` (an encoded heartbeat). */
  frame (body: Uint8Array): Uint8Array {
    const signature = sign(null, covered(this.#topic, body), this.#key)
    return Buffer.concat([Buffer.from([FRAME_VERSION]), signature, body])
  }
}

/** Checks heartbeat frames: the signature against the key of the member the heartbeat names. */
export class HeartbeatVerifier {
  readonly #topic: Buffer
  readonly #keys = new Map<string, KeyObject>()

  constructor (topic: string) {
    this.#topic = Buffer.from(topic)
  }

  /** The encoded heartbeat inside a frame (not yet verified); throws HeartbeatSignatureError on a frame of the wrong shape. */
  body (frame: Uint8Array): Uint8Array {
    if (frame.byteLength <= HEADER_BYTES || frame[0] !== FRAME_VERSION) throw new HeartbeatSignatureError(`not a signed heartbeat frame (version ${frame[0] ?? 'none'}, ${frame.byteLength} bytes)`)
    return frame.subarray(HEADER_BYTES)
  }

  /** True when `frame`'s signature is by member `id` (an Ed25519 peer id); false for any other id or signature. */
  signedBy (id: string, frame: Uint8Array): boolean {
    const cached = this.#keys.get(id)
    const key = cached ?? publicKeyOf(id)
    if (key === null) return false
    const ok = verify(null, covered(this.#topic, frame.subarray(HEADER_BYTES)), key, frame.subarray(1, HEADER_BYTES))
    // Kept only once a signature checked out: forged ids cannot push members' keys out of the cache.
    if (ok && cached === undefined) {
      if (this.#keys.size >= MAX_CACHED_KEYS) this.#keys.delete(this.#keys.keys().next().value!)
      this.#keys.set(id, key)
    }
    return ok
  }
}

/** The public key object of an Ed25519 peer id; null for anything else. */
function publicKeyOf (id: string): KeyObject | null {
  try {
    const peer = peerIdFromString(id)
    if (peer.type !== 'Ed25519' || peer.publicKey === undefined) return null
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peer.publicKey.raw]), format: 'der', type: 'spki' })
  } catch {
    return null
  }
}
